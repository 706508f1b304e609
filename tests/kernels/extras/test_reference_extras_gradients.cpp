// The dense reference with bias and dropout: its analytic gradients (dq, dk, dv and dbias)
// against central finite differences of L = sum(dout * o), in double.
//
// The dropout mask depends on token positions only, so L is a smooth function of q, k, v
// and the bias for a fixed seed, and finite differences apply unchanged. Each input is
// checked along its own random direction (an error in one is not hidden by another), and
// dbias also entry by entry on the diagonals that hold pairs.
//
// Tolerance: as in tests/kernels/test_reference_gradients.cpp, step 1e-5 gives truncation and
// rounding errors ~1e-10 on |L| ~ 10, so 1e-7 relative is loose yet far below the O(1)
// relative error of a wrong term (a missing Z, a delta of the undropped output).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "tests/kernels/extras/extras_test_support.hpp"
#include "tests/reference/dense_attention_reference.hpp"

namespace longnet {
namespace {

using reference::BiasTable;
using reference::DenseExtras;
using reference::DenseInputs;

constexpr double kStep = 1e-5;
constexpr double kRelativeTolerance = 1e-7;
constexpr uint64_t kSeed = 77031;

struct GradCase {
  AttentionShape shape;
  DilatedAttentionConfig config;
  float dropout_p;
};

void PrintTo(const GradCase& c, std::ostream* os) {
  *os << c.shape.describe() << " " << c.config.describe() << " dropout " << c.dropout_p;
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

double loss(const DilatedAttentionConfig& config, const DenseInputs& in, const DenseExtras& extras,
            const std::vector<double>& dout) {
  return dot(reference::dense_forward(config, in, extras).o, dout);
}

// Adds eps * direction to q, k, v or the (flattened) bias.
enum class Input { q, k, v, bias };

void perturb(DenseInputs& in, DenseExtras& extras, Input x, const std::vector<double>& direction,
             double eps) {
  if (x == Input::bias) {
    std::size_t at = 0;
    for (auto& heads : extras.bias) {
      for (auto& values : heads) {
        for (double& b : values) b += eps * direction[at++];
      }
    }
    return;
  }
  auto& values = x == Input::q ? in.q : x == Input::k ? in.k : in.v;
  for (std::size_t i = 0; i < values.size(); ++i) values[i] += eps * direction[i];
}

double central_difference(const DilatedAttentionConfig& config, const DenseInputs& in,
                          const DenseExtras& extras, Input x, const std::vector<double>& direction,
                          const std::vector<double>& dout) {
  DenseInputs plus_in = in, minus_in = in;
  DenseExtras plus = extras, minus = extras;
  perturb(plus_in, plus, x, direction, kStep);
  perturb(minus_in, minus, x, direction, -kStep);
  return (loss(config, plus_in, plus, dout) - loss(config, minus_in, minus, dout)) / (2 * kStep);
}

class ReferenceExtrasGradients : public testing::TestWithParam<GradCase> {};

TEST_P(ReferenceExtrasGradients, MatchFiniteDifferences) {
  const GradCase& c = GetParam();
  std::mt19937_64 rng(kSeed);
  const auto n = static_cast<std::size_t>(c.shape.elements());
  DenseInputs in;
  in.shape = c.shape;
  in.q = normal_vector(n, rng);
  in.k = normal_vector(n, rng);
  in.v = normal_vector(n, rng);
  const std::vector<double> dout = normal_vector(n, rng);
  DenseExtras extras;
  extras.dropout_p = c.dropout_p;
  extras.dropout_seed = 5;
  for (const DilationPattern& p : c.config.patterns) {
    auto& heads = extras.bias.emplace_back();
    for (int64_t h = 0; h < c.shape.heads; ++h) {
      heads.push_back(normal_vector(static_cast<std::size_t>(2 * relative_bias_rows(p) - 1), rng));
    }
  }
  const auto grads = reference::dense_backward(c.config, in, dout, extras);
  const std::vector<double> dbias = test::flatten(grads.dbias);

  const struct {
    Input input;
    const char* name;
    const std::vector<double>& gradient;
  } inputs[] = {{Input::q, "q", grads.dq},
                {Input::k, "k", grads.dk},
                {Input::v, "v", grads.dv},
                {Input::bias, "bias", dbias}};
  for (const auto& x : inputs) {
    const std::vector<double> direction = normal_vector(x.gradient.size(), rng);
    const double numeric = central_difference(c.config, in, extras, x.input, direction, dout);
    const double analytic = dot(x.gradient, direction);
    EXPECT_NEAR(analytic, numeric, kRelativeTolerance * std::max(1.0, std::abs(numeric)))
        << "directional derivative along a random direction in " << x.name;
  }

  // Entry by entry: every dbias element, each a sum over one diagonal of every segment.
  std::vector<double> unit(dbias.size(), 0.0);
  int64_t nonzero = 0;
  for (std::size_t e = 0; e < dbias.size(); ++e) {
    unit[e] = 1.0;
    const double numeric = central_difference(c.config, in, extras, Input::bias, unit, dout);
    unit[e] = 0.0;
    EXPECT_NEAR(dbias[e], numeric, kRelativeTolerance * std::max(1.0, std::abs(numeric)))
        << "dbias element " << e;
    nonzero += dbias[e] != 0.0;
  }
  EXPECT_GT(nonzero, 0) << "no bias entry carries gradient: the case checks nothing";
}

GradCase make_case(AttentionShape shape, std::vector<int64_t> w, std::vector<int64_t> r,
                   bool causal, HeadOffsets scheme, float dropout_p) {
  return {shape, DilatedAttentionConfig::from_lists(w, r, causal, scheme), dropout_p};
}

INSTANTIATE_TEST_SUITE_P(
    Small, ReferenceExtrasGradients,
    testing::Values(
        // Bias only, two patterns, a short last segment (13 = 2 * 6 + 1).
        make_case({1, 13, 2, 4}, {6, 13}, {1, 3}, true, HeadOffsets::interleaved, 0.0f),
        // Bias and dropout, non-causal, grouped, rows no pattern selects (r = 3, H = 2).
        make_case({2, 11, 2, 3}, {4, 8}, {2, 3}, false, HeadOffsets::grouped, 0.4f),
        // Heavy dropout on a dense causal segment (w > N).
        make_case({1, 9, 1, 5}, {16}, {1}, true, HeadOffsets::interleaved, 0.7f)),
    [](const testing::TestParamInfo<GradCase>& case_info) {
      return reference::case_name(case_info.param.shape, case_info.param.config) +
             fmt::format("_drop{}", static_cast<int>(case_info.param.dropout_p * 10));
    });

}  // namespace
}  // namespace longnet
