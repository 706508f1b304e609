// The dense reference's analytic gradients against central finite differences.
//
// The kernels' gradients are judged against dense_backward(), so dense_backward() must
// itself be right: here it is compared, in double precision on small shapes, with
// numerical derivatives of L(q, k, v) = sum(dout * o) where o = dense_forward(q, k, v).
// Both the directional derivative along a random direction (per input tensor, so an
// error in one is not hidden by the others) and a handful of single entries are checked.
//
// Tolerance. Central differences with step eps have truncation error ~eps^2 |L'''| / 6
// and rounding error ~ulp(L) / eps; with eps = 1e-5, |L| ~ 10 and O(1) third
// derivatives both are ~1e-10, so a relative agreement of 1e-7 is a loose, safe bound
// that a wrong term in the backward (an O(1) relative error) cannot meet.
#include "tests/reference/dense_attention_reference.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace longnet::reference {
namespace {

constexpr double kStep = 1e-5;
constexpr double kRelativeTolerance = 1e-7;
constexpr uint64_t kSeed = 20240611;

struct GradCase {
  AttentionShape shape;
  DilatedAttentionConfig config;
};

// Readable in failure messages and in the ctest names gtest_discover_tests builds.
void PrintTo(const GradCase& c, std::ostream* os) {
  *os << c.shape.describe() << " " << c.config.describe();
}

GradCase make_case(AttentionShape shape, std::vector<int64_t> w, std::vector<int64_t> r,
                   bool causal, HeadOffsets scheme, std::optional<double> scale = std::nullopt) {
  return {shape, DilatedAttentionConfig::from_lists(w, r, causal, scheme, scale)};
}

std::vector<double> normal_vector(std::size_t n, std::mt19937_64& rng) {
  std::normal_distribution<double> dist(0.0, 1.0);
  std::vector<double> x(n);
  for (double& e : x) e = dist(rng);
  return x;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// L = sum(dout * o). Rows no pattern selects have o = 0 and add nothing.
double loss(const DilatedAttentionConfig& config, const DenseInputs& in,
            const std::vector<double>& dout) {
  return dot(dense_forward(config, in).o, dout);
}

// Which input a derivative is taken with respect to.
enum class Input { q, k, v };
const char* input_name(Input x) { return x == Input::q ? "q" : x == Input::k ? "k" : "v"; }

std::vector<double>& field(DenseInputs& in, Input x) {
  return x == Input::q ? in.q : x == Input::k ? in.k : in.v;
}
const std::vector<double>& gradient(const DenseGradients& g, Input x) {
  return x == Input::q ? g.dq : x == Input::k ? g.dk : g.dv;
}

// (L(x + eps u) - L(x - eps u)) / (2 eps), perturbing only input `x`.
double central_difference(const DilatedAttentionConfig& config, DenseInputs in, Input x,
                          const std::vector<double>& direction, const std::vector<double>& dout) {
  const std::vector<double> base = field(in, x);
  auto& values = field(in, x);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = base[i] + kStep * direction[i];
  const double plus = loss(config, in, dout);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = base[i] - kStep * direction[i];
  const double minus = loss(config, in, dout);
  return (plus - minus) / (2 * kStep);
}

class ReferenceGradients : public testing::TestWithParam<GradCase> {
 protected:
  void SetUp() override {
    const auto& c = GetParam();
    std::mt19937_64 rng(kSeed);
    const auto n = static_cast<std::size_t>(c.shape.elements());
    in_.shape = c.shape;
    in_.q = normal_vector(n, rng);
    in_.k = normal_vector(n, rng);
    in_.v = normal_vector(n, rng);
    dout_ = normal_vector(n, rng);
    grads_ = dense_backward(c.config, in_, dout_);
  }

  // Expects |numeric - analytic| <= kRelativeTolerance * max(|numeric|, floor).
  static void expect_close(double numeric, double analytic, double floor) {
    EXPECT_NEAR(numeric, analytic, kRelativeTolerance * std::max(std::abs(numeric), floor))
        << "numeric " << numeric << " analytic " << analytic;
  }

  DenseInputs in_;
  std::vector<double> dout_;
  DenseGradients grads_;
};

TEST_P(ReferenceGradients, DirectionalDerivativeMatchesCentralDifference) {
  const auto& c = GetParam();
  std::mt19937_64 rng(kSeed + 1);
  for (Input x : {Input::q, Input::k, Input::v}) {
    SCOPED_TRACE(input_name(x));
    const auto direction = normal_vector(field(in_, x).size(), rng);
    const double numeric = central_difference(c.config, in_, x, direction, dout_);
    const double analytic = dot(gradient(grads_, x), direction);
    // The floor keeps the bound meaningful when the derivative happens to be tiny.
    expect_close(numeric, analytic, 1.0);
  }
}

TEST_P(ReferenceGradients, SingleEntriesMatchCentralDifference) {
  const auto& c = GetParam();
  const auto n = static_cast<std::size_t>(c.shape.elements());
  // First, last and a few scattered entries of each input, fixed so failures reproduce.
  const std::size_t entries[] = {0, n / 3, n / 2 + 1, (2 * n) / 3 + 2, n - 1};
  for (Input x : {Input::q, Input::k, Input::v}) {
    for (std::size_t e : entries) {
      SCOPED_TRACE(testing::Message() << input_name(x) << "[" << e << "]");
      std::vector<double> unit(n, 0.0);
      unit[e] = 1.0;
      const double numeric = central_difference(c.config, in_, x, unit, dout_);
      expect_close(numeric, gradient(grads_, x)[e], 1.0);
    }
  }
}

TEST_P(ReferenceGradients, UncoveredRowsHaveZeroOutputAndGradients) {
  // A row no pattern selects is constant (o = 0) and lends no key to any row (keys and
  // queries share the predicate), so every gradient there is exactly zero.
  const auto& c = GetParam();
  const auto out = dense_forward(c.config, in_);
  const int64_t d = c.shape.head_dim;
  for (std::size_t row = 0; row < out.lse.size(); ++row) {
    if (!std::isinf(out.lse[row])) continue;
    for (int64_t x = 0; x < d; ++x) {
      const std::size_t at = row * static_cast<std::size_t>(d) + static_cast<std::size_t>(x);
      ASSERT_EQ(out.o[at], 0.0);
      ASSERT_EQ(grads_.dq[at], 0.0);
      ASSERT_EQ(grads_.dk[at], 0.0);
      ASSERT_EQ(grads_.dv[at], 0.0);
    }
  }
}

using HO = HeadOffsets;
INSTANTIATE_TEST_SUITE_P(
    SmallShapes, ReferenceGradients,
    testing::Values(
        // One dense pattern: plain softmax attention.
        make_case({1, 9, 1, 4}, {16}, {1}, false, HO::interleaved),
        make_case({1, 9, 2, 4}, {16}, {1}, true, HO::interleaved),
        // Dilated, short last segment, H not a multiple of r.
        make_case({2, 11, 3, 3}, {4}, {2}, true, HO::grouped),
        // Two patterns that overlap (both contain (w=4, r=1)'s diagonal blocks).
        make_case({1, 12, 2, 4}, {4, 8}, {1, 2}, false, HO::interleaved),
        make_case({1, 13, 3, 4}, {4, 8}, {1, 2}, true, HO::grouped),
        // The same pattern twice: every key counted twice, which the mixture must
        // differentiate through like any other overlap.
        make_case({1, 10, 2, 4}, {6, 6}, {2, 2}, false, HO::interleaved),
        // Rows no pattern selects (w=6, r=3 and w=4, r=2 leave e.g. token 1 of head 0 out).
        make_case({1, 12, 2, 4}, {6, 4}, {3, 2}, true, HO::interleaved),
        // Explicit scale, three patterns.
        make_case({1, 12, 2, 5}, {3, 6, 12}, {1, 2, 4}, false, HO::grouped, 0.7)),
    [](const testing::TestParamInfo<GradCase>& case_info) {
      return case_name(case_info.param.shape, case_info.param.config);
    });

// The uncovered-rows case above must actually have uncovered rows, or that test is void.
TEST(ReferenceGradientsCases, TheUncoveredRowsCaseHasUncoveredRows) {
  const auto config =
      DilatedAttentionConfig::from_lists({6, 4}, {3, 2}, true, HeadOffsets::interleaved);
  EXPECT_FALSE(reference_allowed(config.patterns[0], config.head_offsets, true, 0, 2, 1, 1));
  EXPECT_FALSE(reference_allowed(config.patterns[1], config.head_offsets, true, 0, 2, 1, 1));
}

}  // namespace
}  // namespace longnet::reference
