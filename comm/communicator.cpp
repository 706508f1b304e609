// The untyped half of the Communicator front end: argument checks, barrier, split.
#include "comm/communicator.hpp"

#include "runtime/error.hpp"

#include <fmt/format.h>

#include <cstdint>
#include <functional>

namespace longnet {

Communicator::Communicator(int rank, int size, std::string name)
    : rank_(rank), size_(size), name_(std::move(name)) {
  LONGNET_CHECK(size_ >= 1 && rank_ >= 0 && rank_ < size_,
                "communicator '{}': rank {} of {} is not a valid rank", name_, rank_, size_);
}

void Communicator::barrier(std::string_view tag) {
  tag_in_flight_ = tag;
  do_barrier();
  counters_.record(CollectiveKind::barrier, tag, CommTraffic{.calls = 1});
}

namespace {

class CompletedCollective final : public PendingCollective {
 public:
  void wait() override {}
  bool test() override { return true; }
};

}  // namespace

std::unique_ptr<PendingCollective> Communicator::do_start_all_reduce(void* buffer,
                                                                     std::int64_t count,
                                                                     ElementType type,
                                                                     ReduceOp op) {
  do_all_reduce(buffer, buffer, count, type, op);
  return std::make_unique<CompletedCollective>();
}

std::unique_ptr<Communicator> Communicator::split(std::optional<int> color, int key,
                                                  std::string name) {
  LONGNET_CHECK(!color || *color >= 0,
                "split of communicator '{}' (rank {} of {}): color {} is negative; colors are "
                ">= 0, and a rank that joins no sub-communicator passes Communicator::kNoColor",
                name_, rank_, size_, color.value_or(0));
  LONGNET_CHECK(!name.empty(),
                "split of communicator '{}' (rank {} of {}): the sub-communicator needs a name",
                name_, rank_, size_);
  auto child = do_split(color, key, std::move(name));
  LONGNET_CHECK((child != nullptr) == color.has_value(),
                "split of communicator '{}' (rank {} of {}): the {} back end returned {} for {}",
                name_, rank_, size_, backend(), child ? "a communicator" : "none",
                color ? "a color" : "kNoColor");
  return child;
}

void Communicator::check_root(std::string_view call, int root) const {
  LONGNET_CHECK(root >= 0 && root < size_,
                "{} on communicator '{}' (rank {} of {}): root {} is not a rank of it (0..{})",
                call, name_, rank_, size_, root, size_ - 1);
}

void Communicator::check_same_count(std::string_view call, Extent send, Extent recv) const {
  LONGNET_CHECK(send.count == recv.count,
                "{} on communicator '{}' (rank {} of {}): send holds {} and recv {} elements of "
                "{}; they must hold the same count",
                call, name_, rank_, size_, send.count, recv.count, element_type_name(recv.type));
}

void Communicator::check_disjoint(std::string_view call, Extent send, Extent recv) const {
  const auto bytes = [](Extent e) {
    return e.count * static_cast<std::int64_t>(element_size(e.type));
  };
  if (bytes(send) == 0 || bytes(recv) == 0) return;
  // std::less gives a total order over pointers into unrelated objects.
  const auto* send_begin = static_cast<const std::byte*>(send.data);
  const auto* recv_begin = static_cast<const std::byte*>(recv.data);
  const std::less<const std::byte*> before;
  const bool disjoint = !before(send_begin, recv_begin + bytes(recv)) ||
                        !before(recv_begin, send_begin + bytes(send));
  LONGNET_CHECK(disjoint,
                "{} on communicator '{}' (rank {} of {}): the send and recv spans overlap; "
                "pass separate buffers (all_reduce_in_place is the one in-place collective)",
                call, name_, rank_, size_);
}

void Communicator::check_all_gather(Extent send, Extent recv) const {
  LONGNET_CHECK(recv.count == send.count * size_,
                "all_gather on communicator '{}' (rank {} of {}): recv holds {} elements of {}, "
                "expected {} ranks x {} sent = {}",
                name_, rank_, size_, recv.count, element_type_name(recv.type), size_, send.count,
                send.count * size_);
  check_disjoint("all_gather", send, recv);
}

void Communicator::check_reduce_scatter(Extent send, Extent recv) const {
  LONGNET_CHECK(send.count == recv.count * size_,
                "reduce_scatter on communicator '{}' (rank {} of {}): send holds {} elements of "
                "{}, expected {} ranks x {} received = {}",
                name_, rank_, size_, send.count, element_type_name(send.type), size_, recv.count,
                recv.count * size_);
  check_disjoint("reduce_scatter", send, recv);
}

void Communicator::check_counts(std::string_view call, std::span<const std::int64_t> counts,
                                Extent own, Extent packed) const {
  LONGNET_CHECK(counts.size() == static_cast<std::size_t>(size_),
                "{} on communicator '{}' (rank {} of {}): {} counts given, expected one per rank",
                call, name_, rank_, size_, counts.size());
  std::int64_t total = 0;
  for (std::size_t j = 0; j < counts.size(); ++j) {
    LONGNET_CHECK(counts[j] >= 0,
                  "{} on communicator '{}' (rank {} of {}): counts[{}] = {} is negative", call,
                  name_, rank_, size_, j, counts[j]);
    total += counts[j];
  }
  const std::int64_t mine = counts[static_cast<std::size_t>(rank_)];
  LONGNET_CHECK(own.count == mine,
                "{} on communicator '{}' (rank {} of {}): counts[{}] = {} but this rank's block "
                "holds {} elements of {}",
                call, name_, rank_, size_, rank_, mine, own.count, element_type_name(own.type));
  LONGNET_CHECK(packed.count == total,
                "{} on communicator '{}' (rank {} of {}): the packed buffer holds {} elements of "
                "{}, expected sum(counts) = {}",
                call, name_, rank_, size_, packed.count, element_type_name(packed.type), total);
}

}  // namespace longnet
