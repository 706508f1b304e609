// The CPU ModelOps' elementwise ops, squared norm, scaling and AdamW step.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>

#include "model/ops/model_ops.hpp"
#include "tests/model/ops/model_ops_test_support.hpp"

namespace longnet {
namespace {

using namespace test;

class CpuElementwiseTest : public ::testing::Test {
 protected:
  std::unique_ptr<ModelOps> ops = make_cpu_model_ops();
};

TEST_F(CpuElementwiseTest, AddAndAddInPlaceSumElementwise) {
  const Tensor a = random_double({7, 13}, 60), b = random_double({7, 13}, 61);
  std::vector<double> want = values(a);
  for (std::size_t i = 0; i < want.size(); ++i) want[i] += b.span<double>()[i];
  Tensor out({7, 13}, DType::float64);
  out.poison();
  ops->add(a, b, out);
  EXPECT_EQ(values(out), want);
  Tensor c = a.clone();
  ops->add_in_place(c, b);
  EXPECT_EQ(values(c), want);
}

TEST_F(CpuElementwiseTest, SumOfSquaresAndScaleMatchTheDefinition) {
  // 40,001 elements: more than one of the fixed summation chunks, and a ragged last one.
  Tensor t = random_double({40001}, 62);
  double want = 0;
  for (double x : t.span<double>()) want += x * x;
  EXPECT_NEAR(ops->sum_of_squares(t), want, 1e-12 * want);
  EXPECT_NEAR(ops->sum_of_squares(t.cast(DType::float32)), want, 1e-6 * want);

  std::vector<double> scaled = values(t);
  for (double& x : scaled) x *= -0.375;
  ops->scale(t, -0.375);
  EXPECT_EQ(values(t), scaled);  // a product by an exact binary fraction is exact
}

TEST_F(CpuElementwiseTest, ReductionsDoNotDependOnTheThreadCount) {
  const Tensor t = random_double({40001}, 63).cast(DType::float32);
  const Tensor x = random_double({300, 70}, 64).cast(DType::float32),
               w = random_double({5, 70}, 65).cast(DType::float32),
               dy = random_double({300, 5}, 66).cast(DType::float32);
  auto run = [&](int threads) {
    omp_set_num_threads(threads);
    Tensor dw = Tensor::zeros({5, 70}), db = Tensor::zeros({5});
    const double s = ops->sum_of_squares(t);
    ops->linear_backward(x, w, dy, nullptr, dw, &db);
    return std::pair{s, values(db)};
  };
  const int saved = omp_get_max_threads();
  const auto one = run(1), three = run(3);
  omp_set_num_threads(saved);
  EXPECT_EQ(one.first, three.first);
  EXPECT_EQ(one.second, three.second);
}

// ---- AdamW ---------------------------------------------------------------------------------
// The update written out once more, per element, in double, straight from the formula.
struct HandAdamW {
  double p, m = 0, v = 0;
  void step(double g, int64_t t, const AdamWSettings& s, bool decay) {
    m = s.beta1 * m + (1 - s.beta1) * g;
    v = s.beta2 * v + (1 - s.beta2) * g * g;
    const double mhat = m / (1 - std::pow(s.beta1, static_cast<double>(t)));
    const double vhat = v / (1 - std::pow(s.beta2, static_cast<double>(t)));
    p -= s.lr * (mhat / (std::sqrt(vhat) + s.eps) + (decay ? s.weight_decay * p : 0.0));
  }
};

class CpuAdamWTest : public CpuElementwiseTest, public ::testing::WithParamInterface<bool> {};

TEST_P(CpuAdamWTest, ThreeStepsFollowTheFormula) {
  const bool decay = GetParam();
  const AdamWSettings s{.lr = 1e-2, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.1};
  const Tensor p0 = random_double({5, 7}, 70);
  std::vector<HandAdamW> hand;
  for (double p : p0.span<double>()) hand.push_back({p});

  for (DType dtype : {DType::float64, DType::float32}) {
    Tensor p = p0.cast(dtype), m = Tensor::zeros({5, 7}, dtype), v = Tensor::zeros({5, 7}, dtype);
    std::vector<HandAdamW> want = hand;
    for (int64_t step = 1; step <= 3; ++step) {
      const Tensor g = random_double({5, 7}, 71 + static_cast<uint64_t>(step));
      ops->adamw_step(p, g.cast(dtype), m, v, step, s, decay);
      for (std::size_t i = 0; i < want.size(); ++i)
        want[i].step(g.span<double>()[i], step, s, decay);
    }
    std::vector<double> want_p, want_m, want_v;
    for (const HandAdamW& h : want) {
      want_p.push_back(h.p);
      want_m.push_back(h.m);
      want_v.push_back(h.v);
    }
    const double tol = dtype == DType::float64 ? 1e-14 : 1e-6;
    EXPECT_LT(max_error(p, want_p), tol) << dtype_name(dtype);
    EXPECT_LT(max_error(m, want_m), tol) << dtype_name(dtype);
    EXPECT_LT(max_error(v, want_v), tol) << dtype_name(dtype);
  }
}

TEST_P(CpuAdamWTest, DecayOnlyMovesParametersWhenAsked) {
  // With a zero gradient the moments stay 0 and only the decay can move p: by lr*wd*p.
  const bool decay = GetParam();
  const AdamWSettings s{.lr = 0.5, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.2};
  const Tensor p0 = random_double({9}, 75);
  Tensor p = p0.clone(), m = Tensor::zeros({9}, DType::float64),
         v = Tensor::zeros({9}, DType::float64);
  ops->adamw_step(p, Tensor::zeros({9}, DType::float64), m, v, 1, s, decay);
  std::vector<double> want = values(p0);
  for (double& x : want) x *= decay ? 1 - s.lr * s.weight_decay : 1.0;
  EXPECT_LT(max_error(p, want), 1e-15);
}

INSTANTIATE_TEST_SUITE_P(Decay, CpuAdamWTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& p) {
                           return p.param ? "On" : "Off";
                         });

}  // namespace
}  // namespace longnet
