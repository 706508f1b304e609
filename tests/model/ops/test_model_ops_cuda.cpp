// The CUDA ModelOps against the CPU ModelOps: every op on random inputs, in float32 and
// float64, on awkward sizes (rows spanning several of the column-sum chunks, a vocabulary
// that is not a multiple of the block). Without a GPU every comparison reports itself
// skipped, with the reason.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "model/ops/cuda/cuda_model_ops.hpp"
#include "model/ops/model_ops.hpp"
#include "runtime/device_memory.hpp"
#include "tests/model/ops/model_ops_test_support.hpp"

namespace longnet {
namespace {

using namespace test;
using ::testing::HasSubstr;

// Parameter names in test listings: "float32", not the enum's bytes.
[[maybe_unused]] void PrintTo(DType dtype, std::ostream* os) { *os << dtype_name(dtype); }

class CudaModelOpsTest : public ::testing::TestWithParam<DType> {
 protected:
  void SetUp() override {
    std::string reason;
    if (!cuda_device_available(&reason)) GTEST_SKIP() << reason;
    gpu = make_cuda_model_ops();
  }

  DType dtype() const { return GetParam(); }
  // The two backends differ in summation order and in their erf/exp: ulps of the dtype,
  // times the reduction lengths used here.
  double tol() const { return dtype() == DType::float64 ? 1e-12 : 1e-5; }

  Tensor input(const Shape& shape, uint64_t seed, double scale = 1.0) const {
    return random_double(shape, seed, scale).cast(dtype());
  }
  static Tensor on_gpu(const Tensor& t) { return t.to(Device::cuda); }
  // A device tensor whose every byte is 0xFF (NaN), so unwritten outputs show.
  Tensor poisoned_gpu(const Shape& shape) const {
    Tensor t(shape, dtype(), Device::cuda);
    t.poison();
    return t;
  }
  void expect_close(const Tensor& from_gpu, const Tensor& from_cpu, const char* what) {
    gpu->synchronize();
    EXPECT_LT(max_error(from_gpu.to(Device::cpu), values(from_cpu)), tol()) << what;
  }

  std::unique_ptr<ModelOps> cpu = make_cpu_model_ops();
  std::unique_ptr<ModelOps> gpu;
};

TEST_P(CudaModelOpsTest, LinearMatchesCpu) {
  constexpr int64_t M = 300, K = 97, N = 65;  // 300 rows: two column-sum chunks
  const Tensor x = input({M, K}, 1), w = input({N, K}, 2), b = input({N}, 3), dy = input({M, N}, 4);
  const Tensor dw0 = input({N, K}, 5), db0 = input({N}, 6);
  Tensor y({M, N}, dtype()), dx({M, K}, dtype()), dw = dw0.clone(), db = db0.clone();
  cpu->linear_forward(x, w, &b, y);
  cpu->linear_backward(x, w, dy, &dx, dw, &db);

  const Tensor gx = on_gpu(x), gw = on_gpu(w), gb = on_gpu(b), gdy = on_gpu(dy);
  Tensor gy = poisoned_gpu({M, N}), gdx = poisoned_gpu({M, K}), gdw = on_gpu(dw0),
         gdb = on_gpu(db0);
  gpu->linear_forward(gx, gw, &gb, gy);
  gpu->linear_backward(gx, gw, gdy, &gdx, gdw, &gdb);
  expect_close(gy, y, "y");
  expect_close(gdx, dx, "dx");
  expect_close(gdw, dw, "dw (accumulated)");
  expect_close(gdb, db, "db (accumulated)");

  gpu->linear_forward(gx, gw, nullptr, gy);
  cpu->linear_forward(x, w, nullptr, y);
  expect_close(gy, y, "y without bias");
}

TEST_P(CudaModelOpsTest, LayerNormMatchesCpu) {
  constexpr int64_t M = 300, C = 97;
  const Tensor x = input({3, 100, C}, 10, 2.0), gamma = input({C}, 11), beta = input({C}, 12),
               dy = input({3, 100, C}, 13);
  const Tensor dgamma0 = input({C}, 14), dbeta0 = input({C}, 15);
  Tensor y({3, 100, C}, dtype()), mean({3, 100}, dtype()), rstd({3, 100}, dtype()),
      dx({3, 100, C}, dtype()), dgamma = dgamma0.clone(), dbeta = dbeta0.clone();
  cpu->layer_norm_forward(x, gamma, beta, 1e-5, y, mean, rstd);
  cpu->layer_norm_backward(x, gamma, mean, rstd, dy, dx, dgamma, dbeta);

  const Tensor gx = on_gpu(x), ggamma = on_gpu(gamma), gbeta = on_gpu(beta), gdy = on_gpu(dy);
  Tensor gy = poisoned_gpu({3, 100, C}), gmean = poisoned_gpu({3, 100}),
         grstd = poisoned_gpu({3, 100}), gdx = poisoned_gpu({3, 100, C}), gdgamma = on_gpu(dgamma0),
         gdbeta = on_gpu(dbeta0);
  gpu->layer_norm_forward(gx, ggamma, gbeta, 1e-5, gy, gmean, grstd);
  gpu->layer_norm_backward(gx, ggamma, gmean, grstd, gdy, gdx, gdgamma, gdbeta);
  expect_close(gy, y, "y");
  expect_close(gmean, mean, "mean");
  expect_close(grstd, rstd, "rstd");
  expect_close(gdx, dx, "dx");
  expect_close(gdgamma, dgamma, "dgamma (accumulated)");
  expect_close(gdbeta, dbeta, "dbeta (accumulated)");
  static_assert(M == 3 * 100);
}

TEST_P(CudaModelOpsTest, GeluMatchesCpu) {
  const Tensor x = input({37, 41}, 20, 2.5), dy = input({37, 41}, 21);
  Tensor y({37, 41}, dtype()), dx({37, 41}, dtype());
  cpu->gelu_forward(x, y);
  cpu->gelu_backward(x, dy, dx);
  Tensor gy = poisoned_gpu({37, 41}), gdx = poisoned_gpu({37, 41});
  gpu->gelu_forward(on_gpu(x), gy);
  gpu->gelu_backward(on_gpu(x), on_gpu(dy), gdx);
  expect_close(gy, y, "y");
  expect_close(gdx, dx, "dx");
}

TEST_P(CudaModelOpsTest, EmbeddingMatchesCpuWithRepeatedIds) {
  constexpr int64_t V = 11, C = 300, T = 600;  // every id repeats; C spans two thread blocks
  const std::vector<int32_t> tokens = random_ids(T, V, 30);
  const Tensor table = input({V, C}, 31), dout = input({T, C}, 32), dtable0 = input({V, C}, 33);
  Tensor out({T, C}, dtype()), dtable = dtable0.clone();
  cpu->embedding_forward(tokens, table, out);
  cpu->embedding_backward(tokens, dout, dtable);
  Tensor gout = poisoned_gpu({T, C}), gdtable = on_gpu(dtable0);
  gpu->embedding_forward(tokens, on_gpu(table), gout);
  gpu->embedding_backward(tokens, on_gpu(dout), gdtable);
  expect_close(gout, out, "out");
  expect_close(gdtable, dtable, "dtable (accumulated)");
}

TEST_P(CudaModelOpsTest, CrossEntropyMatchesCpu) {
  constexpr int64_t T = 37, V = 1000;
  const Tensor logits = input({T, V}, 40, 3.0);
  const std::vector<int32_t> targets = random_ids(T, V, 41);
  Tensor dlogits({T, V}, dtype());
  std::vector<double> per_token(T), gpu_per_token(T);
  const double loss = cpu->cross_entropy(logits, targets, 0.25, &dlogits, per_token);
  Tensor gdlogits = poisoned_gpu({T, V});
  const double gpu_loss =
      gpu->cross_entropy(on_gpu(logits), targets, 0.25, &gdlogits, gpu_per_token);
  EXPECT_NEAR(gpu_loss, loss, tol() * loss);
  EXPECT_LT(max_error(gpu_per_token, per_token), tol());
  expect_close(gdlogits, dlogits, "dlogits");
}

TEST_P(CudaModelOpsTest, ArgmaxRowsMatchesCpu) {
  constexpr int64_t T = 37, V = 1000;
  const Tensor logits = input({T, V}, 42, 3.0);
  std::vector<int32_t> want(T), got(T, -1);
  cpu->argmax_rows(logits, want);
  gpu->argmax_rows(on_gpu(logits), got);
  EXPECT_EQ(got, want);
}

TEST_P(CudaModelOpsTest, ElementwiseOpsAndSumOfSquaresMatchCpu) {
  const Tensor a = input({40001}, 50), b = input({40001}, 51);
  Tensor out({40001}, dtype());
  cpu->add(a, b, out);
  Tensor gout = poisoned_gpu({40001}), ga = on_gpu(a);
  gpu->add(ga, on_gpu(b), gout);
  expect_close(gout, out, "add");
  gpu->add_in_place(ga, on_gpu(b));
  expect_close(ga, out, "add_in_place");

  EXPECT_NEAR(gpu->sum_of_squares(on_gpu(a)), cpu->sum_of_squares(a), tol() * 40001);
  Tensor scaled = a.clone(), gscaled = on_gpu(a);
  cpu->scale(scaled, -0.3);
  gpu->scale(gscaled, -0.3);
  expect_close(gscaled, scaled, "scale");
}

TEST_P(CudaModelOpsTest, AdamWMatchesCpuOverThreeSteps) {
  const AdamWSettings s{.lr = 1e-2, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.1};
  for (bool decay : {false, true}) {
    Tensor p = input({13, 29}, 60), m = Tensor::zeros({13, 29}, dtype()),
           v = Tensor::zeros({13, 29}, dtype());
    Tensor gp = on_gpu(p), gm = on_gpu(m), gv = on_gpu(v);
    for (int64_t step = 1; step <= 3; ++step) {
      const Tensor g = input({13, 29}, 61 + static_cast<uint64_t>(step));
      cpu->adamw_step(p, g, m, v, step, s, decay);
      gpu->adamw_step(gp, on_gpu(g), gm, gv, step, s, decay);
    }
    expect_close(gp, p, decay ? "param, decay on" : "param, decay off");
    expect_close(gm, m, "m");
    expect_close(gv, v, "v");
  }
}

INSTANTIATE_TEST_SUITE_P(DTypes, CudaModelOpsTest,
                         ::testing::Values(DType::float32, DType::float64),
                         [](const ::testing::TestParamInfo<DType>& p) {
                           return std::string(dtype_name(p.param));
                         });

// Needs no GPU: the backend makes no CUDA call before its first op, and arguments are
// checked before that.
TEST(CudaModelOpsArguments, HostTensorsAreRejectedBeforeAnyCudaCall) {
  const auto gpu = make_cuda_model_ops();
  Tensor x = Tensor::zeros({7, 5}), w = Tensor::zeros({3, 5}), y = Tensor::zeros({7, 3});
  try {
    gpu->linear_forward(x, w, nullptr, y);
    FAIL() << "host tensors were accepted by the CUDA backend";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("x is in cpu memory but this backend works on cuda tensors"));
  }
}

}  // namespace
}  // namespace longnet
