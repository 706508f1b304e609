// xPos: the backward is the transpose of the forward, and q'.k' is the distance-only
// function of the definition, finite and accurate in float32 at positions near 10^9 with
// segments of 65536 tokens.
#include "model/xpos.hpp"
#include "runtime/random_fill.hpp"

#include <gtest/gtest.h>

#include <cmath>

namespace longnet {
namespace {

double dot(const Tensor& a, const Tensor& b) {
  const Tensor x = a.cast(DType::float64), y = b.cast(DType::float64);
  double s = 0;
  for (int64_t i = 0; i < x.numel(); ++i) s += x.data<double>()[i] * y.data<double>()[i];
  return s;
}

TEST(Xpos, BackwardIsTheTransposeOfTheForward) {
  const Shape shape{2, 37, 3, 16};
  for (XposRole role : {XposRole::query, XposRole::key}) {
    const XposSpan span{1000, 16, 8.0};
    const Tensor x = random_tensor(shape, 1).cast(DType::float64);
    const Tensor y = random_tensor(shape, 2).cast(DType::float64);
    Tensor fx(shape, DType::float64);
    xpos_forward(x, fx, role, span);
    Tensor ty = Tensor::zeros(shape, DType::float64);
    xpos_backward_accumulate(y, ty, role, span);
    EXPECT_NEAR(dot(fx, y), dot(x, ty), 1e-10 * std::abs(dot(fx, y)));
  }
}

// sum_i zeta_i^((m - n)/s) (R((m - n) theta_i) q_i) . k_i, evaluated directly in double
// from the definition (no anchor), with the sum of |terms| for a relative bound.
std::pair<double, double> score_from_definition(const float* q, const float* k, int64_t dim,
                                                int64_t m, int64_t n, double scale_base) {
  double sum = 0, magnitude = 0;
  const double distance = static_cast<double>(m - n);
  for (int64_t i = 0; i < dim / 2; ++i) {
    const double fi = static_cast<double>(i), fd = static_cast<double>(dim);
    const double theta = std::pow(10000.0, -2.0 * fi / fd);
    const double zeta = (2.0 * fi + 0.4 * fd) / (1.4 * fd);
    const double c = std::cos(distance * theta), s = std::sin(distance * theta);
    const double decay = std::pow(zeta, distance / scale_base);
    const double rq0 = c * q[2 * i] - s * q[2 * i + 1], rq1 = s * q[2 * i] + c * q[2 * i + 1];
    const double term = decay * (rq0 * k[2 * i] + rq1 * k[2 * i + 1]);
    sum += term;
    magnitude += std::abs(term);
  }
  return {sum, magnitude};
}

TEST(Xpos, Float32ScoresNearOneBillionMatchTheDefinition) {
  constexpr int64_t kDim = 64, kSegment = 65536;
  const int64_t segment_start = (int64_t{1000000000} / kSegment) * kSegment;
  const Tensor q = random_tensor({1, 1, 1, kDim}, 3), k = random_tensor({1, 1, 1, kDim}, 4);
  // Pairs across a whole 65536-token segment: both ends, the middle, equal positions.
  const std::pair<int64_t, int64_t> pairs[] = {{kSegment - 1, 0},
                                               {kSegment - 1, kSegment - 1},
                                               {kSegment / 2, 17},
                                               {40000, 39999},
                                               {kSegment / 2, kSegment / 2 - 1000}};
  for (auto [i, j] : pairs) {
    const int64_t m = segment_start + i, n = segment_start + j;
    Tensor qm({1, 1, 1, kDim}, DType::float32), kn({1, 1, 1, kDim}, DType::float32);
    xpos_forward(q, qm, XposRole::query, {m, kSegment, 512.0});
    xpos_forward(k, kn, XposRole::key, {n, kSegment, 512.0});
    for (float x : qm.span<float>()) ASSERT_TRUE(std::isfinite(x)) << "query at " << m;
    for (float x : kn.span<float>()) ASSERT_TRUE(std::isfinite(x)) << "key at " << n;
    const auto [expected, magnitude] =
        score_from_definition(q.data<float>(), k.data<float>(), kDim, m, n, 512.0);
    EXPECT_NEAR(dot(qm, kn), expected, 1e-5 * magnitude) << "m=" << m << " n=" << n;
  }
}

TEST(Xpos, ScoresDependOnlyOnDistanceWithinASegment) {
  constexpr int64_t kDim = 8;
  const Tensor q = random_tensor({1, 1, 1, kDim}, 5).cast(DType::float64);
  const Tensor k = random_tensor({1, 1, 1, kDim}, 6).cast(DType::float64);
  auto score = [&](int64_t m, int64_t n, int64_t segment) {
    Tensor qm({1, 1, 1, kDim}, DType::float64), kn({1, 1, 1, kDim}, DType::float64);
    xpos_forward(q, qm, XposRole::query, {m, segment, 16.0});
    xpos_forward(k, kn, XposRole::key, {n, segment, 16.0});
    return dot(qm, kn);
  };
  // Same distance 5 at different places and under different anchors (segment lengths).
  const double base = score(105, 100, 64);
  EXPECT_NEAR(score(125, 120, 64), base, 1e-12 * std::abs(base));
  EXPECT_NEAR(score(105, 100, 128), base, 1e-12 * std::abs(base));
  EXPECT_NEAR(score(1000005, 1000000, 1024), base, 1e-9 * std::abs(base));
  // A different distance gives a different score.
  EXPECT_GT(std::abs(score(106, 100, 64) - base), 1e-6);
}

}  // namespace
}  // namespace longnet
