// Communication counters: calls and bytes per kind of collective and per user tag.
//
// Every Communicator keeps one CommCounters and records each collective it completes
// (for NCCL: each collective it enqueues) under its kind and the tag the caller passed,
// e.g. "pattern 2 gather k", so that the distributed attention can report the bytes of
// each pattern in each direction. Counters are per rank and per communicator; a
// sub-communicator from split() starts its own.
//
// The accounting convention. Bytes are counted by what a call means, not by how an
// algorithm moves them, so that MPI and NCCL, ring and tree, count the same numbers:
//
//   sent(r)     = bytes of r's input that some other rank's output depends on,
//   received(r) = bytes of r's output that depend on some other rank's input,
//
// each byte counted once however many ranks read it or contributed to it. On a
// communicator of one rank nothing is sent or received. With c_j the count of rank j
// (in elements of T, s = sizeof(T)), P > 1 ranks and N elements per rank:
//
//   kind            sent(r)                 received(r)
//   barrier         0                       0
//   broadcast       N s at the root, else 0 0 at the root, else N s
//   all-reduce      N s                     N s
//   all-gather(v)   c_r s                   (sum over j != r of c_j) s
//   reduce-scatter  (sum over j != r of c_j) s   c_r s
//
// All-gather and reduce-scatter are each other's transpose, and their rows are
// swapped. For equal counts, what a rank receives in an all-gather, (P-1)/P of the
// gathered size, is also what a bandwidth-optimal (ring) algorithm puts on its incoming
// link; what it sends is its own block once, whatever the algorithm. The wire bytes of
// a particular algorithm (a ring also forwards the blocks of others, a broadcast tree
// sends from inner nodes too) are not what these counters measure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>

namespace longnet {

// all_gather covers equal and per-rank counts (all_gather and all_gatherv), likewise
// reduce_scatter.
enum class CollectiveKind : std::uint8_t {
  barrier,
  broadcast,
  all_reduce,
  all_gather,
  reduce_scatter
};

std::string_view collective_kind_name(CollectiveKind kind);

struct CommTraffic {
  std::int64_t calls = 0;
  std::int64_t bytes_sent = 0;
  std::int64_t bytes_received = 0;

  CommTraffic& operator+=(const CommTraffic& other);
  friend bool operator==(const CommTraffic&, const CommTraffic&) = default;
};

// The traffic of one call on `rank` under the convention above. Counts are in elements,
// element_bytes converts them to bytes.
CommTraffic broadcast_traffic(int rank, int size, int root, std::int64_t count,
                              std::size_t element_bytes);
CommTraffic all_reduce_traffic(int size, std::int64_t count, std::size_t element_bytes);
CommTraffic all_gather_traffic(int rank, std::span<const std::int64_t> counts,
                               std::size_t element_bytes);
CommTraffic reduce_scatter_traffic(int rank, std::span<const std::int64_t> counts,
                                   std::size_t element_bytes);

class CommCounters {
 public:
  struct Key {
    CollectiveKind kind;
    std::string tag;
    auto operator<=>(const Key&) const = default;
  };

  void record(CollectiveKind kind, std::string_view tag, const CommTraffic& traffic);

  // The traffic under one (kind, tag); zeros when nothing was recorded there.
  CommTraffic at(CollectiveKind kind, std::string_view tag = {}) const;
  // Sums over every tag of one kind, over every kind of one tag, and over everything.
  CommTraffic total(CollectiveKind kind) const;
  CommTraffic total_for_tag(std::string_view tag) const;
  CommTraffic total() const;

  // Every (kind, tag) recorded since construction or the last reset, in order.
  const std::map<Key, CommTraffic>& entries() const { return entries_; }
  void reset() { entries_.clear(); }

 private:
  std::map<Key, CommTraffic> entries_;
};

}  // namespace longnet
