#include "comm/collective_step.hpp"

#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <vector>

namespace longnet {

void run_collectively(Communicator& comm, const std::function<void()>& step) {
  std::string message;
  try {
    step();
  } catch (const AgreedError&) {
    throw;  // already agreed by a nested step
  } catch (const Error& e) {
    message = e.what();
  }
  // The lowest failing rank, or size() when none failed.
  std::vector<int32_t> failing{message.empty() ? comm.size() : comm.rank()};
  comm.all_reduce_in_place<int32_t>(failing, ReduceOp::min, "error agreement");
  const int root = failing[0];
  if (root == comm.size()) return;

  std::vector<int64_t> length{static_cast<int64_t>(message.size())};
  comm.broadcast<int64_t>(length, root, "error agreement");
  std::vector<uint8_t> bytes(message.begin(), message.end());
  bytes.resize(static_cast<std::size_t>(length[0]));
  comm.broadcast<uint8_t>(bytes, root, "error agreement");
  const std::string text(bytes.begin(), bytes.end());
  if (comm.size() == 1) throw AgreedError(text);
  throw AgreedError(fmt::format("[rank {}/{}] {}", root, comm.size(), text));
}

}  // namespace longnet
