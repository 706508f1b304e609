// What one collective contributes to the communication benchmark (the nccl-tests split:
// one small file per collective over one shared driver, bench/comm/driver.hpp).
//
// A Collective knows four things: the name and reduction it prints, how large this
// rank's send and receive buffers are for a given per-rank layout, the value each send
// element holds and the value each received element must then hold, and how to call the
// Communicator. The driver does everything else: sizes, buffers, the correctness pass,
// warm-up, timing, bandwidth and output.
//
// Values. Send element i of rank r holds input_value(r, i), a small non-negative integer
// (below 1000 * P + 997), so every element type the benchmark offers holds it exactly
// and a sum over ranks is exact whatever order a library adds in: a result is either
// exactly right or wrong. kPoison (negative) marks receive elements and guard regions
// before the call; no correct output is ever negative.
#pragma once

#include "comm/communicator.hpp"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <numeric>
#include <span>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace longnet::bench {

// The element types the benchmark runs (--dtype), as a variant of typed span pairs: the
// driver is typed, a Collective's run() is one virtual function that visits the variant.
template <CommElement T>
struct SpanPair {
  std::span<const T> send;
  std::span<T> recv;
};
using TypedSpans =
    std::variant<SpanPair<float>, SpanPair<double>, SpanPair<std::int32_t>, SpanPair<std::int64_t>>;

// Block sizes per rank for one measurement, in elements of T. Blocks are packed: rank
// j's block starts at offset(j) = sum_{i<j} counts[i] (comm/communicator.hpp).
class BlockLayout {
 public:
  explicit BlockLayout(std::vector<std::int64_t> counts) : counts_(std::move(counts)) {
    offsets_.assign(counts_.size() + 1, 0);
    std::partial_sum(counts_.begin(), counts_.end(), offsets_.begin() + 1);
  }

  int ranks() const { return static_cast<int>(counts_.size()); }
  const std::vector<std::int64_t>& counts() const { return counts_; }
  std::int64_t count(int rank) const { return counts_[static_cast<std::size_t>(rank)]; }
  std::int64_t offset(int rank) const { return offsets_[static_cast<std::size_t>(rank)]; }
  std::int64_t total() const { return offsets_.back(); }
  // The rank whose block holds packed element i (0 <= i < total()).
  int owner(std::int64_t i) const {
    const auto it = std::upper_bound(offsets_.begin(), offsets_.end(), i);
    return static_cast<int>(it - offsets_.begin()) - 1;
  }

 private:
  std::vector<std::int64_t> counts_;
  std::vector<std::int64_t> offsets_;  // ranks() + 1 prefix sums
};

// Send element i of rank r (i counts from the start of r's send buffer).
inline std::int64_t input_value(int rank, std::int64_t i) { return rank * 1000 + (i * 13) % 997; }
inline constexpr std::int64_t kPoison = -1;

class Collective {
 public:
  virtual ~Collective() = default;

  // The op column, e.g. "all_gather", "reduce_scatterv".
  virtual std::string_view name() const = 0;
  // The redop column: "none" for gathers, "sum" for reductions.
  virtual std::string_view redop() const = 0;
  // True for the per-rank-count forms (rank j's block proportional to j + 1).
  virtual bool uneven() const = 0;

  // Elements of this rank's send and receive buffers.
  virtual std::int64_t send_count(const BlockLayout& layout, int rank) const = 0;
  virtual std::int64_t recv_count(const BlockLayout& layout, int rank) const = 0;
  // The value receive element i of `rank` must hold after the call (P = layout size).
  virtual std::int64_t expected_value(const BlockLayout& layout, int rank,
                                      std::int64_t i) const = 0;

  // The bus bandwidth of a call at algorithm bandwidth algbw on P ranks: algbw times
  // the collective's own factor, the share of the data each rank must move over its
  // link in an optimal ring (nccl-tests' definition): all-gather and reduce-scatter
  // (P-1)/P, all-reduce 2(P-1)/P, broadcast 1. It makes the collectives comparable
  // with each other and with the link's peak.
  virtual double bus_bandwidth(double algbw, int ranks) const = 0;

  // One call of the collective on `comm` (for NCCL: enqueued; the driver synchronises).
  virtual void run(Communicator& comm, const TypedSpans& buffers,
                   const BlockLayout& layout) const = 0;
};

// The four collectives sequence-parallel attention uses (bench/comm/all_gather.cpp,
// bench/comm/reduce_scatter.cpp). uneven selects the per-rank-count form.
std::unique_ptr<Collective> make_all_gather(bool uneven);
std::unique_ptr<Collective> make_reduce_scatter(bool uneven);

}  // namespace longnet::bench
