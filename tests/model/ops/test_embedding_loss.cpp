// The CPU ModelOps' embedding and softmax cross-entropy: forwards against naive loops,
// backwards against central finite differences in float64, float32 against float64.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "model/ops/model_ops.hpp"
#include "tests/model/ops/model_ops_test_support.hpp"

namespace longnet {
namespace {

using namespace test;
using ::testing::HasSubstr;

constexpr double kGradTol = 1e-7;
constexpr double kFloat32Tol = 1e-5;
constexpr int64_t V = 11, C = 13, T = 9;

class CpuEmbeddingLossTest : public ::testing::Test {
 protected:
  std::unique_ptr<ModelOps> ops = make_cpu_model_ops();
};

// ---- embedding -----------------------------------------------------------------------------
// Ids with repeats (3 three times, 0 and V-1 at the edges of the table).
const std::vector<int32_t> kTokens = {3, 0, 10, 3, 7, 3, 1, 10, 5};

TEST_F(CpuEmbeddingLossTest, EmbeddingForwardCopiesTheTokensRows) {
  const Tensor table = random_double({V, C}, 40);
  Tensor out({3, 3, C}, DType::float64);  // leading dims [3, 3] hold the T = 9 tokens
  out.poison();
  ops->embedding_forward(kTokens, table, out);
  std::vector<double> want;
  for (int32_t id : kTokens) {
    for (int64_t c = 0; c < C; ++c) want.push_back(table.span<double>()[id * C + c]);
  }
  EXPECT_EQ(values(out), want);
}

TEST_F(CpuEmbeddingLossTest, EmbeddingBackwardMatchesFiniteDifferencesWithRepeatedIds) {
  Tensor table = random_double({V, C}, 41);
  const Tensor dout = random_double({T, C}, 42);
  Tensor out({T, C}, DType::float64);
  const Tensor dtable0 = random_double({V, C}, 43);
  Tensor dtable = dtable0.clone();
  ops->embedding_backward(kTokens, dout, dtable);
  EXPECT_LT(max_error(minus(dtable, dtable0), numeric_gradient(table,
                                                               [&] {
                                                                 ops->embedding_forward(kTokens,
                                                                                        table, out);
                                                                 return dot(out, dout);
                                                               })),
            kGradTol);
}

TEST_F(CpuEmbeddingLossTest, EmbeddingBackwardFloat32MatchesFloat64) {
  const Tensor dout = random_double({T, C}, 44);
  Tensor d64 = Tensor::zeros({V, C}, DType::float64), d32 = Tensor::zeros({V, C});
  ops->embedding_backward(kTokens, dout, d64);
  ops->embedding_backward(kTokens, dout.cast(DType::float32), d32);
  EXPECT_LT(max_error(d32, values(d64)), kFloat32Tol);
}

TEST_F(CpuEmbeddingLossTest, EmbeddingIdOutOfRangeNamesTheIdAndPosition) {
  const Tensor table = random_double({V, C}, 45);
  Tensor out({4, C}, DType::float64);
  const std::vector<int32_t> too_big = {1, 2, 11, 3};
  try {
    ops->embedding_forward(too_big, table, out);
    FAIL() << "an id equal to V was accepted";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("token id 11 at position 2 is out of range [0, 11)"));
  }
  const std::vector<int32_t> negative = {1, -1, 2, 3};
  Tensor dtable = Tensor::zeros({V, C}, DType::float64);
  try {
    ops->embedding_backward(negative, out, dtable);
    FAIL() << "a negative id was accepted";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("token id -1 at position 1 is out of range"));
  }
}

// ---- cross-entropy -------------------------------------------------------------------------
std::vector<double> naive_token_losses(const Tensor& logits, const std::vector<int32_t>& targets) {
  const auto z = logits.span<double>();
  const int64_t v = logits.shape().back();
  std::vector<double> losses;
  for (std::size_t t = 0; t < targets.size(); ++t) {
    double sum = 0;
    for (int64_t j = 0; j < v; ++j) sum += std::exp(z[t * v + j]);
    losses.push_back(std::log(sum) - z[t * v + targets[t]]);
  }
  return losses;
}

TEST_F(CpuEmbeddingLossTest, CrossEntropyReturnsTheSumOfNaiveTokenLosses) {
  const Tensor logits = random_double({T, V}, 46, 3.0);
  const std::vector<int32_t> targets = random_ids(T, V, 47);
  std::vector<double> per_token(T, NAN);
  const double total = ops->cross_entropy(logits, targets, 1.0, nullptr, per_token);
  const std::vector<double> want = naive_token_losses(logits, targets);
  double want_total = 0;
  for (double l : want) want_total += l;
  EXPECT_NEAR(total, want_total, 1e-13 * want_total);
  EXPECT_LT(max_error(per_token, want), 1e-14);
}

// The first of equal values wins, as std::max_element: planted ties and maxima at the
// ends of rows.
TEST_F(CpuEmbeddingLossTest, ArgmaxRowsFindsTheFirstLargestValueOfEachRow) {
  for (const DType dtype : {DType::float64, DType::float32}) {
    Tensor logits = random_double({T, V}, 49, 3.0);
    std::vector<double> raw(logits.span<double>().begin(), logits.span<double>().end());
    raw[0 * V + 0] = 50;      // row 0: the first column
    raw[1 * V + V - 1] = 50;  // row 1: the last column
    raw[2 * V + 4] = 50;      // row 2: a tie, the first one wins
    raw[2 * V + 8] = 50;
    std::ranges::copy(raw, logits.span<double>().begin());
    const Tensor input = dtype == DType::float64 ? logits : logits.cast(DType::float32);
    std::vector<int32_t> got(T, -1);
    ops->argmax_rows(input, got);
    for (int64_t t = 0; t < T; ++t) {
      const auto row = raw.begin() + t * V;
      EXPECT_EQ(got[t], std::max_element(row, row + V) - row) << "row " << t;
    }
    EXPECT_EQ(got[0], 0);
    EXPECT_EQ(got[1], V - 1);
    EXPECT_EQ(got[2], 4);
  }
}

TEST_F(CpuEmbeddingLossTest, CrossEntropyGradientIsScaledFiniteDifferences) {
  Tensor logits = random_double({T, V}, 48, 3.0);
  const std::vector<int32_t> targets = random_ids(T, V, 49);
  constexpr double kScale = 1.0 / T;  // the mean loss's gradient
  Tensor dlogits({T, V}, DType::float64);
  dlogits.poison();
  ops->cross_entropy(logits, targets, kScale, &dlogits, {});
  std::vector<double> want = numeric_gradient(
      logits, [&] { return ops->cross_entropy(logits, targets, 1.0, nullptr, {}); });
  for (double& g : want) g *= kScale;
  EXPECT_LT(max_error(dlogits, want), kGradTol);
}

TEST_F(CpuEmbeddingLossTest, CrossEntropyIsStableForHugeLogits) {
  // exp(1000) overflows a double; the max-subtracted log-sum-exp does not care, and a
  // shift of every logit changes neither the loss nor its gradient.
  const Tensor base = random_double({T, V}, 50);
  Tensor shifted = base.clone();
  for (double& z : shifted.span<double>()) z += 1000.0;
  const std::vector<int32_t> targets = random_ids(T, V, 51);
  Tensor d_base({T, V}, DType::float64), d_shifted({T, V}, DType::float64);
  const double l_base = ops->cross_entropy(base, targets, 1.0, &d_base, {});
  const double l_shifted = ops->cross_entropy(shifted, targets, 1.0, &d_shifted, {});
  ASSERT_TRUE(std::isfinite(l_shifted));
  EXPECT_NEAR(l_shifted, l_base, 1e-10 * l_base);
  EXPECT_LT(max_error(d_shifted, values(d_base)), 1e-12);

  Tensor f_shifted = shifted.cast(DType::float32), d32({T, V}, DType::float32);
  const double l32 = ops->cross_entropy(f_shifted, targets, 1.0, &d32, {});
  // float32 holds 1000 + z only to 6e-5: the loss moves by that much per token.
  EXPECT_NEAR(l32, l_base, T * 1.2e-4);
  EXPECT_LT(max_error(d32, values(d_base)), 1e-4);
}

TEST_F(CpuEmbeddingLossTest, CrossEntropyFloat32MatchesFloat64) {
  const Tensor logits = random_double({T, V}, 52, 3.0);
  const std::vector<int32_t> targets = random_ids(T, V, 53);
  Tensor d64({T, V}, DType::float64), d32({T, V}, DType::float32);
  const double l64 = ops->cross_entropy(logits, targets, 0.5, &d64, {});
  const double l32 = ops->cross_entropy(logits.cast(DType::float32), targets, 0.5, &d32, {});
  EXPECT_NEAR(l32, l64, kFloat32Tol * l64);
  EXPECT_LT(max_error(d32, values(d64)), kFloat32Tol);
}

TEST_F(CpuEmbeddingLossTest, CrossEntropyTargetOutOfRangeNamesTheTargetAndPosition) {
  const Tensor logits = random_double({3, V}, 54);
  const std::vector<int32_t> targets = {0, 4, 12};
  try {
    ops->cross_entropy(logits, targets, 1.0, nullptr, {});
    FAIL() << "a target beyond V was accepted";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("target id 12 at position 2 is out of range [0, 11)"));
  }
}

}  // namespace
}  // namespace longnet
