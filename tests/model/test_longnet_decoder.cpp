// The LongNet decoder: its backward against central finite differences in double (over
// the dense float64 attention core), and the float32 model on the CPU kernels against
// the float64 one.
#include "kernels/cpu/dilated_attention_cpu.hpp"
#include "model/longnet_decoder.hpp"
#include "tests/model/dense_attention_core.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace longnet {
namespace {

DecoderConfig tiny_config(bool xpos) {
  DecoderConfig c;
  c.vocab_size = 11;
  c.layers = 2;
  c.ffn_dim = 12;
  c.attention.dim = 8;
  c.attention.heads = 2;
  c.attention.segment_lengths = {4, 8};
  c.attention.dilation_rates = {1, 2};
  c.attention.causal = true;
  c.attention.use_xpos = xpos;
  c.attention.xpos_scale_base = 8;
  c.attention.init_std = 0.4;
  return c;
}

struct Batch {
  std::vector<int32_t> tokens, targets;
};

Batch random_batch(int64_t n, int64_t vocab, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int32_t> id(0, static_cast<int32_t>(vocab) - 1);
  Batch b;
  for (int64_t i = 0; i < n; ++i) {
    b.tokens.push_back(id(gen));
    b.targets.push_back(id(gen));
  }
  return b;
}

class DecoderTest : public ::testing::TestWithParam<bool> {};

TEST_P(DecoderTest, BackwardMatchesFiniteDifferencesInDouble) {
  const DecoderConfig config = tiny_config(GetParam());
  const AttentionShape shape{2, 10, 2, 4};
  auto ops = make_cpu_model_ops();
  LongNetDecoder model(config, DType::float64, 3);
  test::DenseAttentionCore core(config.attention.attention_config(), shape);
  const Batch batch = random_batch(20, config.vocab_size, 7);
  auto loss = [&] {
    DecoderActivations saved;
    return model.forward(batch.tokens, batch.targets, core, *ops, saved);
  };
  DecoderActivations saved;
  model.forward(batch.tokens, batch.targets, core, *ops, saved);
  model.zero_grads();
  constexpr double kScale = 0.05;  // d(kScale * loss)/dp, as the trainer's 1 / tokens
  model.backward(saved, kScale, core, *ops);

  constexpr double kStep = 1e-5;
  for (Parameter* p : model.parameters()) {
    const int64_t n = p->value.numel(), stride = std::max<int64_t>(1, n / 6);
    for (int64_t i = 0; i < n; i += stride) {
      double& x = p->value.data<double>()[i];
      const double keep = x;
      x = keep + kStep;
      const double up = loss();
      x = keep - kStep;
      const double down = loss();
      x = keep;
      const double numeric = kScale * (up - down) / (2 * kStep);
      EXPECT_NEAR(p->grad.data<double>()[i], numeric, 1e-8 + 1e-6 * std::abs(numeric))
          << p->name << "[" << i << "]";
    }
  }
}

TEST_P(DecoderTest, Float32ModelOnKernelsMatchesFloat64) {
  const DecoderConfig config = tiny_config(GetParam());
  const AttentionShape shape{2, 10, 2, 4};
  auto ops = make_cpu_model_ops();
  auto kernels = make_cpu_dilated_attention();
  LongNetDecoder m64(config, DType::float64, 3), m32(config, DType::float32, 3);
  test::DenseAttentionCore dense(config.attention.attention_config(), shape);
  auto local = make_local_attention_core(config.attention.attention_config(), shape, *kernels);
  const Batch batch = random_batch(20, config.vocab_size, 8);
  DecoderActivations s64, s32;
  const double l64 = m64.forward(batch.tokens, batch.targets, dense, *ops, s64);
  const double l32 = m32.forward(batch.tokens, batch.targets, *local, *ops, s32);
  EXPECT_NEAR(l32, l64, 1e-5 * std::abs(l64));
  m64.zero_grads();
  m32.zero_grads();
  m64.backward(s64, 0.05, dense, *ops);
  m32.backward(s32, 0.05, *local, *ops);
  const auto p64 = m64.parameters(), p32 = m32.parameters();
  ASSERT_EQ(p64.size(), p32.size());
  for (std::size_t i = 0; i < p64.size(); ++i) {
    const Tensor a = p32[i]->grad.cast(DType::float64);
    const Tensor& b = p64[i]->grad;
    double num = 0, den = 0;
    for (int64_t e = 0; e < b.numel(); ++e) {
      num += std::pow(a.data<double>()[e] - b.data<double>()[e], 2);
      den += std::pow(b.data<double>()[e], 2);
    }
    if (p64[i]->name.ends_with(".bk") && !GetParam()) continue;  // exactly 0 (softmax shift)
    EXPECT_LT(std::sqrt(num / den), 2e-5) << p64[i]->name;
  }
}

INSTANTIATE_TEST_SUITE_P(Xpos, DecoderTest, ::testing::Values(false, true),
                         [](const auto& test) { return test.param ? "WithXpos" : "NoXpos"; });

}  // namespace
}  // namespace longnet
