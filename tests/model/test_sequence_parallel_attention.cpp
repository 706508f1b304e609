// Sequence-parallel dilated attention across the ranks of mpirun equals the single-rank
// kernels (and the naive float64 reference), forward and backward, and moves exactly
// the bytes the algorithm says.
//
// Every rank builds the same full inputs from fixed seeds, computes the single-rank
// result on all of them, then runs the distributed op on its own shard. Errors are
// summed over ranks (all-reduce) so every rank asserts on the global relative L2 error.
// Tolerance 1e-5 relative L2, as for the single-rank kernels: the distributed op runs
// the same tile code, only with keys in another buffer, so the error is of the same
// float32 rounding.
#include "comm/mpi_communicator.hpp"
#include "kernels/cpu/dilated_attention_cpu.hpp"
#include "model/sequence_parallel_attention.hpp"
#include "runtime/random_fill.hpp"
#include "tests/reference/dense_attention_reference.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

namespace longnet {
namespace {

constexpr double kTolerance = 1e-5;

struct SpCase {
  const char* name;
  AttentionShape shape;
  std::vector<int64_t> w, r;
  bool causal;
  HeadOffsets offsets;
};

// Segments longer than a shard, N not a multiple of P (or of w), uncovered rows, both
// offset schemes, causal and not, batch 2.
const SpCase kCases[] = {
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
    {"N257_w32x96x512_r2x3x4_causal_grouped_uncovered",
     {1, 257, 5, 32},
     {32, 96, 512},
     {2, 3, 4},
     true,
     HeadOffsets::grouped},
    {"N64_dense_w64_r1_causal", {1, 64, 2, 16}, {64}, {1}, true, HeadOffsets::interleaved},
    {"N999_w7x999_r7x5_noncausal_interleaved",
     {1, 999, 6, 24},
     {7, 999},
     {7, 5},
     false,
     HeadOffsets::interleaved},
};

void PrintTo(const SpCase& c, std::ostream* os) { *os << c.name; }

// Rows [begin, end) of axis 1 of a [B, N, ...] tensor.
Tensor token_slice(const Tensor& full, const Shard& shard) {
  Shape shape = full.shape();
  const int64_t inner = full.numel() / (shape[0] * shape[1]);
  shape[1] = shard.size();
  Tensor out(shape, DType::float32);
  for (int64_t b = 0; b < shape[0]; ++b) {
    std::memcpy(out.data<float>() + b * shard.size() * inner,
                full.data<float>() + (b * full.dim(1) + shard.begin) * inner,
                sizeof(float) * shard.size() * inner);
  }
  return out;
}

struct GlobalError {
  double relative_l2;
  double non_finite;
};

// Relative L2 error of got against ref over every rank's shard.
GlobalError global_error(Communicator& world, const Tensor& got, const Tensor& ref) {
  std::vector<double> sums{0, 0, 0};  // diff^2, ref^2, non-finite
  for (int64_t i = 0; i < ref.numel(); ++i) {
    const double g = got.data<float>()[i], e = ref.data<float>()[i];
    if (!std::isfinite(g)) {
      sums[2] += 1;
      continue;
    }
    sums[0] += (g - e) * (g - e);
    sums[1] += e * e;
  }
  world.all_reduce_in_place<double>(sums, ReduceOp::sum);
  return {sums[1] > 0 ? std::sqrt(sums[0] / sums[1]) : std::sqrt(sums[0]), sums[2]};
}

// Max |lse difference| on covered rows; counts rows covered in one and not the other.
void expect_same_lse(Communicator& world, const Tensor& got, const Tensor& ref) {
  std::vector<double> stats{0, 0};  // max abs diff, coverage mismatches
  for (int64_t i = 0; i < ref.numel(); ++i) {
    const float g = got.data<float>()[i], e = ref.data<float>()[i];
    if (std::isinf(e) || std::isinf(g)) {
      stats[1] += (std::isinf(e) && g == e) ? 0 : 1;
    } else {
      stats[0] = std::max(stats[0], static_cast<double>(std::abs(g - e)));
    }
  }
  world.all_reduce_in_place<double>(stats, ReduceOp::max);
  EXPECT_LE(stats[0], kTolerance) << "max |lse - lse_single_rank|";
  EXPECT_EQ(stats[1], 0) << "rows covered on one side only";
}

class SequenceParallelTest : public ::testing::TestWithParam<SpCase> {
 protected:
  std::unique_ptr<MpiCommunicator> world_ = MpiCommunicator::world("sequence-parallel test");
  std::unique_ptr<DilatedAttentionOp> kernels_ = make_cpu_dilated_attention();
};

TEST_P(SequenceParallelTest, ForwardAndBackwardEqualOneRank) {
  const SpCase& c = GetParam();
  const auto config = DilatedAttentionConfig::from_lists(c.w, c.r, c.causal, c.offsets);
  const Shape full = qkv_shape(c.shape);
  const Tensor q = random_tensor(full, 11), k = random_tensor(full, 12),
               v = random_tensor(full, 13);
  const Tensor dout = random_tensor(full, 14);
  const AttentionOutputs one = run_forward(*kernels_, config, q, k, v);
  const AttentionGradients one_grads = run_backward(*kernels_, config, q, k, v, one, dout);

  SequenceParallelAttention sp(*world_, config, c.shape, *kernels_);
  const Shard shard = sp.shard();
  const AttentionShape local = sp.local_shape();
  const Tensor lq = token_slice(q, shard), lk = token_slice(k, shard), lv = token_slice(v, shard);
  const Tensor ldo = token_slice(dout, shard);
  // Poisoned, so an element the distributed op does not write fails.
  Tensor o = Tensor::filled(qkv_shape(local), std::nan("")),
         lse = Tensor::filled(lse_shape(local), std::nan(""));
  sp.forward(lq, lk, lv, o, lse);
  Tensor dq = Tensor::filled(qkv_shape(local), std::nan("")), dk = dq.clone(), dv = dq.clone();
  sp.backward(lq, lk, lv, o, lse, ldo, dq, dk, dv);

  for (auto [what, got, ref] : {std::tuple{"o", &o, &one.o},
                                {"dq", &dq, &one_grads.dq},
                                {"dk", &dk, &one_grads.dk},
                                {"dv", &dv, &one_grads.dv}}) {
    const GlobalError e = global_error(*world_, *got, token_slice(*ref, shard));
    EXPECT_EQ(e.non_finite, 0) << what << ": elements not written or not finite";
    EXPECT_LE(e.relative_l2, kTolerance) << what << " against the single-rank kernels";
  }
  expect_same_lse(*world_, lse, token_slice(one.lse, shard));
}

INSTANTIATE_TEST_SUITE_P(Grid, SequenceParallelTest, ::testing::ValuesIn(kCases),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(SequenceParallel, MatchesTheNaiveReference) {
  auto world = MpiCommunicator::world("reference test");
  auto kernels = make_cpu_dilated_attention();
  const AttentionShape shape{1, 301, 3, 8};
  const auto config =
      DilatedAttentionConfig::from_lists({40, 128, 512}, {1, 2, 4}, true, HeadOffsets::grouped);
  const Shape full = qkv_shape(shape);
  const Tensor q = random_tensor(full, 1), k = random_tensor(full, 2), v = random_tensor(full, 3);
  const Tensor dout = random_tensor(full, 4);
  const auto inputs = reference::DenseInputs::from_tensors(q, k, v);
  const auto ref = reference::dense_forward(config, inputs);
  const auto ref_grads = reference::dense_backward(config, inputs, reference::to_doubles(dout));

  SequenceParallelAttention sp(*world, config, shape, *kernels);
  const Shard shard = sp.shard();
  const AttentionShape local = sp.local_shape();
  Tensor o(qkv_shape(local), DType::float32), lse(lse_shape(local), DType::float32);
  const Tensor lq = token_slice(q, shard), lk = token_slice(k, shard), lv = token_slice(v, shard);
  sp.forward(lq, lk, lv, o, lse);
  Tensor dq(qkv_shape(local), DType::float32), dk = dq.clone(), dv = dq.clone();
  sp.backward(lq, lk, lv, o, lse, token_slice(dout, shard), dq, dk, dv);

  auto as_tensor = [&](const std::vector<double>& values) {
    Tensor t(full, DType::float32);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>(values[i]);
    return token_slice(t, shard);
  };
  EXPECT_LE(global_error(*world, o, as_tensor(ref.o)).relative_l2, kTolerance);
  EXPECT_LE(global_error(*world, dq, as_tensor(ref_grads.dq)).relative_l2, kTolerance);
  EXPECT_LE(global_error(*world, dk, as_tensor(ref_grads.dk)).relative_l2, kTolerance);
  EXPECT_LE(global_error(*world, dv, as_tensor(ref_grads.dv)).relative_l2, kTolerance);
}

// The counters equal the closed form: per spanning segment a rank touches, it receives
// the k and v rows the other members select (B * D * sum over heads), 4 bytes each, in
// the forward's gather, and sends its own rows once; the backward mirrors it.
TEST(SequenceParallel, CountersEqualTheVolumeFormula) {
  auto world = MpiCommunicator::world("counter test");
  auto kernels = make_cpu_dilated_attention();
  const int p = world->size(), rank = world->rank();
  struct Volume {
    int64_t per_rank;  // N / P
    int64_t w, r;
  };
  for (const Volume vol : {Volume{300, 1000, 4}, {256, 512, 1}, {300, 90, 3}, {257, 600, 5}}) {
    const AttentionShape shape{2, vol.per_rank * p, 3, 8};
    const auto config =
        DilatedAttentionConfig::from_lists({vol.w}, {vol.r}, true, HeadOffsets::interleaved);
    SequenceParallelAttention sp(*world, config, shape, *kernels);
    const AttentionShape local = sp.local_shape();
    const Tensor x = random_tensor(qkv_shape(local), static_cast<uint64_t>(rank));
    Tensor o(qkv_shape(local), DType::float32), lse(lse_shape(local), DType::float32);
    sp.forward(x, x, x, o, lse);

    int64_t received = 0, sent = 0;  // key elements
    for (const SpanningSegment& s : spanning_segments(shape.tokens, p, config.patterns[0])) {
      if (!s.contains(rank)) continue;
      received +=
          gathered_key_elements(s, rank, shape.tokens, p, shape, vol.r, config.head_offsets);
      const int64_t a = std::max(sp.shard().begin, s.start), b = std::min(sp.shard().end, s.end);
      for (int64_t h = 0; h < shape.heads; ++h) {
        sent += selected_rows(s.start, a, b, vol.r,
                              head_offset(config.head_offsets, h, shape.heads, vol.r)) *
                shape.batch * shape.head_dim;
      }
    }
    const int64_t bytes = 2 * sizeof(float);  // keys and values
    const auto forward = sp.traffic().at(0);
    EXPECT_EQ(forward.gather_received, received * bytes) << "w=" << vol.w << " r=" << vol.r;
    EXPECT_EQ(forward.gather_sent, sent * bytes) << "w=" << vol.w << " r=" << vol.r;
    EXPECT_EQ(forward.scatter_sent + forward.scatter_received, 0);

    sp.reset_counters();
    Tensor dq(qkv_shape(local), DType::float32), dk = dq.clone(), dv = dq.clone();
    sp.backward(x, x, x, o, lse, x, dq, dk, dv);
    const auto backward = sp.traffic().at(0);
    EXPECT_EQ(backward.gather_received, received * bytes);  // k, v gathered again
    EXPECT_EQ(backward.scatter_sent, received * bytes);     // their gradients returned
    EXPECT_EQ(backward.scatter_received, sent * bytes);
  }
}

TEST(SequenceParallel, MoreRanksThanTokensIsAClearError) {
  auto world = MpiCommunicator::world("error test");
  auto kernels = make_cpu_dilated_attention();
  if (world->size() < 2) GTEST_SKIP() << "needs at least 2 ranks";
  const AttentionShape shape{1, world->size() - 1, 2, 8};
  const auto config = DilatedAttentionConfig::from_lists({4}, {1}, false, HeadOffsets::interleaved);
  EXPECT_THROW(
      {
        try {
          SequenceParallelAttention sp(*world, config, shape, *kernels);
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("every rank must hold at least one token"),
                    std::string::npos)
              << e.what();
          throw;
        }
      },
      Error);
}

}  // namespace
}  // namespace longnet
