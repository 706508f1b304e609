// The CPU ModelOps' linear, layer norm and GELU: forwards against naive double loops,
// backwards against central finite differences in float64, float32 against float64.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <string>
#include <vector>

#include "model/ops/model_ops.hpp"
#include "tests/model/ops/model_ops_test_support.hpp"

namespace longnet {
namespace {

using namespace test;

// Finite differences in double agree with an exact gradient to ~1e-9 on O(1) data.
constexpr double kGradTol = 1e-7;
// float32 against float64: a few ulps (6e-8) times the small reduction lengths used here.
constexpr double kFloat32Tol = 1e-5;

class CpuLinearNormGeluTest : public ::testing::Test {
 protected:
  std::unique_ptr<ModelOps> ops = make_cpu_model_ops();
};

// ---- linear --------------------------------------------------------------------------------
constexpr int64_t M = 7, K = 5, N = 3;

std::vector<double> naive_linear(const Tensor& x, const Tensor& w, const Tensor* b) {
  const auto xs = x.span<double>(), ws = w.span<double>();
  const int64_t k = w.dim(1), n = w.dim(0), m = x.numel() / k;
  std::vector<double> y(static_cast<std::size_t>(m * n));
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double s = b != nullptr ? b->span<double>()[j] : 0.0;
      for (int64_t p = 0; p < k; ++p) s += xs[i * k + p] * ws[j * k + p];
      y[i * n + j] = s;
    }
  }
  return y;
}

TEST_F(CpuLinearNormGeluTest, LinearForwardMatchesNaiveLoopWithAndWithoutBias) {
  const Tensor x = random_double({M, K}, 1), w = random_double({N, K}, 2),
               b = random_double({N}, 3);
  Tensor y({M, N}, DType::float64);
  y.poison();
  ops->linear_forward(x, w, &b, y);
  EXPECT_LT(max_error(y, naive_linear(x, w, &b)), 1e-14);
  y.poison();
  ops->linear_forward(x, w, nullptr, y);
  EXPECT_LT(max_error(y, naive_linear(x, w, nullptr)), 1e-14);
}

TEST_F(CpuLinearNormGeluTest, LinearTreatsLeadingDimsAsRows) {
  const Tensor x = random_double({2, 4, K}, 4), w = random_double({N, K}, 5),
               b = random_double({N}, 6);
  Tensor y({2, 4, N}, DType::float64);
  ops->linear_forward(x, w, &b, y);
  EXPECT_LT(max_error(y, naive_linear(x, w, &b)), 1e-14);
}

TEST_F(CpuLinearNormGeluTest, LinearBackwardMatchesFiniteDifferencesAndAccumulates) {
  Tensor x = random_double({M, K}, 7), w = random_double({N, K}, 8), b = random_double({N}, 9);
  const Tensor dy = random_double({M, N}, 10);
  Tensor y({M, N}, DType::float64);
  auto loss = [&] {
    ops->linear_forward(x, w, &b, y);
    return dot(y, dy);
  };
  // dw and db start non-zero: the op must add to them, not overwrite.
  const Tensor dw0 = random_double({N, K}, 11), db0 = random_double({N}, 12);
  Tensor dx({M, K}, DType::float64), dw = dw0.clone(), db = db0.clone();
  dx.poison();
  ops->linear_backward(x, w, dy, &dx, dw, &db);

  EXPECT_LT(max_error(dx, numeric_gradient(x, loss)), kGradTol);
  EXPECT_LT(max_error(minus(dw, dw0), numeric_gradient(w, loss)), kGradTol);
  EXPECT_LT(max_error(minus(db, db0), numeric_gradient(b, loss)), kGradTol);
}

TEST_F(CpuLinearNormGeluTest, LinearBackwardWithoutDxAndDbStillAccumulatesDw) {
  Tensor x = random_double({M, K}, 13), w = random_double({N, K}, 14);
  const Tensor dy = random_double({M, N}, 15);
  Tensor y({M, N}, DType::float64);
  Tensor dw = Tensor::zeros({N, K}, DType::float64);
  ops->linear_backward(x, w, dy, nullptr, dw, nullptr);
  EXPECT_LT(max_error(dw, numeric_gradient(w,
                                           [&] {
                                             ops->linear_forward(x, w, nullptr, y);
                                             return dot(y, dy);
                                           })),
            kGradTol);
}

TEST_F(CpuLinearNormGeluTest, LinearFloat32MatchesFloat64) {
  const Tensor x = random_double({M, K}, 16), w = random_double({N, K}, 17),
               b = random_double({N}, 18);
  const Tensor dy = random_double({M, N}, 19);
  Tensor y64({M, N}, DType::float64), dx64({M, K}, DType::float64);
  Tensor dw64 = Tensor::zeros({N, K}, DType::float64), db64 = Tensor::zeros({N}, DType::float64);
  ops->linear_forward(x, w, &b, y64);
  ops->linear_backward(x, w, dy, &dx64, dw64, &db64);

  const Tensor x32 = x.cast(DType::float32), w32 = w.cast(DType::float32),
               b32 = b.cast(DType::float32), dy32 = dy.cast(DType::float32);
  Tensor y32({M, N}, DType::float32), dx32({M, K}, DType::float32);
  Tensor dw32 = Tensor::zeros({N, K}), db32 = Tensor::zeros({N});
  ops->linear_forward(x32, w32, &b32, y32);
  ops->linear_backward(x32, w32, dy32, &dx32, dw32, &db32);
  EXPECT_LT(max_error(y32, values(y64)), kFloat32Tol);
  EXPECT_LT(max_error(dx32, values(dx64)), kFloat32Tol);
  EXPECT_LT(max_error(dw32, values(dw64)), kFloat32Tol);
  EXPECT_LT(max_error(db32, values(db64)), kFloat32Tol);
}

// ---- layer norm ----------------------------------------------------------------------------
constexpr int64_t kRows = 6, C = 13;
constexpr double kLnEps = 1e-5;

struct NaiveLayerNorm {
  std::vector<double> y, mean, rstd;
};
NaiveLayerNorm naive_layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta) {
  const auto xs = x.span<double>(), g = gamma.span<double>(), b = beta.span<double>();
  const int64_t c = gamma.numel(), rows = x.numel() / c;
  NaiveLayerNorm out;
  for (int64_t r = 0; r < rows; ++r) {
    double mu = 0, var = 0;
    for (int64_t j = 0; j < c; ++j) mu += xs[r * c + j] / static_cast<double>(c);
    for (int64_t j = 0; j < c; ++j) var += std::pow(xs[r * c + j] - mu, 2) / static_cast<double>(c);
    const double rs = 1 / std::sqrt(var + kLnEps);
    for (int64_t j = 0; j < c; ++j) out.y.push_back((xs[r * c + j] - mu) * rs * g[j] + b[j]);
    out.mean.push_back(mu);
    out.rstd.push_back(rs);
  }
  return out;
}

TEST_F(CpuLinearNormGeluTest, LayerNormForwardMatchesNaiveLoopAndSavesMeanAndRstd) {
  const Tensor x = random_double({kRows, C}, 20, 2.0, 0.5), gamma = random_double({C}, 21),
               beta = random_double({C}, 22);
  Tensor y({kRows, C}, DType::float64), mean({kRows}, DType::float64),
      rstd({kRows}, DType::float64);
  ops->layer_norm_forward(x, gamma, beta, kLnEps, y, mean, rstd);
  const NaiveLayerNorm want = naive_layer_norm(x, gamma, beta);
  EXPECT_LT(max_error(y, want.y), 1e-13);
  EXPECT_LT(max_error(mean, want.mean), 1e-14);
  EXPECT_LT(max_error(rstd, want.rstd), 1e-14);
}

TEST_F(CpuLinearNormGeluTest, LayerNormBackwardMatchesFiniteDifferencesAndAccumulates) {
  Tensor x = random_double({2, 3, C}, 23), gamma = random_double({C}, 24),
         beta = random_double({C}, 25);
  const Tensor dy = random_double({2, 3, C}, 26);
  Tensor y({2, 3, C}, DType::float64), mean({2, 3}, DType::float64), rstd({2, 3}, DType::float64);
  auto loss = [&] {
    ops->layer_norm_forward(x, gamma, beta, kLnEps, y, mean, rstd);
    return dot(y, dy);
  };
  loss();  // mean and rstd of the unperturbed x, as the backward expects
  const Tensor dgamma0 = random_double({C}, 27), dbeta0 = random_double({C}, 28);
  Tensor dx({2, 3, C}, DType::float64), dgamma = dgamma0.clone(), dbeta = dbeta0.clone();
  dx.poison();
  ops->layer_norm_backward(x, gamma, mean, rstd, dy, dx, dgamma, dbeta);

  EXPECT_LT(max_error(dx, numeric_gradient(x, loss)), kGradTol);
  EXPECT_LT(max_error(minus(dgamma, dgamma0), numeric_gradient(gamma, loss)), kGradTol);
  EXPECT_LT(max_error(minus(dbeta, dbeta0), numeric_gradient(beta, loss)), kGradTol);
}

TEST_F(CpuLinearNormGeluTest, LayerNormFloat32MatchesFloat64EvenForRowsFarFromZero) {
  // Rows with mean 300 and std 1: a one-pass variance (E[x^2] - E[x]^2) in float32 would
  // lose every digit here.
  const Tensor x = random_double({kRows, C}, 29, 1.0, 300.0), gamma = random_double({C}, 30),
               beta = random_double({C}, 31), dy = random_double({kRows, C}, 32);
  auto run = [&](DType dtype) {
    const Tensor xt = x.cast(dtype), g = gamma.cast(dtype), b = beta.cast(dtype),
                 dyt = dy.cast(dtype);
    Tensor y({kRows, C}, dtype), mean({kRows}, dtype), rstd({kRows}, dtype), dx({kRows, C}, dtype);
    Tensor dg = Tensor::zeros({C}, dtype), db = Tensor::zeros({C}, dtype);
    ops->layer_norm_forward(xt, g, b, kLnEps, y, mean, rstd);
    ops->layer_norm_backward(xt, g, mean, rstd, dyt, dx, dg, db);
    return std::vector<Tensor>{y, dx, dg, db};
  };
  const std::vector<Tensor> want = run(DType::float64), got = run(DType::float32);
  const char* names[] = {"y", "dx", "dgamma", "dbeta"};
  for (std::size_t i = 0; i < want.size(); ++i) {
    // The float32 input itself is rounded at 300 by ~1.5e-5, i.e. 1.5e-5 of a std.
    EXPECT_LT(max_error(got[i], values(want[i])), 1e-4) << names[i];
  }
}

// ---- GELU ----------------------------------------------------------------------------------
TEST_F(CpuLinearNormGeluTest, GeluForwardIsTheExactErfForm) {
  const Tensor x = random_double({5, 11}, 33, 2.5);
  Tensor y({5, 11}, DType::float64);
  ops->gelu_forward(x, y);
  std::vector<double> want;
  for (double v : x.span<double>())
    want.push_back(0.5 * v * (1 + std::erf(v / std::numbers::sqrt2)));
  EXPECT_LT(max_error(y, want), 1e-15);
}

TEST_F(CpuLinearNormGeluTest, GeluBackwardMatchesFiniteDifferences) {
  Tensor x = random_double({5, 11}, 34, 2.5);
  const Tensor dy = random_double({5, 11}, 35);
  Tensor y({5, 11}, DType::float64), dx({5, 11}, DType::float64);
  ops->gelu_backward(x, dy, dx);
  EXPECT_LT(max_error(dx, numeric_gradient(x,
                                           [&] {
                                             ops->gelu_forward(x, y);
                                             return dot(y, dy);
                                           })),
            kGradTol);
}

TEST_F(CpuLinearNormGeluTest, GeluFloat32MatchesFloat64) {
  const Tensor x = random_double({5, 11}, 36, 2.5), dy = random_double({5, 11}, 37);
  Tensor y64({5, 11}, DType::float64), dx64({5, 11}, DType::float64);
  Tensor y32({5, 11}, DType::float32), dx32({5, 11}, DType::float32);
  ops->gelu_forward(x, y64);
  ops->gelu_backward(x, dy, dx64);
  ops->gelu_forward(x.cast(DType::float32), y32);
  ops->gelu_backward(x.cast(DType::float32), dy.cast(DType::float32), dx32);
  EXPECT_LT(max_error(y32, values(y64)), kFloat32Tol);
  EXPECT_LT(max_error(dx32, values(dx64)), kFloat32Tol);
}

// The float32 GELU has its own vector math (model/ops/float_vector_math.hpp): every float
// in [-14, 14] at steps of 1/1024 (where GELU and its slope leave 0 and 1 within float
// precision), both signs of zero, values either side of its exp's clamp at
// x^2 / 2 = 87, and huge inputs. The bound: 2.5e-7 (4 float ulps at 1) relative to
// max(1, |value|); the erfc fit alone contributes up to 6e-8.
TEST_F(CpuLinearNormGeluTest, GeluFloat32IsAccurateOverTheWholeRange) {
  std::vector<double> inputs;
  for (int i = -14 * 1024; i <= 14 * 1024; ++i) inputs.push_back(i / 1024.0);
  for (const double v :
       {-0.0, 1e-30, -1e-30, 13.18, 13.20, -13.18, -13.20, 40.0, -40.0, 1e30, -1e30})
    inputs.push_back(v);
  const auto n = static_cast<int64_t>(inputs.size());
  Tensor x({n}, DType::float32), dy({n}, DType::float32), y({n}, DType::float32),
      dx({n}, DType::float32);
  for (int64_t i = 0; i < n; ++i) {
    x.span<float>()[i] = static_cast<float>(inputs[i]);
    dy.span<float>()[i] = 1.0f;
  }
  ops->gelu_forward(x, y);
  ops->gelu_backward(x, dy, dx);
  double worst_y = 0, worst_dx = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double v = x.span<float>()[i];  // the float the op saw
    const double cdf = 0.5 * std::erfc(-v / std::numbers::sqrt2);
    const double pdf =
        std::exp(-0.5 * v * v) * 0.5 * std::numbers::inv_sqrtpi * std::numbers::sqrt2;
    const double want_y = v * cdf, want_dx = cdf + v * pdf;
    const double err_y = std::abs(y.span<float>()[i] - want_y) / std::max(1.0, std::abs(want_y));
    const double err_dx =
        std::abs(dx.span<float>()[i] - want_dx) / std::max(1.0, std::abs(want_dx));
    ASSERT_LT(err_y, 2.5e-7) << "GELU(" << v << ") = " << y.span<float>()[i] << ", want " << want_y;
    ASSERT_LT(err_dx, 2.5e-7) << "GELU'(" << v << ") = " << dx.span<float>()[i] << ", want "
                              << want_dx;
    worst_y = std::max(worst_y, err_y);
    worst_dx = std::max(worst_dx, err_dx);
  }
  RecordProperty("worst_relative_error_forward", std::to_string(worst_y));
  RecordProperty("worst_relative_error_backward", std::to_string(worst_dx));
}

TEST_F(CpuLinearNormGeluTest, GeluFloat32PropagatesNaN) {
  Tensor x({2}, DType::float32), y({2}, DType::float32), dx({2}, DType::float32);
  x.span<float>()[0] = std::numeric_limits<float>::quiet_NaN();
  x.span<float>()[1] = 0.5f;
  ops->gelu_forward(x, y);
  ops->gelu_backward(x, x, dx);
  EXPECT_TRUE(std::isnan(y.span<float>()[0]));
  EXPECT_TRUE(std::isnan(dx.span<float>()[0]));
  EXPECT_FALSE(std::isnan(y.span<float>()[1]));
}

}  // namespace
}  // namespace longnet
