#include "comm/self_communicator.hpp"

#include <cstring>

namespace longnet {
namespace {

// send -> recv, count elements of type; nothing to do in place.
void copy(const void* send, void* recv, std::int64_t count, ElementType type) {
  if (send == recv || count == 0) return;
  std::memcpy(recv, send, static_cast<std::size_t>(count) * element_size(type));
}

}  // namespace

SelfCommunicator::SelfCommunicator(std::string name) : Communicator(0, 1, std::move(name)) {}

void SelfCommunicator::do_all_reduce(const void* send, void* recv, std::int64_t count,
                                     ElementType type, ReduceOp) {
  copy(send, recv, count, type);
}
void SelfCommunicator::do_all_gather(const void* send, void* recv, std::int64_t count,
                                     ElementType type) {
  copy(send, recv, count, type);
}
void SelfCommunicator::do_all_gatherv(const void* send, void* recv,
                                      std::span<const std::int64_t> counts, ElementType type) {
  copy(send, recv, counts[0], type);
}
void SelfCommunicator::do_reduce_scatter(const void* send, void* recv, std::int64_t count,
                                         ElementType type, ReduceOp) {
  copy(send, recv, count, type);
}
void SelfCommunicator::do_reduce_scatterv(const void* send, void* recv,
                                          std::span<const std::int64_t> counts, ElementType type,
                                          ReduceOp) {
  copy(send, recv, counts[0], type);
}
std::unique_ptr<Communicator> SelfCommunicator::do_split(std::optional<int> color, int,
                                                         std::string name) {
  if (!color) return nullptr;
  return std::make_unique<SelfCommunicator>(std::move(name));
}

}  // namespace longnet
