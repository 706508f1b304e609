// reduce_scatter and reduce_scatterv (sum): the backward pass of sequence-parallel
// attention returns the key and value gradients of each spanning segment to their owners
// with reduce_scatterv.
//
// Every rank sends the whole packed buffer (total() elements, input_value(r, g) at
// packed index g); rank r receives its block summed over ranks, so its element i must be
// sum over ranks q of input_value(q, offset(r) + i). The values are small integers, so
// the sum is exact in every element type and order of additions.
#include "bench/comm/collective.hpp"

#include <variant>

namespace longnet::bench {
namespace {

class ReduceScatter final : public Collective {
 public:
  explicit ReduceScatter(bool uneven) : uneven_(uneven) {}

  std::string_view name() const override { return uneven_ ? "reduce_scatterv" : "reduce_scatter"; }
  std::string_view redop() const override { return "sum"; }
  bool uneven() const override { return uneven_; }

  std::int64_t send_count(const BlockLayout& layout, int) const override { return layout.total(); }
  std::int64_t recv_count(const BlockLayout& layout, int rank) const override {
    return layout.count(rank);
  }
  std::int64_t expected_value(const BlockLayout& layout, int rank, std::int64_t i) const override {
    std::int64_t sum = 0;
    for (int q = 0; q < layout.ranks(); ++q) sum += input_value(q, layout.offset(rank) + i);
    return sum;
  }
  // Each rank sends the P-1 blocks it does not keep: (P-1)/P of the input.
  double bus_bandwidth(double algbw, int ranks) const override {
    return algbw * (ranks - 1) / ranks;
  }

  void run(Communicator& comm, const TypedSpans& buffers,
           const BlockLayout& layout) const override {
    std::visit(
        [&]<typename T>(const SpanPair<T>& b) {
          if (uneven_)
            comm.reduce_scatterv<T>(b.send, b.recv, layout.counts(), ReduceOp::sum, "bench");
          else
            comm.reduce_scatter<T>(b.send, b.recv, ReduceOp::sum, "bench");
        },
        buffers);
  }

 private:
  bool uneven_;
};

}  // namespace

std::unique_ptr<Collective> make_reduce_scatter(bool uneven) {
  return std::make_unique<ReduceScatter>(uneven);
}

}  // namespace longnet::bench
