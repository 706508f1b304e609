// The DilatedAttention layer: its backward against central finite differences in double
// (the layer run in float64 over a dense float64 attention core), the float32 layer over
// the real kernels against the float64 one, and the documents' example shape.
#include "kernels/cpu/dilated_attention_cpu.hpp"
#include "model/dilated_attention_layer.hpp"
#include "runtime/random_fill.hpp"
#include "tests/model/dense_attention_core.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

namespace longnet {
namespace {

using test::DenseAttentionCore;

struct LayerCase {
  std::string name;
  int64_t batch, tokens, dim, heads;
  std::vector<int64_t> w, r;
  bool causal, xpos;
  HeadOffsets offsets;
  bool bias = false;
  double dropout = 0;
  int64_t kv_heads = 0;  // grouped-query attention; 0: as many as heads
};

std::ostream& operator<<(std::ostream& os, const LayerCase& c) { return os << c.name; }

DilatedAttentionLayerConfig layer_config(const LayerCase& c) {
  DilatedAttentionLayerConfig config;
  config.dim = c.dim;
  config.heads = c.heads;
  config.kv_heads = c.kv_heads;
  config.segment_lengths = c.w;
  config.dilation_rates = c.r;
  config.causal = c.causal;
  config.use_xpos = c.xpos;
  config.head_offsets = c.offsets;
  config.use_rel_pos_bias = c.bias;
  config.rel_pos_buckets = 8;
  config.rel_pos_max_distance = 16;
  config.dropout = c.dropout;
  config.init_std = 0.3;       // large enough that attention is far from uniform
  config.xpos_scale_base = 8;  // strong decay over these short sequences
  return config;
}

AttentionShape attention_shape(const LayerCase& c) {
  return {c.batch, c.tokens, c.heads, c.dim / c.heads, c.kv_heads};
}

double dot(const Tensor& a, const Tensor& b) {
  double s = 0;
  const Tensor x = a.cast(DType::float64), y = b.cast(DType::float64);
  for (int64_t i = 0; i < x.numel(); ++i) s += x.data<double>()[i] * y.data<double>()[i];
  return s;
}

double relative_l2(const Tensor& a, const Tensor& b) {
  const Tensor x = a.cast(DType::float64), y = b.cast(DType::float64);
  double num = 0, den = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double d = x.data<double>()[i] - y.data<double>()[i];
    num += d * d;
    den += y.data<double>()[i] * y.data<double>()[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

// Training mode, so that dropout (where a case sets it) is on; a fixed step and seed.
const AttentionRandomness kTraining{true, 77, 5};

class DilatedAttentionLayerTest : public ::testing::TestWithParam<LayerCase> {};

// loss = sum(y * R) for a fixed random R; every gradient the backward returns must equal
// the central difference of that loss, coordinate by coordinate, in double.
TEST_P(DilatedAttentionLayerTest, BackwardMatchesFiniteDifferencesInDouble) {
  const LayerCase& c = GetParam();
  auto ops = make_cpu_model_ops();
  DilatedAttention layer("attn", layer_config(c), DType::float64, 11);
  DenseAttentionCore core(layer.config().attention_config(), attention_shape(c));
  const Shape x_shape{c.batch, c.tokens, c.dim};
  Tensor x = random_tensor(x_shape, 5).cast(DType::float64);
  const Tensor weights = random_tensor(x_shape, 6).cast(DType::float64);

  auto loss = [&] {
    DilatedAttentionSaved saved;
    return dot(layer.forward(x, core, *ops, saved, kTraining), weights);
  };
  DilatedAttentionSaved saved;
  layer.forward(x, core, *ops, saved, kTraining);
  const Tensor dx = layer.backward(weights, saved, core, *ops);

  constexpr double kStep = 1e-5;
  auto check = [&](Tensor& value, const Tensor& grad, const std::string& what) {
    // Every coordinate of small tensors; a spread of 24 of larger ones.
    const int64_t n = value.numel(), stride = std::max<int64_t>(1, n / 24);
    for (int64_t i = 0; i < n; i += stride) {
      double& xi = value.data<double>()[i];
      const double keep = xi;
      xi = keep + kStep;
      const double up = loss();
      xi = keep - kStep;
      const double down = loss();
      xi = keep;
      const double numeric = (up - down) / (2 * kStep);
      const double analytic = grad.data<double>()[i];
      EXPECT_NEAR(analytic, numeric, 1e-7 + 1e-6 * std::abs(numeric)) << what << "[" << i << "]";
    }
  };
  check(x, dx, "dx");
  for (Parameter* p : layer.parameters()) check(p->value, p->grad, p->name);
}

// The float32 layer on the CPU kernels computes the same function as the float64 layer on
// the dense core, from the same parameters (both are built from one seed).
TEST_P(DilatedAttentionLayerTest, Float32KernelsMatchTheFloat64Layer) {
  const LayerCase& c = GetParam();
  auto ops = make_cpu_model_ops();
  auto kernels = make_cpu_dilated_attention();
  DilatedAttention layer64("attn", layer_config(c), DType::float64, 11);
  DilatedAttention layer32("attn", layer_config(c), DType::float32, 11);
  DenseAttentionCore dense(layer64.config().attention_config(), attention_shape(c));
  auto local =
      make_local_attention_core(layer32.config().attention_config(), attention_shape(c), *kernels);
  const Shape x_shape{c.batch, c.tokens, c.dim};
  const Tensor x = random_tensor(x_shape, 5);
  const Tensor dy = random_tensor(x_shape, 6);

  DilatedAttentionSaved s64, s32;
  const Tensor y64 = layer64.forward(x.cast(DType::float64), dense, *ops, s64, kTraining);
  const Tensor y32 = layer32.forward(x, *local, *ops, s32, kTraining);
  EXPECT_LT(relative_l2(y32, y64), 2e-6);
  const Tensor dx64 = layer64.backward(dy.cast(DType::float64), s64, dense, *ops);
  const Tensor dx32 = layer32.backward(dy, s32, *local, *ops);
  EXPECT_LT(relative_l2(dx32, dx64), 1e-5);
  const auto p64 = layer64.parameters(), p32 = layer32.parameters();
  const double bq_norm = std::sqrt(dot(p64[1]->grad, p64[1]->grad));
  for (std::size_t i = 0; i < p64.size(); ++i) {
    const Tensor& grad = p64[i]->grad;
    if (p64[i]->name == "attn.bk" && !c.xpos) {
      // Without xPos dL/dbk is exactly 0: a bias on k shifts a whole row of scores by
      // q . bk, which the softmax ignores. Both layers must say so, up to their rounding.
      EXPECT_LT(std::sqrt(dot(grad, grad)), 1e-12 * bq_norm);
      EXPECT_LT(std::sqrt(dot(p32[i]->grad, p32[i]->grad)), 1e-5 * bq_norm);
      continue;
    }
    EXPECT_LT(relative_l2(p32[i]->grad, grad), 1e-5) << p64[i]->name;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Layers, DilatedAttentionLayerTest,
    ::testing::Values(
        LayerCase{"OnePattern", 1, 12, 8, 2, {4}, {2}, false, false, HeadOffsets::interleaved},
        LayerCase{
            "CausalMixtureXpos", 2, 23, 12, 3, {8, 16}, {1, 2}, true, true, HeadOffsets::grouped},
        LayerCase{"NonCausalXposShortLastSegment",
                  1,
                  21,
                  8,
                  2,
                  {6, 21},
                  {1, 3},
                  false,
                  true,
                  HeadOffsets::interleaved},
        LayerCase{"CausalNoXposGrouped",
                  1,
                  17,
                  16,
                  4,
                  {4, 8, 16},
                  {1, 2, 4},
                  true,
                  false,
                  HeadOffsets::grouped},
        LayerCase{"CausalXposBiasDropout",
                  2,
                  23,
                  12,
                  3,
                  {8, 16},
                  {1, 2},
                  true,
                  true,
                  HeadOffsets::grouped,
                  true,
                  0.3},
        LayerCase{"NonCausalBiasDropout",
                  1,
                  21,
                  8,
                  2,
                  {6, 21},
                  {1, 3},
                  false,
                  false,
                  HeadOffsets::interleaved,
                  true,
                  0.5},
        // Grouped-query: 6 heads over 2 kv heads (wk, wv are [4, 12]), r = 4 not dividing
        // 6, with xPos, bias and dropout; and multi-query (one kv head).
        LayerCase{"GroupedQueryXposBiasDropout",
                  1,
                  23,
                  12,
                  6,
                  {8, 16},
                  {1, 4},
                  true,
                  true,
                  HeadOffsets::grouped,
                  true,
                  0.3,
                  2},
        LayerCase{"MultiQueryNonCausal",
                  2,
                  17,
                  8,
                  4,
                  {4, 17},
                  {1, 2},
                  false,
                  false,
                  HeadOffsets::interleaved,
                  false,
                  0,
                  1}),
    [](const auto& test) { return test.param.name; });

// The shape of the LongNet documents' example (batch 4, 32 tokens, dim 512, 8 heads,
// dilation 2, segment 16), on the CPU kernels: the output keeps x's shape and is finite.
TEST(DilatedAttentionLayer, DocumentsExampleShape) {
  auto ops = make_cpu_model_ops();
  auto kernels = make_cpu_dilated_attention();
  auto config = DilatedAttentionLayerConfig::single(512, 8, 16, 2);
  DilatedAttention layer("attn", config, DType::float32, 1);
  auto core = make_local_attention_core(config.attention_config(), {4, 32, 8, 64}, *kernels);
  DilatedAttentionSaved saved;
  const Tensor y = layer.forward(random_tensor({4, 32, 512}, 2), *core, *ops, saved);
  EXPECT_EQ(y.shape(), Shape({4, 32, 512}));
  for (float value : y.span<float>()) ASSERT_TRUE(std::isfinite(value));
}

TEST(DilatedAttentionLayer, BadConfigsNameTheProblem) {
  auto bad_heads = DilatedAttentionLayerConfig::single(10, 3, 4, 1);
  EXPECT_THAT([&] { DilatedAttention("a", bad_heads, DType::float32, 1); },
              ::testing::ThrowsMessage<Error>(::testing::HasSubstr("multiple of heads")));
  auto odd_xpos = DilatedAttentionLayerConfig::single(6, 2, 4, 1);
  odd_xpos.use_xpos = true;
  EXPECT_THAT([&] { DilatedAttention("a", odd_xpos, DType::float32, 1); },
              ::testing::ThrowsMessage<Error>(::testing::HasSubstr("must be even")));
}

}  // namespace
}  // namespace longnet
