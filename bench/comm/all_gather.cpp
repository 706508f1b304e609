// all_gather and all_gatherv: the forward pass of sequence-parallel attention gathers
// the sparsified keys and values of each spanning segment with all_gatherv.
//
// Rank r sends its block (counts[r] elements, input_value(r, i)); every rank receives
// all blocks packed in rank order, so element i of the result, in rank j's block, must
// be input_value(j, i - offset(j)).
#include "bench/comm/collective.hpp"

#include <variant>

namespace longnet::bench {
namespace {

class AllGather final : public Collective {
 public:
  explicit AllGather(bool uneven) : uneven_(uneven) {}

  std::string_view name() const override { return uneven_ ? "all_gatherv" : "all_gather"; }
  std::string_view redop() const override { return "none"; }
  bool uneven() const override { return uneven_; }

  std::int64_t send_count(const BlockLayout& layout, int rank) const override {
    return layout.count(rank);
  }
  std::int64_t recv_count(const BlockLayout& layout, int) const override { return layout.total(); }
  std::int64_t expected_value(const BlockLayout& layout, int, std::int64_t i) const override {
    const int owner = layout.owner(i);
    return input_value(owner, i - layout.offset(owner));
  }
  // Each rank receives the P-1 blocks it does not hold: (P-1)/P of the result.
  double bus_bandwidth(double algbw, int ranks) const override {
    return algbw * (ranks - 1) / ranks;
  }

  void run(Communicator& comm, const TypedSpans& buffers,
           const BlockLayout& layout) const override {
    std::visit(
        [&]<typename T>(const SpanPair<T>& b) {
          if (uneven_)
            comm.all_gatherv<T>(b.send, b.recv, layout.counts(), "bench");
          else
            comm.all_gather<T>(b.send, b.recv, "bench");
        },
        buffers);
  }

 private:
  bool uneven_;
};

}  // namespace

std::unique_ptr<Collective> make_all_gather(bool uneven) {
  return std::make_unique<AllGather>(uneven);
}

}  // namespace longnet::bench
