// MultiModalDilatedAttention: shapes, the backward against finite differences in double,
// and the missing-modality path (zero slot, no computation, no gradient).
#include "model/multimodal_attention.hpp"
#include "runtime/random_fill.hpp"
#include "tests/model/dense_attention_core.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

namespace longnet {
namespace {

using test::DenseAttentionCore;

MultiModalConfig small_config() {
  MultiModalConfig c;
  c.modalities = 3;
  c.modality.dim = 4;
  c.modality.heads = 2;
  c.modality.segment_lengths = {4, 8};
  c.modality.dilation_rates = {1, 2};
  c.modality.causal = true;
  c.modality.init_std = 0.4;
  c.cross = c.modality;
  c.cross.dim = 12;
  c.cross.heads = 3;
  return c;
}

struct Fixture {
  static constexpr int64_t kBatch = 2, kTokens = 9;
  MultiModalConfig config = small_config();
  std::unique_ptr<ModelOps> ops = make_cpu_model_ops();
  DenseAttentionCore modality_core{config.modality.attention_config(), {kBatch, kTokens, 2, 2}};
  DenseAttentionCore cross_core{config.cross.attention_config(), {kBatch, kTokens, 3, 4}};
};

double dot(const Tensor& a, const Tensor& b) {
  double s = 0;
  for (int64_t i = 0; i < a.numel(); ++i) s += a.data<double>()[i] * b.data<double>()[i];
  return s;
}

TEST(MultiModalDilatedAttention, OutputHasTheConcatenatedWidth) {
  Fixture f;
  MultiModalDilatedAttention layer("mm", f.config, DType::float64, 1);
  std::vector<Tensor> xs;
  for (int m = 0; m < 3; ++m) xs.push_back(random_tensor({2, 9, 4}, 10 + m).cast(DType::float64));
  MultiModalSaved saved;
  const Tensor y =
      layer.forward({&xs[0], &xs[1], &xs[2]}, f.modality_core, f.cross_core, *f.ops, saved);
  EXPECT_EQ(y.shape(), Shape({2, 9, 12}));
  for (double v : y.span<double>()) ASSERT_TRUE(std::isfinite(v));
}

// With modality 1 missing: the gradients of the present inputs and of every parameter
// equal central differences of loss = sum(y * R).
TEST(MultiModalDilatedAttention, BackwardMatchesFiniteDifferencesWithAModalityMissing) {
  Fixture f;
  MultiModalDilatedAttention layer("mm", f.config, DType::float64, 2);
  std::vector<Tensor> xs;
  for (int m = 0; m < 3; ++m) xs.push_back(random_tensor({2, 9, 4}, 20 + m).cast(DType::float64));
  const std::vector<const Tensor*> inputs{&xs[0], nullptr, &xs[2]};
  const Tensor weights = random_tensor({2, 9, 12}, 30).cast(DType::float64);
  auto loss = [&] {
    MultiModalSaved saved;
    return dot(layer.forward(inputs, f.modality_core, f.cross_core, *f.ops, saved), weights);
  };
  MultiModalSaved saved;
  layer.forward(inputs, f.modality_core, f.cross_core, *f.ops, saved);
  const std::vector<Tensor> dx =
      layer.backward(weights, saved, f.modality_core, f.cross_core, *f.ops);
  ASSERT_EQ(dx.size(), 3u);
  EXPECT_FALSE(dx[1].defined()) << "a missing modality has no gradient";

  constexpr double kStep = 1e-5;
  auto check = [&](Tensor& value, const Tensor& grad, const std::string& what) {
    const int64_t n = value.numel(), stride = std::max<int64_t>(1, n / 10);
    for (int64_t i = 0; i < n; i += stride) {
      double& x = value.data<double>()[i];
      const double keep = x;
      x = keep + kStep;
      const double up = loss();
      x = keep - kStep;
      const double down = loss();
      x = keep;
      const double numeric = (up - down) / (2 * kStep);
      EXPECT_NEAR(grad.data<double>()[i], numeric, 1e-7 + 1e-6 * std::abs(numeric))
          << what << "[" << i << "]";
    }
  };
  check(xs[0], dx[0], "dx0");
  check(xs[2], dx[2], "dx2");
  for (Parameter* p : layer.parameters()) {
    if (p->name.starts_with("mm.modality1.")) {
      // Skipped, not differentiated: its gradient stays exactly zero.
      for (double g : p->grad.span<double>()) ASSERT_EQ(g, 0.0) << p->name;
      continue;
    }
    check(p->value, p->grad, p->name);
  }
}

// A missing modality behaves as a zero slot: the cross layer sees exactly what it sees
// when that modality's attention output is replaced by zeros.
TEST(MultiModalDilatedAttention, MissingModalityIsAZeroSlot) {
  Fixture f;
  MultiModalDilatedAttention layer("mm", f.config, DType::float64, 3);
  std::vector<Tensor> xs;
  for (int m = 0; m < 3; ++m) xs.push_back(random_tensor({2, 9, 4}, 40 + m).cast(DType::float64));
  MultiModalSaved with_gap;
  const Tensor y =
      layer.forward({&xs[0], nullptr, &xs[2]}, f.modality_core, f.cross_core, *f.ops, with_gap);
  EXPECT_EQ(with_gap.present, std::vector<bool>({true, false, true}));

  // The same by hand: per-modality outputs, zeros in slot 1, then the cross layer alone.
  DilatedAttention cross("mm.cross", f.config.cross, DType::float64, 3 + 977);
  DilatedAttention m0("mm.modality0", f.config.modality, DType::float64, 3 + 101);
  DilatedAttention m2("mm.modality2", f.config.modality, DType::float64, 3 + 303);
  DilatedAttentionSaved s0, s2, sc;
  const Tensor y0 = m0.forward(xs[0], f.modality_core, *f.ops, s0);
  const Tensor y2 = m2.forward(xs[2], f.modality_core, *f.ops, s2);
  Tensor concat = Tensor::zeros({2, 9, 12}, DType::float64);
  for (int64_t r = 0; r < 18; ++r) {
    for (int64_t e = 0; e < 4; ++e) {
      concat.data<double>()[r * 12 + e] = y0.data<double>()[r * 4 + e];
      concat.data<double>()[r * 12 + 8 + e] = y2.data<double>()[r * 4 + e];
    }
  }
  const Tensor expected = cross.forward(concat, f.cross_core, *f.ops, sc);
  for (int64_t i = 0; i < y.numel(); ++i) {
    ASSERT_EQ(y.data<double>()[i], expected.data<double>()[i]) << i;
  }
}

TEST(MultiModalDilatedAttention, ErrorsNameTheProblem) {
  Fixture f;
  MultiModalConfig bad = f.config;
  bad.cross.dim = 8;
  bad.cross.heads = 2;
  EXPECT_THAT([&] { MultiModalDilatedAttention("mm", bad, DType::float64, 1); },
              ::testing::ThrowsMessage<Error>(::testing::HasSubstr("modalities x modality dim")));
  MultiModalDilatedAttention layer("mm", f.config, DType::float64, 1);
  MultiModalSaved saved;
  EXPECT_THAT(
      [&] {
        layer.forward({nullptr, nullptr, nullptr}, f.modality_core, f.cross_core, *f.ops, saved);
      },
      ::testing::ThrowsMessage<Error>(::testing::HasSubstr("every modality is missing")));
  EXPECT_THAT([&] { layer.forward({nullptr}, f.modality_core, f.cross_core, *f.ops, saved); },
              ::testing::ThrowsMessage<Error>(::testing::HasSubstr("1 inputs for 3 modalities")));
}

}  // namespace
}  // namespace longnet
