// ModelOps rejects malformed calls with messages that name the op, the tensor, the expected
// and the actual shape or dtype (checked on the CPU backend; every backend shares the checks).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "model/ops/model_ops.hpp"
#include "tests/support/error_of.hpp"

namespace longnet {
namespace {

using test::error_of;

using ::testing::AllOf;
using ::testing::HasSubstr;

class ModelOpsErrorsTest : public ::testing::Test {
 protected:
  std::unique_ptr<ModelOps> ops = make_cpu_model_ops();
};

TEST_F(ModelOpsErrorsTest, LinearNamesTheMismatchedTensorAndBothShapes) {
  Tensor x({7, 5}, DType::float32), w({3, 4}, DType::float32), y({7, 3}, DType::float32);
  EXPECT_THAT(error_of([&] { ops->linear_forward(x, w, nullptr, y); }),
              AllOf(HasSubstr("linear_forward"), HasSubstr("w has shape [3, 4], expected [3, 5]")));
  Tensor w_ok({3, 5}, DType::float32), y_bad({7, 4}, DType::float32), b_bad({4}, DType::float32);
  EXPECT_THAT(error_of([&] { ops->linear_forward(x, w_ok, nullptr, y_bad); }),
              HasSubstr("y has shape [7, 4], expected [7, 3]"));
  EXPECT_THAT(error_of([&] { ops->linear_forward(x, w_ok, &b_bad, y); }),
              HasSubstr("b has shape [4], expected [3]"));
  Tensor dw_bad({5, 3}, DType::float32), dy({7, 3}, DType::float32);
  EXPECT_THAT(
      error_of([&] { ops->linear_backward(x, w_ok, dy, nullptr, dw_bad, nullptr); }),
      AllOf(HasSubstr("linear_backward"), HasSubstr("dw has shape [5, 3], expected [3, 5]")));
}

TEST_F(ModelOpsErrorsTest, MixedDtypesAreRejected) {
  Tensor x({7, 5}, DType::float32), w({3, 5}, DType::float64), y({7, 3}, DType::float32);
  EXPECT_THAT(error_of([&] { ops->linear_forward(x, w, nullptr, y); }),
              AllOf(HasSubstr("w is float64"), HasSubstr("share one dtype")));
  Tensor h({4}, DType::bfloat16), out({4}, DType::bfloat16);
  EXPECT_THAT(error_of([&] { ops->gelu_forward(h, out); }),
              HasSubstr("x is bfloat16, but the model ops take float32 or float64"));
}

TEST_F(ModelOpsErrorsTest, LayerNormChecksParametersSavedStatisticsAndEps) {
  Tensor x({4, 13}, DType::float64), gamma({12}, DType::float64), beta({13}, DType::float64);
  Tensor y({4, 13}, DType::float64), mean({4}, DType::float64), rstd({4}, DType::float64);
  EXPECT_THAT(error_of([&] { ops->layer_norm_forward(x, gamma, beta, 1e-5, y, mean, rstd); }),
              HasSubstr("gamma has shape [12], expected [13]"));
  Tensor gamma_ok({13}, DType::float64), mean_bad({13}, DType::float64);
  EXPECT_THAT(
      error_of([&] { ops->layer_norm_forward(x, gamma_ok, beta, 1e-5, y, mean_bad, rstd); }),
      HasSubstr("mean has shape [13], expected [4]"));
  EXPECT_THAT(error_of([&] { ops->layer_norm_forward(x, gamma_ok, beta, 0.0, y, mean, rstd); }),
              HasSubstr("eps must be a positive number"));
}

TEST_F(ModelOpsErrorsTest, ElementwiseOpsNeedOneShape) {
  Tensor a({3, 4}, DType::float32), b({4, 3}, DType::float32), out({3, 4}, DType::float32);
  EXPECT_THAT(error_of([&] { ops->add(a, b, out); }),
              AllOf(HasSubstr("add"), HasSubstr("b has shape [4, 3] but a has shape [3, 4]")));
  EXPECT_THAT(error_of([&] { ops->gelu_backward(a, a, b); }),
              HasSubstr("dx has shape [4, 3] but x has shape [3, 4]"));
  EXPECT_THAT(error_of([&] { ops->sum_of_squares(Tensor()); }),
              HasSubstr("t is missing (an empty tensor)"));
}

TEST_F(ModelOpsErrorsTest, EmbeddingAndLossCountRowsAgainstTokens) {
  Tensor table({11, 8}, DType::float32), out({5, 8}, DType::float32);
  const std::vector<int32_t> four = {1, 2, 3, 4};
  EXPECT_THAT(error_of([&] { ops->embedding_forward(four, table, out); }),
              HasSubstr("out has shape [5, 8], expected 4 rows (one per token) of C = 8"));
  Tensor logits({5, 11}, DType::float32);
  EXPECT_THAT(error_of([&] { ops->cross_entropy(logits, four, 1.0, nullptr, {}); }),
              HasSubstr("logits [5, 11] hold 5 rows but there are 4 targets"));
  const std::vector<int32_t> five = {1, 2, 3, 4, 5};
  std::vector<double> per_token(3);
  EXPECT_THAT(error_of([&] { ops->cross_entropy(logits, five, 1.0, nullptr, per_token); }),
              HasSubstr("per_token_loss has 3 elements but there are 5 targets"));
  std::vector<int32_t> predicted(4);
  EXPECT_THAT(error_of([&] { ops->argmax_rows(logits, predicted); }),
              HasSubstr("argmax_rows: logits [5, 11] hold 5 rows but out has 4 elements"));
}

TEST_F(ModelOpsErrorsTest, AdamWChecksStepAndSettings) {
  Tensor p = Tensor::zeros({4}), g = Tensor::zeros({4}), m = Tensor::zeros({4}),
         v = Tensor::zeros({4});
  const AdamWSettings s{.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.1};
  EXPECT_THAT(error_of([&] { ops->adamw_step(p, g, m, v, 0, s, true); }),
              HasSubstr("step is 0, but steps count from 1"));
  AdamWSettings bad = s;
  bad.beta2 = 1.0;
  EXPECT_THAT(error_of([&] { ops->adamw_step(p, g, m, v, 1, bad, true); }),
              HasSubstr("beta2 must be in [0, 1), got 1"));
  Tensor v_bad = Tensor::zeros({5});
  EXPECT_THAT(error_of([&] { ops->adamw_step(p, g, m, v_bad, 1, s, true); }),
              HasSubstr("v has shape [5] but param has shape [4]"));
}

}  // namespace
}  // namespace longnet
