// The CUDA dilated-attention kernels against the dense float64 reference (label gpu), on
// random inputs: accuracy, the exact o = 0 / lse = -inf convention on uncovered rows,
// no unwritten outputs, and bitwise reproducible gradients in deterministic mode.
// test_dilated_attention_cuda_exact.cpp checks every mask exactly, independent of the dtype.
//
// Without a usable GPU every test that needs one calls GTEST_SKIP() with the reason
// (cuda_device_available), so ctest reports it as skipped, never as passed. The argument
// errors at the end fail before any CUDA call and run everywhere.
//
// Inputs are generated on the host in float32 and rounded to the dtype under test; every
// implementation sees exactly those values (the reference and the CPU kernels as
// float64/float32 copies), so the comparison measures arithmetic, not input rounding.
// Outputs are poisoned (NaN bytes) before each run, so an unwritten element fails.
//
// Accuracy: FlashAttention's bound. For each output X, with err(.) the relative L2
// distance to the float64 reference,
//     err(CUDA kernels) <= 2 err(naive same-precision implementation) + kSlack,
// where the naive same-precision implementation is
//   * float32 (all outputs) and lse (every dtype; the op's lse is always float32): the
//     CPU kernels (make_cpu_dilated_attention) on the same inputs, plain float32;
//   * bfloat16 / float16 (o, dq, dk, dv): tests/support/naive_low_precision.hpp, a plain attention
//     in the dtype that rounds every product and elementwise step the way a framework's
//     16-bit attention does (FlashAttention's own baseline).
// Why not "the CPU kernels with outputs rounded to the dtype" for 16 bits: that is the
// best any 16-bit op can return, not a naive one, and a FlashAttention-style kernel must
// feed P and dS to the tensor cores in 16 bits. Run on a CPU emulation of the kernels
// (the real device code, warp primitives emulated per the PTX fragment layouts), bf16
// gradient errors reached 2.5-3x that bound's baseline (e.g. dq 5.1e-3 against 1.7e-3
// for a peaked softmax, scale 1.0), while staying at 0.3-1.1x the naive 16-bit error.
// kSlack = 1e-5 covers cases whose baseline error is (nearly) 0, e.g. r = w, where each
// row attends only itself, o = v exactly and dq = dk = 0 up to float32 rounding of
// dP - delta; it is the CPU suite's own float32 tolerance.
//
// Every case runs the default backend (dq by its own kernel, deterministic) and the
// atomic-dq one; the default must reproduce its gradients bit for bit.
#include "kernels/cpu/dilated_attention_cpu.hpp"
#include "kernels/cuda/dilated_attention_cuda.hpp"
#include "runtime/error.hpp"
#include "tests/kernels/attention_cases.hpp"
#include "tests/kernels/document_reference.hpp"
#include "tests/reference/dense_attention_reference.hpp"
#include "tests/support/cuda_test_support.hpp"
#include "tests/support/naive_low_precision.hpp"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace longnet {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

constexpr double kBoundFactor = 2.0;  // FlashAttention's factor; see the top of the file
constexpr double kSlack = 1e-5;       // ditto
constexpr uint64_t kSeed = 20240611;

// A case of the shared list in one input dtype.
struct GpuCase {
  AttentionShape shape;
  DilatedAttentionConfig config;
  DType dtype = DType::float32;
};

void PrintTo(const GpuCase& c, std::ostream* os) {
  *os << c.shape.describe() << " " << c.config.describe() << " " << dtype_name(c.dtype);
}

using test::bitwise_equal;
using test::host_float;
using test::on_gpu;
using test::poisoned_gpu;
using test::relative_l2;
using test::rounded;

void expect_bound(const std::string& what, double kernel, double naive) {
  EXPECT_TRUE(std::isfinite(kernel)) << what << ": non-finite elements (unwritten or overflow)";
  EXPECT_LE(kernel, kBoundFactor * naive + kSlack)
      << what << ": CUDA error " << kernel << " vs naive same-precision error " << naive;
}

// ---- the grid --------------------------------------------------------------------------
class CudaKernelsMatchReference : public testing::TestWithParam<GpuCase> {};

TEST_P(CudaKernelsMatchReference, WithinTwiceTheNaiveError) {
  const GpuCase& c = GetParam();
  // Cases of the shared list the CUDA kernels cannot run (head dims without kernels) are
  // reported skipped with the reason; asking needs no GPU.
  if (const auto why = make_cuda_dilated_attention()->supports(c.config, c.shape, c.dtype)) {
    GTEST_SKIP() << *why;
  }
  LONGNET_SKIP_WITHOUT_GPU();
  const Shape shape = qkv_shape(c.shape), key_shape = kv_shape(c.shape);
  std::mt19937_64 rng(kSeed);
  const Tensor q = rounded(test::random_normal(shape, rng), c.dtype);
  const Tensor k = rounded(test::random_normal(key_shape, rng), c.dtype);
  const Tensor v = rounded(test::random_normal(key_shape, rng), c.dtype);
  const Tensor dout = rounded(test::random_normal(shape, rng), c.dtype);

  // Grouped-query cases: the reference (and the naive low-precision run) work on
  // per-query-head copies of k and v; their key gradients are summed per kv head.
  const int64_t kv_heads = c.shape.key_heads(), group = c.shape.group_size();
  const reference::DenseInputs in = group > 1
                                        ? reference::DenseInputs::from_grouped_tensors(q, k, v)
                                        : reference::DenseInputs::from_tensors(q, k, v);
  const auto per_kv_head = [&](std::vector<double> grad) {
    return group > 1 ? reference::sum_over_query_heads(grad, in.shape, kv_heads) : grad;
  };
  const auto ref = reference::dense_forward(c.config, in);
  auto ref_grads = reference::dense_backward(c.config, in, reference::to_doubles(dout));
  ref_grads.dk = per_kv_head(ref_grads.dk);
  ref_grads.dv = per_kv_head(ref_grads.dv);
  const std::size_t rows = ref.lse.size();
  const int64_t d = c.shape.head_dim;
  auto covered = [&](std::size_t row) { return std::isfinite(ref.lse[row]); };
  auto key_covered = [&](std::size_t kv_row) {  // some query head of its group is covered
    const auto token = static_cast<int64_t>(kv_row) / kv_heads;
    const auto g = static_cast<int64_t>(kv_row) % kv_heads;
    for (int64_t h = g * group; h < (g + 1) * group; ++h)
      if (covered(static_cast<std::size_t>(token * c.shape.heads + h))) return true;
    return false;
  };
  const auto key_rows = static_cast<std::size_t>(c.shape.batch * c.shape.tokens * kv_heads);
  ASSERT_LT(std::ranges::count_if(ref.lse, [](double x) { return std::isinf(x); }),
            static_cast<std::ptrdiff_t>(rows))
      << "every row of this case is uncovered: it checks nothing";

  // The naive same-precision implementations (top of the file).
  auto cpu = make_cpu_dilated_attention();
  const AttentionOutputs cpu_out = run_forward(*cpu, c.config, q, k, v);
  const double naive_lse = relative_l2(cpu_out.lse, ref.lse, covered);
  double naive_o = 0, naive_dq = 0, naive_dk = 0, naive_dv = 0;
  if (c.dtype == DType::float32) {
    const AttentionGradients g = run_backward(*cpu, c.config, q, k, v, cpu_out, dout);
    naive_o = relative_l2(cpu_out.o, ref.o);
    naive_dq = relative_l2(g.dq, ref_grads.dq);
    naive_dk = relative_l2(g.dk, ref_grads.dk);
    naive_dv = relative_l2(g.dv, ref_grads.dv);
  } else {
    const auto copies = [&](const std::vector<double>& values) {  // the expanded k or v
      Tensor t(shape, DType::float32);
      std::ranges::transform(values, t.span<float>().begin(),
                             [](double x) { return static_cast<float>(x); });
      return t;
    };
    const auto naive =
        test::naive_low_precision_attention(c.config, q, copies(in.k), copies(in.v), dout, c.dtype);
    naive_o = relative_l2(naive.o, ref.o);
    naive_dq = relative_l2(naive.dq, ref_grads.dq);
    naive_dk = relative_l2(per_kv_head(naive.dk), ref_grads.dk);
    naive_dv = relative_l2(per_kv_head(naive.dv), ref_grads.dv);
  }

  const Tensor gq = on_gpu(q, c.dtype), gk = on_gpu(k, c.dtype), gv = on_gpu(v, c.dtype),
               gdout = on_gpu(dout, c.dtype);
  for (bool deterministic : {false, true}) {
    SCOPED_TRACE(deterministic ? "default backend (deterministic dq)" : "atomic-dq backend");
    auto kernels = make_cuda_dilated_attention(0, deterministic);
    Tensor go = poisoned_gpu(shape, c.dtype);
    Tensor glse = poisoned_gpu(lse_shape(c.shape), DType::float32);
    kernels->forward(c.config, gq, gk, gv, go, glse);
    const Tensor o = host_float(go), lse = host_float(glse);
    const double e_o = relative_l2(o, ref.o);
    const double e_lse = relative_l2(lse, ref.lse, covered);
    expect_bound("o", e_o, naive_o);
    expect_bound("lse (covered rows)", e_lse, naive_lse);
    int64_t bad_lse = 0;
    for (std::size_t row = 0; row < rows; ++row) {
      bad_lse += !covered(row) && lse.span<float>()[row] != -std::numeric_limits<float>::infinity();
    }
    EXPECT_EQ(bad_lse, 0) << "rows no pattern selects must have lse = -inf exactly";
    EXPECT_EQ(test::nonzero_uncovered_rows(o, d, rows, covered), 0)
        << "rows no pattern selects must have o = 0 exactly";

    Tensor gdq = poisoned_gpu(shape, c.dtype), gdk = poisoned_gpu(key_shape, c.dtype),
           gdv = poisoned_gpu(key_shape, c.dtype);
    kernels->backward(c.config, gq, gk, gv, go, glse, gdout, gdq, gdk, gdv);
    const Tensor dq = host_float(gdq), dk = host_float(gdk), dv = host_float(gdv);
    const double e_dq = relative_l2(dq, ref_grads.dq);
    const double e_dk = relative_l2(dk, ref_grads.dk);
    const double e_dv = relative_l2(dv, ref_grads.dv);
    expect_bound("dq", e_dq, naive_dq);
    expect_bound("dk", e_dk, naive_dk);
    expect_bound("dv", e_dv, naive_dv);
    EXPECT_EQ(test::nonzero_uncovered_rows(dq, d, rows, covered), 0)
        << "uncovered rows must have exactly zero dq";
    for (const Tensor* g : {&dk, &dv}) {
      EXPECT_EQ(test::nonzero_uncovered_rows(*g, d, key_rows, key_covered), 0)
          << "uncovered rows must have exactly zero dk and dv";
    }
    if (deterministic) {
      Tensor again_dq = poisoned_gpu(shape, c.dtype), again_dk = poisoned_gpu(key_shape, c.dtype),
             again_dv = poisoned_gpu(key_shape, c.dtype);
      kernels->backward(c.config, gq, gk, gv, go, glse, gdout, again_dq, again_dk, again_dv);
      EXPECT_TRUE(bitwise_equal(gdq, again_dq)) << "deterministic dq differs between two runs";
      EXPECT_TRUE(bitwise_equal(gdk, again_dk)) << "deterministic dk differs between two runs";
      EXPECT_TRUE(bitwise_equal(gdv, again_dv)) << "deterministic dv differs between two runs";
    }
    fmt::print(
        "# {:<8} {:<13} cuda/naive: o {:.2e}/{:.2e}  lse {:.2e}/{:.2e}  dq {:.2e}/{:.2e}  "
        "dk {:.2e}/{:.2e}  dv {:.2e}/{:.2e}\n",
        dtype_name(c.dtype), deterministic ? "deterministic" : "atomic-dq", e_o, naive_o, e_lse,
        naive_lse, e_dq, naive_dq, e_dk, naive_dk, e_dv, naive_dv);
  }
}

using HO = HeadOffsets;
constexpr bool kCausal = true, kNonCausal = false;

DilatedAttentionConfig config(std::vector<int64_t> w, std::vector<int64_t> r, bool causal,
                              HeadOffsets scheme, std::optional<double> scale = std::nullopt) {
  return DilatedAttentionConfig::from_lists(w, r, causal, scheme, scale);
}

// The one case list of every backend (tests/kernels/attention_cases.hpp), each case in
// every dtype. Tile edges: forward 64-row query blocks and 64/128-row key tiles, backward
// 64-row key blocks and 32/64-row query steps, fp32 64 x 64 (32 keys for D = 128).
std::vector<GpuCase> grid() {
  std::vector<GpuCase> all;
  for (DType dtype : {DType::float32, DType::bfloat16, DType::float16}) {
    for (const auto& [shape, config] : test::attention_cases()) {
      all.push_back({shape, config, dtype});
    }
  }
  return all;
}

INSTANTIATE_TEST_SUITE_P(Grid, CudaKernelsMatchReference, testing::ValuesIn(grid()),
                         [](const testing::TestParamInfo<GpuCase>& case_info) {
                           return reference::case_name(case_info.param.shape,
                                                       case_info.param.config) +
                                  "_" + std::string(dtype_name(case_info.param.dtype));
                         });

// ---- packed variable-length documents -------------------------------------------------
// The CPU suite's document cases in float32: documents only change the task list (built
// on the host, as for the plain op), so the bound is the CPU kernels' own error against
// the per-document reference, twice over. 16-bit inputs run the same kernels on the
// same tasks; the plain grid covers them.
class CudaDocumentsMatchReference : public testing::TestWithParam<test::DocumentCase> {};

TEST_P(CudaDocumentsMatchReference, WithinTwiceTheCpuError) {
  const test::DocumentCase& c = GetParam();
  if (const auto why = make_cuda_dilated_attention()->supports(c.config, c.shape, DType::float32)) {
    GTEST_SKIP() << *why;
  }
  LONGNET_SKIP_WITHOUT_GPU();
  const Shape shape = qkv_shape(c.shape), key_shape = kv_shape(c.shape);
  std::mt19937_64 rng(kSeed + 7);
  const Tensor q = test::random_normal(shape, rng), k = test::random_normal(key_shape, rng),
               v = test::random_normal(key_shape, rng), dout = test::random_normal(shape, rng);
  const test::DocumentReference ref = test::document_reference(c, q, k, v, dout);
  auto covered = [&](std::size_t row) { return std::isfinite(ref.lse[row]); };
  AttentionExtras extras;
  extras.document_lengths = c.documents;

  auto cpu = make_cpu_dilated_attention();
  const AttentionOutputs cpu_out = run_forward(*cpu, c.config, q, k, v, extras);
  const AttentionGradients cpu_grads = run_backward(*cpu, c.config, q, k, v, cpu_out, dout, extras);

  auto kernels = make_cuda_dilated_attention();
  const Tensor gq = on_gpu(q, DType::float32), gk = on_gpu(k, DType::float32),
               gv = on_gpu(v, DType::float32), gdout = on_gpu(dout, DType::float32);
  Tensor go = poisoned_gpu(shape, DType::float32);
  Tensor glse = poisoned_gpu(lse_shape(c.shape), DType::float32);
  kernels->forward(c.config, gq, gk, gv, go, glse, extras);
  expect_bound("o", relative_l2(host_float(go), ref.o), relative_l2(cpu_out.o, ref.o));
  expect_bound("lse (covered rows)", relative_l2(host_float(glse), ref.lse, covered),
               relative_l2(cpu_out.lse, ref.lse, covered));
  Tensor gdq = poisoned_gpu(shape, DType::float32), gdk = poisoned_gpu(key_shape, DType::float32),
         gdv = poisoned_gpu(key_shape, DType::float32);
  kernels->backward(c.config, gq, gk, gv, go, glse, gdout, gdq, gdk, gdv, extras);
  expect_bound("dq", relative_l2(host_float(gdq), ref.dq), relative_l2(cpu_grads.dq, ref.dq));
  expect_bound("dk", relative_l2(host_float(gdk), ref.dk), relative_l2(cpu_grads.dk, ref.dk));
  expect_bound("dv", relative_l2(host_float(gdv), ref.dv), relative_l2(cpu_grads.dv, ref.dv));
}

INSTANTIATE_TEST_SUITE_P(Documents, CudaDocumentsMatchReference,
                         testing::ValuesIn(test::document_cases()),
                         [](const testing::TestParamInfo<test::DocumentCase>& document) {
                           return document.param.name;
                         });

// ---- argument errors: all reported before any CUDA call, so they run without a GPU --------
class CudaKernelErrors : public testing::Test {
 protected:
  AttentionShape s_{1, 8, 2, 32};
  DilatedAttentionConfig config_ = config({4}, {2}, false, HO::interleaved);
  std::unique_ptr<DilatedAttentionOp> kernels_ = make_cuda_dilated_attention();
};

TEST_F(CudaKernelErrors, HostTensorsAreRejected) {
  const Shape shape = qkv_shape(s_);
  const Tensor q(shape, DType::bfloat16), k(shape, DType::bfloat16), v(shape, DType::bfloat16);
  Tensor o(shape, DType::bfloat16), lse(lse_shape(s_), DType::float32);
  EXPECT_THAT(
      [&] { kernels_->forward(config_, q, k, v, o, lse); },
      ThrowsMessage<Error>(AllOf(HasSubstr("q is a host tensor"), HasSubstr("Device::cuda"))));
}

TEST_F(CudaKernelErrors, HeadDim48IsUnsupportedAndTheSupportedOnesAreListed) {
  const Shape shape{1, 8, 2, 48};
  const Tensor q(shape, DType::float16), k(shape, DType::float16), v(shape, DType::float16);
  Tensor o(shape, DType::float16), lse({1, 8, 2}, DType::float32);
  EXPECT_THAT([&] { kernels_->forward(config_, q, k, v, o, lse); },
              ThrowsMessage<Error>(AllOf(HasSubstr("head dim 48"), HasSubstr("32, 64, 128"))));
}

TEST_F(CudaKernelErrors, DtypeMismatchNamesBothDtypes) {
  const Shape shape = qkv_shape(s_);
  const Tensor q(shape, DType::bfloat16), k(shape, DType::float16), v(shape, DType::bfloat16);
  Tensor o(shape, DType::bfloat16), lse(lse_shape(s_), DType::float32);
  EXPECT_THAT(
      [&] { kernels_->forward(config_, q, k, v, o, lse); },
      ThrowsMessage<Error>(AllOf(HasSubstr("k is float16"), HasSubstr("must be bfloat16"))));
  const Tensor dout(shape, DType::float32);
  Tensor dq(shape, DType::bfloat16), dk(shape, DType::bfloat16), dv(shape, DType::bfloat16);
  EXPECT_THAT([&] { kernels_->backward(config_, q, q, v, o, lse, dout, dq, dk, dv); },
              ThrowsMessage<Error>(HasSubstr("do (the output gradient) is float32")));
}

TEST_F(CudaKernelErrors, Float64InputsAreUnsupported) {
  const Shape shape = qkv_shape(s_);
  const Tensor q(shape, DType::float64), k(shape, DType::float64), v(shape, DType::float64);
  Tensor o(shape, DType::float64), lse(lse_shape(s_), DType::float32);
  EXPECT_THAT([&] { kernels_->forward(config_, q, k, v, o, lse); },
              ThrowsMessage<Error>(
                  AllOf(HasSubstr("q is float64"), HasSubstr("bfloat16, float16 or float32"))));
}

TEST_F(CudaKernelErrors, TaskParamsAreValidated) {
  PatternTasks pattern;
  AttentionParams params;
  params.head_dim = 48;
  params.scale = 1.0f;
  params.input_dtype = DType::bfloat16;
  EXPECT_THAT([&] { kernels_->forward_tasks(params, pattern); },
              ThrowsMessage<Error>(HasSubstr("head dim 48")));
  params.head_dim = 64;
  params.input_dtype = DType::float64;
  EXPECT_THAT([&] { kernels_->backward_tasks(params, pattern); },
              ThrowsMessage<Error>(HasSubstr("AttentionParams::input_dtype is float64")));
}

}  // namespace
}  // namespace longnet
