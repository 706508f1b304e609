// The cost model's bytes and collective calls equal what the communicator counters
// record when the real sequence-parallel attention runs under mpirun: forward (k, v
// all-gathers) and backward (gathers again, dk, dv reduce-scatters), on every rank.
#include <gtest/gtest.h>

#include "bench/cost_model.hpp"
#include "comm/mpi_communicator.hpp"
#include "kernels/cpu/dilated_attention_cpu.hpp"
#include "model/sequence_parallel_attention.hpp"
#include "runtime/random_fill.hpp"

namespace longnet::bench {
namespace {

struct CountersCase {
  const char* name;
  AttentionShape shape;
  std::vector<int64_t> w, r;
  bool causal;
  HeadOffsets offsets;
};

// Segments inside a shard, spanning two ranks and all of them; N not a multiple of P;
// a dense pattern; batch 2.
const CountersCase kCases[] = {
    {"N1000_w64x250x2048_r1x3x4_causal_interleaved",
     {1, 1000, 3, 16},
     {64, 250, 2048},
     {1, 3, 4},
     true,
     HeadOffsets::interleaved},
    {"B2_N1003_w100x333_r2x3_noncausal_grouped",
     {2, 1003, 4, 8},
     {100, 333},
     {2, 3},
     false,
     HeadOffsets::grouped},
    {"N257_dense_causal", {1, 257, 2, 8}, {257}, {1}, true, HeadOffsets::interleaved},
};

void PrintTo(const CountersCase& c, std::ostream* os) { *os << c.name; }

struct Counted {
  int64_t sent = 0, received = 0, calls = 0;
};

// This rank's bytes and calls over all patterns since the last reset.
Counted counted(const SequenceParallelAttention& sp) {
  Counted c;
  for (const PatternTraffic& t : sp.traffic()) {
    c.sent += t.gather_sent + t.scatter_sent;
    c.received += t.gather_received + t.scatter_received;
    c.calls += t.gather_calls + t.scatter_calls;
  }
  return c;
}

class CostModelCountersTest : public ::testing::TestWithParam<CountersCase> {
 protected:
  std::unique_ptr<MpiCommunicator> world_ = MpiCommunicator::world("cost model test");
  std::unique_ptr<DilatedAttentionOp> kernels_ = make_cpu_dilated_attention();
};

TEST_P(CostModelCountersTest, BytesAndCallsEqualTheCounters) {
  const CountersCase& c = GetParam();
  const auto config = DilatedAttentionConfig::from_lists(c.w, c.r, c.causal, c.offsets);
  const int rank = world_->rank();
  const auto work = rank_work({.config = config, .shape = c.shape, .world = world_->size()});
  const RankWork& mine = work[static_cast<std::size_t>(rank)];

  SequenceParallelAttention sp(*world_, config, c.shape, *kernels_);
  const AttentionShape local = sp.local_shape();
  const Tensor x = random_tensor(qkv_shape(local), static_cast<uint64_t>(rank) + 1);
  Tensor o(qkv_shape(local), DType::float32), lse(lse_shape(local), DType::float32);
  sp.reset_counters();
  sp.forward(x, x, x, o, lse);
  const Counted fwd = counted(sp);
  const CallWork model_fwd = call_work(mine, Direction::forward, c.shape.head_dim);
  EXPECT_EQ(fwd.sent, model_fwd.sent_bytes) << "rank " << rank;
  EXPECT_EQ(fwd.received, model_fwd.received_bytes) << "rank " << rank;
  EXPECT_EQ(fwd.calls, model_fwd.collectives) << "rank " << rank;

  sp.reset_counters();
  Tensor dq(qkv_shape(local), DType::float32), dk = dq.clone(), dv = dq.clone();
  sp.backward(x, x, x, o, lse, x, dq, dk, dv);
  const Counted bwd = counted(sp);
  const CallWork model_bwd = call_work(mine, Direction::backward, c.shape.head_dim);
  EXPECT_EQ(bwd.sent, model_bwd.sent_bytes) << "rank " << rank;
  EXPECT_EQ(bwd.received, model_bwd.received_bytes) << "rank " << rank;
  EXPECT_EQ(bwd.calls, model_bwd.collectives) << "rank " << rank;
}

INSTANTIATE_TEST_SUITE_P(Cases, CostModelCountersTest, ::testing::ValuesIn(kCases),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

}  // namespace
}  // namespace longnet::bench
