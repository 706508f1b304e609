// The accounting convention of comm/comm_counters.hpp, written once.
#include "comm/comm_counters.hpp"

#include <numeric>

namespace longnet {
namespace {

std::int64_t bytes_of(std::int64_t count, std::size_t element_bytes) {
  return count * static_cast<std::int64_t>(element_bytes);
}

// The elements of every rank but `rank`.
std::int64_t others(int rank, std::span<const std::int64_t> counts) {
  const std::int64_t all = std::accumulate(counts.begin(), counts.end(), std::int64_t{0});
  return all - counts[static_cast<std::size_t>(rank)];
}

}  // namespace

std::string_view collective_kind_name(CollectiveKind kind) {
  switch (kind) {
    case CollectiveKind::barrier:
      return "barrier";
    case CollectiveKind::broadcast:
      return "broadcast";
    case CollectiveKind::all_reduce:
      return "all-reduce";
    case CollectiveKind::all_gather:
      return "all-gather";
    case CollectiveKind::reduce_scatter:
      return "reduce-scatter";
  }
  return "?";
}

CommTraffic& CommTraffic::operator+=(const CommTraffic& other) {
  calls += other.calls;
  bytes_sent += other.bytes_sent;
  bytes_received += other.bytes_received;
  return *this;
}

CommTraffic broadcast_traffic(int rank, int size, int root, std::int64_t count,
                              std::size_t element_bytes) {
  if (size == 1) return {.calls = 1};
  const std::int64_t bytes = bytes_of(count, element_bytes);
  return rank == root ? CommTraffic{.calls = 1, .bytes_sent = bytes}
                      : CommTraffic{.calls = 1, .bytes_received = bytes};
}

CommTraffic all_reduce_traffic(int size, std::int64_t count, std::size_t element_bytes) {
  if (size == 1) return {.calls = 1};
  const std::int64_t bytes = bytes_of(count, element_bytes);
  return {.calls = 1, .bytes_sent = bytes, .bytes_received = bytes};
}

CommTraffic all_gather_traffic(int rank, std::span<const std::int64_t> counts,
                               std::size_t element_bytes) {
  if (counts.size() == 1) return {.calls = 1};
  return {.calls = 1,
          .bytes_sent = bytes_of(counts[static_cast<std::size_t>(rank)], element_bytes),
          .bytes_received = bytes_of(others(rank, counts), element_bytes)};
}

CommTraffic reduce_scatter_traffic(int rank, std::span<const std::int64_t> counts,
                                   std::size_t element_bytes) {
  if (counts.size() == 1) return {.calls = 1};
  return {.calls = 1,
          .bytes_sent = bytes_of(others(rank, counts), element_bytes),
          .bytes_received = bytes_of(counts[static_cast<std::size_t>(rank)], element_bytes)};
}

void CommCounters::record(CollectiveKind kind, std::string_view tag, const CommTraffic& traffic) {
  entries_[Key{kind, std::string(tag)}] += traffic;
}

CommTraffic CommCounters::at(CollectiveKind kind, std::string_view tag) const {
  const auto found = entries_.find(Key{kind, std::string(tag)});
  return found == entries_.end() ? CommTraffic{} : found->second;
}

CommTraffic CommCounters::total(CollectiveKind kind) const {
  CommTraffic sum;
  for (const auto& [key, traffic] : entries_)
    if (key.kind == kind) sum += traffic;
  return sum;
}

CommTraffic CommCounters::total_for_tag(std::string_view tag) const {
  CommTraffic sum;
  for (const auto& [key, traffic] : entries_)
    if (key.tag == tag) sum += traffic;
  return sum;
}

CommTraffic CommCounters::total() const {
  CommTraffic sum;
  for (const auto& [key, traffic] : entries_) sum += traffic;
  return sum;
}

}  // namespace longnet
