// Relative position bias and attention dropout in the CUDA kernels (label gpu), against
// the dense float64 reference and the CPU kernels.
//
// Without a usable GPU every test that needs one calls GTEST_SKIP() with the reason
// (cuda_device_available), so ctest reports it as skipped, never as passed. The tests of
// argument errors and of the naive 16-bit baseline below need no GPU and run everywhere.
//
// Accuracy (CudaExtrasMatchReference): FlashAttention's bound, as in
// tests/kernels/test_dilated_attention_cuda.cpp (which reasons it out). For each output X, with
// err(.) its relative L2 distance to the float64 reference,
//     err(CUDA kernels) <= 2 err(naive same-precision implementation) + kSlack,
// where the naive same-precision implementation is
//   * float32 (all outputs) and lse (every dtype): the CPU kernels with the same extras;
//   * bfloat16 / float16 (o, dq, dk, dv, dbias): naive_extras_attention below, a plain
//     attention in the dtype as a framework computes it (every product and elementwise
//     step rounded to the dtype, the bias added to the rounded scores, dropout applied to
//     the rounded weights; dbias is the float32 sum of the rounded score gradients).
// dbias is measured as ||got - ref|| / max(||ref||, 1) for the kernels and the baseline
// alike: in a short segment the exact dbias nearly cancels (tests/kernels/extras/
// test_attention_extras_cpu.cpp says why), and O(1) inputs make 1 the natural unit.
//
// The mask (CudaDropoutMaskMatchesCpu): with q = 0 every score is 0, so P is uniform and
// a row's output is 1 / (1 - p) times the mean of its kept values: one mask bit that
// differs from the CPU's moves a row of o, dv or dq by about 2 / n of one value row (n
// keys), which is 3% and more of the row's norm for the n <= 256 used there, against
// rounding of 0.4% (bf16) and 1e-6 (float32). Every row is compared, for every dtype
// (each kernel family maps its fragment elements to (query, key) pairs its own way).
//
// Every GPU case runs the default backend (deterministic dq) and the atomic-dq one.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/dilated_attention_cpu.hpp"
#include "kernels/cuda/dilated_attention_cuda.hpp"
#include "runtime/device_memory.hpp"
#include "runtime/error.hpp"
#include "tests/kernels/extras/extras_cases.hpp"
#include "tests/kernels/extras/extras_test_support.hpp"
#include "tests/support/cuda_test_support.hpp"

namespace longnet {
namespace {

using reference::DenseExtras;
using reference::DenseInputs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

constexpr double kBoundFactor = 2.0;  // FlashAttention's factor (top of the file)
constexpr double kSlack = 1e-5;       // the CPU suite's float32 tolerance
constexpr uint64_t kSeed = 5150;
constexpr uint64_t kDropoutSeed = 0xD15EA5E;

// ---- inputs ------------------------------------------------------------------------------
// tests/support/cuda_test_support.hpp: rounded (the values a dtype holds, as float32), on_gpu (a
// device copy in a dtype), poisoned_gpu (NaN bytes), host_float (a float32 host copy).
using test::host_float;
using test::on_gpu;
using test::poisoned_gpu;
using test::rounded;

// float32 tensors shaped like `tensors`, on `device`, of NaN bytes.
std::vector<Tensor> poisoned_like(const std::vector<Tensor>& tensors, Device device) {
  std::vector<Tensor> out;
  for (const Tensor& t : tensors) {
    Tensor p(t.shape(), DType::float32, device);
    p.poison();
    out.push_back(std::move(p));
  }
  return out;
}
std::vector<Tensor> to_device(const std::vector<Tensor>& tensors, Device device) {
  std::vector<Tensor> out;
  for (const Tensor& t : tensors) out.push_back(t.to(device));
  return out;
}

// Kernel extras and their reference twin, with the same values.
struct Extras {
  AttentionExtras kernel;  // bias in host memory
  DenseExtras dense;
};
Extras make_extras(const DilatedAttentionConfig& config, int64_t heads, bool bias, float p,
                   std::mt19937_64& rng) {
  Extras e;
  if (bias) {
    e.kernel.bias = test::random_bias(config, heads, rng);
    e.dense.bias = test::bias_table(e.kernel.bias);
  }
  e.kernel.dropout_p = e.dense.dropout_p = p;
  e.kernel.dropout_seed = e.dense.dropout_seed = kDropoutSeed;
  e.kernel.dropout_step = e.dense.dropout_step = 3;
  e.kernel.dropout_layer = e.dense.dropout_layer = 1;
  return e;
}

// ---- the naive 16-bit baseline -------------------------------------------------------------
struct NaiveExtras {
  std::vector<double> o, dq, dk, dv;  // [B, N, H, D]
  std::vector<double> dbias;          // test::flatten order
};

// Per query row, over the multiset of (pattern, key) pairs the configuration allows (one
// softmax over their union, as in tests/reference/), with rd rounding to the dtype:
//   forward   a = rd(rd(rd(q . k) scale) + bias),  P = rd(softmax(a)),  W = rd(P Z),
//             o = rd(W v)
//   backward  dW = rd(do . v),  dv = rd(W^T do),  dP = rd(dW Z),
//             dA = rd(P (dP - sum(P dP))),  dbias = float32(sum dA),
//             ds = rd(dA scale),  dq = rd(ds k),  dk = rd(ds^T q)
// Z = keep / (1 - p) from the reference's own mask function. Written from those lines.
NaiveExtras naive_extras_attention(const DilatedAttentionConfig& config, const Tensor& q,
                                   const Tensor& k, const Tensor& v, const Tensor& dout,
                                   DType dtype, const DenseExtras& extras) {
  auto rd = [dtype](double x) {
    const auto f = static_cast<float>(x);
    return static_cast<double>(dtype == DType::bfloat16 ? to_float(to_bfloat16(f))
                                                        : to_float(to_float16(f)));
  };
  const int64_t B = q.dim(0), N = q.dim(1), H = q.dim(2), D = q.dim(3);
  const double scale = reference::reference_scale(config, D);
  const double keep_scale = 1.0 / (1.0 - static_cast<double>(extras.dropout_p));
  const float* qd = q.data<float>();
  const float* kd = k.data<float>();
  const float* vd = v.data<float>();
  const float* dod = dout.data<float>();
  const auto n = static_cast<std::size_t>(q.numel());
  NaiveExtras out{std::vector<double>(n, 0.0),
                  std::vector<double>(n, 0.0),
                  std::vector<double>(n, 0.0),
                  std::vector<double>(n, 0.0),
                  {}};
  reference::BiasTable dbias = extras.bias;
  for (auto& heads : dbias) {
    for (auto& row : heads) std::fill(row.begin(), row.end(), 0.0);
  }
  auto at = [&](int64_t b, int64_t t, int64_t h) {
    return static_cast<std::size_t>(((b * N + t) * H + h) * D);
  };
  auto dot = [D](const float* x, const float* y) {
    double s = 0;
    for (int64_t d = 0; d < D; ++d) s += static_cast<double>(x[d]) * y[d];
    return s;
  };
  // The bias slot of pattern p for tokens i, j: L - 1 + (i - j) / r.
  auto slot = [&](std::size_t p, int64_t i, int64_t j) {
    const DilationPattern& pattern = config.patterns[p];
    return static_cast<std::size_t>(relative_bias_rows(pattern) - 1 +
                                    (i - j) / pattern.dilation_rate);
  };
  struct Entry {
    std::size_t pattern;
    int64_t key;
    double a, p, z, w, dp;
  };
  std::vector<Entry> entries;
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < H; ++h) {
      const auto hh = static_cast<std::size_t>(h);
      for (int64_t i = 0; i < N; ++i) {
        entries.clear();
        for (std::size_t p = 0; p < config.patterns.size(); ++p) {
          for (int64_t j = 0; j < N; ++j) {
            if (reference::reference_allowed(config.patterns[p], config.head_offsets, config.causal,
                                             h, H, i, j)) {
              entries.push_back({p, j, 0, 0, 0, 0, 0});
            }
          }
        }
        if (entries.empty()) continue;
        const std::size_t qi = at(b, i, h);
        double m = -std::numeric_limits<double>::infinity();
        for (Entry& e : entries) {
          e.a = rd(rd(dot(qd + qi, kd + at(b, e.key, h))) * scale);
          if (!extras.bias.empty())
            e.a = rd(e.a + extras.bias[e.pattern][hh][slot(e.pattern, i, e.key)]);
          m = std::max(m, e.a);
        }
        double sum = 0;
        for (const Entry& e : entries) sum += std::exp(e.a - m);
        for (Entry& e : entries) {
          e.p = rd(std::exp(e.a - m) / sum);
          e.z = extras.dropout_p == 0.0f                                        ? 1.0
                : reference::reference_keeps(extras, e.pattern, h, b, i, e.key) ? keep_scale
                                                                                : 0.0;
          e.w = rd(e.p * e.z);
        }
        for (int64_t d = 0; d < D; ++d) {
          double o = 0;
          for (const Entry& e : entries) o += e.w * vd[at(b, e.key, h) + d];
          out.o[qi + d] = rd(o);
        }
        double p_dp = 0;
        for (Entry& e : entries) {
          e.dp = rd(rd(dot(dod + qi, vd + at(b, e.key, h))) * e.z);
          p_dp += e.p * e.dp;
        }
        for (const Entry& e : entries) {
          const double da = rd(e.p * (e.dp - p_dp));
          if (!dbias.empty()) dbias[e.pattern][hh][slot(e.pattern, i, e.key)] += da;
          const double ds = rd(da * scale);
          const std::size_t kj = at(b, e.key, h);
          for (int64_t d = 0; d < D; ++d) {
            out.dq[qi + d] += ds * kd[kj + d];
            out.dk[kj + d] += ds * qd[qi + d];
            out.dv[kj + d] += e.w * dod[qi + d];
          }
        }
        for (int64_t d = 0; d < D; ++d) out.dq[qi + d] = rd(out.dq[qi + d]);
      }
    }
  }
  for (std::size_t x = 0; x < n; ++x) {
    out.dk[x] = rd(out.dk[x]);
    out.dv[x] = rd(out.dv[x]);
  }
  out.dbias = test::flatten(dbias);
  for (double& x : out.dbias) x = static_cast<float>(x);
  return out;
}

// ---- accuracy: the grid --------------------------------------------------------------------
struct ExtrasGpuCase {
  AttentionShape shape;
  DilatedAttentionConfig config;
  DType dtype = DType::float32;
  bool bias = false;
  float dropout_p = 0;
};

void PrintTo(const ExtrasGpuCase& c, std::ostream* os) {
  *os << c.shape.describe() << " " << c.config.describe() << " " << dtype_name(c.dtype)
      << (c.bias ? " bias" : "") << " dropout " << c.dropout_p;
}

void expect_bound(const std::string& what, double kernel, double naive) {
  EXPECT_TRUE(std::isfinite(kernel)) << what << ": non-finite elements (unwritten or overflow)";
  EXPECT_LE(kernel, kBoundFactor * naive + kSlack)
      << what << ": CUDA error " << kernel << " vs naive same-precision error " << naive;
}

double dbias_error(const std::vector<Tensor>& dbias, const std::vector<double>& ref) {
  std::vector<Tensor> host;
  for (const Tensor& t : dbias) host.push_back(t.to(Device::cpu));
  return test::error_over_floor(test::flatten(host), ref, 1.0);
}

class CudaExtrasMatchReference : public testing::TestWithParam<ExtrasGpuCase> {};

TEST_P(CudaExtrasMatchReference, WithinTwiceTheNaiveError) {
  const ExtrasGpuCase& c = GetParam();
  // Cases of the shared list the CUDA kernels cannot run are reported skipped with the
  // reason; asking needs no GPU.
  if (const auto why = make_cuda_dilated_attention()->supports(c.config, c.shape, c.dtype)) {
    GTEST_SKIP() << *why;
  }
  LONGNET_SKIP_WITHOUT_GPU();
  const Shape shape = qkv_shape(c.shape);
  std::mt19937_64 rng(kSeed);
  const Tensor q = rounded(test::random_tensor(shape, rng), c.dtype);
  const Tensor k = rounded(test::random_tensor(shape, rng), c.dtype);
  const Tensor v = rounded(test::random_tensor(shape, rng), c.dtype);
  const Tensor dout = rounded(test::random_tensor(shape, rng), c.dtype);
  const Extras extras = make_extras(c.config, c.shape.heads, c.bias, c.dropout_p, rng);

  const DenseInputs in = DenseInputs::from_tensors(q, k, v);
  const auto ref = reference::dense_forward(c.config, in, extras.dense);
  const auto ref_grads =
      reference::dense_backward(c.config, in, reference::to_doubles(dout), extras.dense);
  const std::vector<double> ref_dbias = test::flatten(ref_grads.dbias);
  auto covered = [&](std::size_t row) { return std::isfinite(ref.lse[row]); };
  ASSERT_TRUE(std::ranges::any_of(ref.lse, [](double x) { return std::isfinite(x); }))
      << "every row of this case is uncovered: it checks nothing";

  // The naive same-precision implementations (top of the file).
  auto cpu = make_cpu_dilated_attention();
  const AttentionOutputs cpu_out = run_forward(*cpu, c.config, q, k, v, extras.kernel);
  const double naive_lse = test::relative_l2(cpu_out.lse.span<float>(), ref.lse, covered);
  double naive_o = 0, naive_dq = 0, naive_dk = 0, naive_dv = 0, naive_dbias = 0;
  if (c.dtype == DType::float32) {
    const AttentionGradients g =
        run_backward(*cpu, c.config, q, k, v, cpu_out, dout, extras.kernel);
    naive_o = test::relative_l2(cpu_out.o, ref.o);
    naive_dq = test::relative_l2(g.dq, ref_grads.dq);
    naive_dk = test::relative_l2(g.dk, ref_grads.dk);
    naive_dv = test::relative_l2(g.dv, ref_grads.dv);
    if (c.bias) naive_dbias = dbias_error(g.dbias, ref_dbias);
  } else {
    const NaiveExtras naive =
        naive_extras_attention(c.config, q, k, v, dout, c.dtype, extras.dense);
    naive_o = test::relative_l2(naive.o, ref.o);
    naive_dq = test::relative_l2(naive.dq, ref_grads.dq);
    naive_dk = test::relative_l2(naive.dk, ref_grads.dk);
    naive_dv = test::relative_l2(naive.dv, ref_grads.dv);
    if (c.bias) naive_dbias = test::error_over_floor(naive.dbias, ref_dbias, 1.0);
  }

  const Tensor gq = on_gpu(q, c.dtype), gk = on_gpu(k, c.dtype), gv = on_gpu(v, c.dtype),
               gdout = on_gpu(dout, c.dtype);
  for (bool deterministic : {true, false}) {
    SCOPED_TRACE(deterministic ? "default backend (deterministic dq)" : "atomic-dq backend");
    auto kernels = make_cuda_dilated_attention(0, deterministic);
    Tensor go = poisoned_gpu(shape, c.dtype);
    Tensor glse = poisoned_gpu(lse_shape(c.shape), DType::float32);
    kernels->forward(c.config, gq, gk, gv, go, glse, extras.kernel);
    const Tensor o = host_float(go), lse = host_float(glse);
    const double e_o = test::relative_l2(o, ref.o);
    const double e_lse = test::relative_l2(lse.span<float>(), ref.lse, covered);
    expect_bound("o", e_o, naive_o);
    expect_bound("lse (covered rows)", e_lse, naive_lse);
    int64_t bad_lse = 0;
    for (std::size_t row = 0; row < ref.lse.size(); ++row) {
      bad_lse += !covered(row) && lse.span<float>()[row] != -std::numeric_limits<float>::infinity();
    }
    EXPECT_EQ(bad_lse, 0) << "rows no pattern selects must have lse = -inf exactly";

    Tensor gdq = poisoned_gpu(shape, c.dtype), gdk = poisoned_gpu(shape, c.dtype),
           gdv = poisoned_gpu(shape, c.dtype);
    std::vector<Tensor> dbias = poisoned_like(extras.kernel.bias, Device::cpu);
    kernels->backward(c.config, gq, gk, gv, go, glse, gdout, gdq, gdk, gdv, extras.kernel, dbias);
    const double e_dq = test::relative_l2(host_float(gdq), ref_grads.dq);
    const double e_dk = test::relative_l2(host_float(gdk), ref_grads.dk);
    const double e_dv = test::relative_l2(host_float(gdv), ref_grads.dv);
    const double e_dbias = c.bias ? dbias_error(dbias, ref_dbias) : 0.0;
    expect_bound("dq", e_dq, naive_dq);
    expect_bound("dk", e_dk, naive_dk);
    expect_bound("dv", e_dv, naive_dv);
    expect_bound("dbias", e_dbias, naive_dbias);
    if (deterministic) {
      Tensor again_dq = poisoned_gpu(shape, c.dtype), again_dk = poisoned_gpu(shape, c.dtype),
             again_dv = poisoned_gpu(shape, c.dtype);
      kernels->backward(c.config, gq, gk, gv, go, glse, gdout, again_dq, again_dk, again_dv,
                        extras.kernel);
      EXPECT_TRUE(test::bitwise_equal(host_float(gdq), host_float(again_dq)))
          << "deterministic dq differs between two runs";
      EXPECT_TRUE(test::bitwise_equal(host_float(gdk), host_float(again_dk)))
          << "deterministic dk differs between two runs";
      EXPECT_TRUE(test::bitwise_equal(host_float(gdv), host_float(again_dv)))
          << "deterministic dv differs between two runs";
    }
    fmt::print(
        "# {:<8} {:<13} cuda/naive: o {:.2e}/{:.2e}  lse {:.2e}/{:.2e}  dq {:.2e}/{:.2e}  "
        "dk {:.2e}/{:.2e}  dv {:.2e}/{:.2e}  dbias {:.2e}/{:.2e}\n",
        dtype_name(c.dtype), deterministic ? "deterministic" : "atomic-dq", e_o, naive_o, e_lse,
        naive_lse, e_dq, naive_dq, e_dk, naive_dk, e_dv, naive_dv, e_dbias, naive_dbias);
  }
}

using HO = HeadOffsets;
constexpr bool kCausal = true, kNonCausal = false, kBias = true, kNoBias = false;

DilatedAttentionConfig config(std::vector<int64_t> w, std::vector<int64_t> r, bool causal,
                              HeadOffsets scheme) {
  return DilatedAttentionConfig::from_lists(w, r, causal, scheme);
}

// The one case list of every backend (tests/kernels/extras/extras_cases.hpp), each case in
// every dtype. Tile edges: forward 64-row query blocks and 64/128-row key tiles, backward
// 64-row key blocks and 32/64-row query steps, float32 64 x 64 (32 keys for D = 128);
// dbias diagonals cross several of them in the longer segments.
std::vector<ExtrasGpuCase> grid() {
  std::vector<ExtrasGpuCase> all;
  for (DType dtype : {DType::float32, DType::bfloat16, DType::float16}) {
    for (const test::ExtrasCase& c : test::extras_cases()) {
      all.push_back({c.shape, c.config, dtype, c.bias, c.dropout_p});
    }
  }
  return all;
}

std::string case_name(const testing::TestParamInfo<ExtrasGpuCase>& info) {
  const ExtrasGpuCase& c = info.param;
  return test::case_name(test::ExtrasCase{c.shape, c.config, c.bias, c.dropout_p}) + "_" +
         std::string(dtype_name(c.dtype));
}

INSTANTIATE_TEST_SUITE_P(Grid, CudaExtrasMatchReference, testing::ValuesIn(grid()), case_name);

// ---- the dropout mask agrees with the CPU's, bit for bit -----------------------------------
struct MaskCase {
  DType dtype;
  bool causal;
};

class CudaDropoutMaskMatchesCpu : public testing::TestWithParam<MaskCase> {};

// Per row of [rows, d]: ||got - want|| / ||want|| (||got - want|| where want is 0).
int64_t rows_over(const Tensor& got, const Tensor& want, int64_t d, double tolerance,
                  double* worst) {
  const auto g = got.span<float>(), w = want.span<float>();
  double total2 = 0;
  for (float x : w) total2 += static_cast<double>(x) * x;
  const double rows = static_cast<double>(w.size()) / static_cast<double>(d);
  const double floor2 = std::max(1e-4 * total2 / std::max(rows, 1.0), 1e-300);
  int64_t bad = 0;
  for (std::size_t row = 0; row * static_cast<std::size_t>(d) < w.size(); ++row) {
    double diff2 = 0, ref2 = 0;
    for (int64_t i = 0; i < d; ++i) {
      const std::size_t x = row * static_cast<std::size_t>(d) + static_cast<std::size_t>(i);
      diff2 += (static_cast<double>(g[x]) - w[x]) * (static_cast<double>(g[x]) - w[x]);
      ref2 += static_cast<double>(w[x]) * w[x];
    }
    // Rows whose exact value is 0 (the first row of a causal segment has one key, so its
    // dq is 0) hold only rounding noise in both results: judge them against a floor of
    // 1e-2 of the typical row (float32 atomics leave ~1e-7 of it there), not against their
    // own noise.
    const double e = std::sqrt(diff2 / std::max(ref2, floor2));
    if (!(e <= tolerance)) ++bad;  // NaN counts
    *worst = std::max(*worst, std::isfinite(e) ? e : std::numeric_limits<double>::infinity());
  }
  return bad;
}

TEST_P(CudaDropoutMaskMatchesCpu, RowByRowWithUniformAttention) {
  LONGNET_SKIP_WITHOUT_GPU();
  const MaskCase& c = GetParam();
  // Two patterns (n up to 256 and 128 keys per segment), two batches, several key tiles.
  const AttentionShape s{2, 512, 2, 32};
  const Shape shape = qkv_shape(s);
  const auto cfg = config({256, 512}, {1, 4}, c.causal, HO::interleaved);
  std::mt19937_64 rng(kSeed + 7);
  const Tensor q = Tensor::zeros(shape);  // every score 0: P uniform over allowed keys
  const Tensor k = rounded(test::random_tensor(shape, rng), c.dtype);
  const Tensor v = rounded(test::random_tensor(shape, rng), c.dtype);
  const Tensor dout = rounded(test::random_tensor(shape, rng), c.dtype);
  AttentionExtras extras;
  extras.dropout_p = 0.5f;
  extras.dropout_seed = kDropoutSeed + 1;
  extras.dropout_step = 11;

  auto cpu = make_cpu_dilated_attention();
  const AttentionOutputs want = run_forward(*cpu, cfg, q, k, v, extras);
  const AttentionGradients want_grads = run_backward(*cpu, cfg, q, k, v, want, dout, extras);
  // Rounding only (top of the file): float32 1e-6, bf16 / fp16 outputs 2^-9 and P, dS fed
  // to the tensor cores in 16 bits; a differing mask bit moves a row by 3% and more.
  const double tolerance = c.dtype == DType::float32 ? 1e-4 : 1.0 / 64;
  for (bool deterministic : {true, false}) {
    SCOPED_TRACE(deterministic ? "default backend (deterministic dq)" : "atomic-dq backend");
    auto kernels = make_cuda_dilated_attention(0, deterministic);
    const Tensor gq = on_gpu(q, c.dtype), gk = on_gpu(k, c.dtype), gv = on_gpu(v, c.dtype),
                 gdout = on_gpu(dout, c.dtype);
    Tensor go = poisoned_gpu(shape, c.dtype), glse = poisoned_gpu(lse_shape(s), DType::float32);
    kernels->forward(cfg, gq, gk, gv, go, glse, extras);
    Tensor gdq = poisoned_gpu(shape, c.dtype), gdk = poisoned_gpu(shape, c.dtype),
           gdv = poisoned_gpu(shape, c.dtype);
    kernels->backward(cfg, gq, gk, gv, go, glse, gdout, gdq, gdk, gdv, extras);
    double worst_o = 0, worst_dv = 0, worst_dq = 0;
    EXPECT_EQ(rows_over(host_float(go), want.o, s.head_dim, tolerance, &worst_o), 0) << "o";
    EXPECT_EQ(rows_over(host_float(gdv), want_grads.dv, s.head_dim, tolerance, &worst_dv), 0)
        << "dv";
    EXPECT_EQ(rows_over(host_float(gdq), want_grads.dq, s.head_dim, tolerance, &worst_dq), 0)
        << "dq";
    fmt::print("# {:<8} {:<13} worst row error: o {:.2e} dv {:.2e} dq {:.2e}\n",
               dtype_name(c.dtype), deterministic ? "deterministic" : "atomic-dq", worst_o,
               worst_dv, worst_dq);
  }
}

INSTANTIATE_TEST_SUITE_P(
    EveryKernelFamily, CudaDropoutMaskMatchesCpu,
    testing::Values(MaskCase{DType::float32, true}, MaskCase{DType::float32, false},
                    MaskCase{DType::bfloat16, true}, MaskCase{DType::bfloat16, false},
                    MaskCase{DType::float16, true}, MaskCase{DType::float16, false}),
    [](const testing::TestParamInfo<MaskCase>& case_info) {
      return std::string(dtype_name(case_info.param.dtype)) +
             (case_info.param.causal ? "_causal" : "_noncausal");
    });

// ---- properties ----------------------------------------------------------------------------
class CudaExtrasProperties : public testing::Test {
 protected:
  AttentionShape s_{2, 600, 3, 64};
  Shape shape_ = qkv_shape(s_);
  DilatedAttentionConfig config_ = config({128, 600}, {2, 4}, kCausal, HO::interleaved);
  std::mt19937_64 rng_{kSeed + 1};
  Tensor q_ = test::random_tensor(shape_, rng_), k_ = test::random_tensor(shape_, rng_),
         v_ = test::random_tensor(shape_, rng_), dout_ = test::random_tensor(shape_, rng_);
};

TEST_F(CudaExtrasProperties, NoBiasAndZeroDropoutAreBitIdenticalToNoExtras) {
  LONGNET_SKIP_WITHOUT_GPU();
  AttentionExtras off;
  off.dropout_seed = 123;  // a seed alone must not change anything
  for (DType dtype : {DType::float32, DType::bfloat16}) {
    SCOPED_TRACE(dtype_name(dtype));
    auto kernels = make_cuda_dilated_attention();
    const Tensor q = on_gpu(q_, dtype), k = on_gpu(k_, dtype), v = on_gpu(v_, dtype),
                 dout = on_gpu(dout_, dtype);
    Tensor o1(shape_, dtype, Device::cuda), o2(shape_, dtype, Device::cuda);
    Tensor lse1(lse_shape(s_), DType::float32, Device::cuda),
        lse2(lse_shape(s_), DType::float32, Device::cuda);
    kernels->forward(config_, q, k, v, o1, lse1);
    kernels->forward(config_, q, k, v, o2, lse2, off);
    EXPECT_TRUE(test::bitwise_equal(host_float(o1), host_float(o2)));
    EXPECT_TRUE(test::bitwise_equal(host_float(lse1), host_float(lse2)));
    Tensor g1[3] = {Tensor(shape_, dtype, Device::cuda), Tensor(shape_, dtype, Device::cuda),
                    Tensor(shape_, dtype, Device::cuda)};
    Tensor g2[3] = {Tensor(shape_, dtype, Device::cuda), Tensor(shape_, dtype, Device::cuda),
                    Tensor(shape_, dtype, Device::cuda)};
    kernels->backward(config_, q, k, v, o1, lse1, dout, g1[0], g1[1], g1[2]);
    kernels->backward(config_, q, k, v, o1, lse1, dout, g2[0], g2[1], g2[2], off);
    for (int i = 0; i < 3; ++i) {
      EXPECT_TRUE(test::bitwise_equal(host_float(g1[i]), host_float(g2[i]))) << "grad " << i;
    }
  }
}

TEST_F(CudaExtrasProperties, DeviceAndHostBiasTensorsGiveTheSameResults) {
  // Host bias/dbias tensors are copied to and from the device; device ones used in place.
  // The deterministic backend gives bitwise equal o, dq, dk, dv either way; dbias sums
  // with atomicAdd in a varying order, so it is compared to float32 rounding.
  LONGNET_SKIP_WITHOUT_GPU();
  AttentionExtras host = make_extras(config_, s_.heads, kBias, 0.2f, rng_).kernel;
  AttentionExtras device = host;
  device.bias = to_device(host.bias, Device::cuda);
  auto kernels = make_cuda_dilated_attention();
  const Tensor q = on_gpu(q_, DType::float32), k = on_gpu(k_, DType::float32),
               v = on_gpu(v_, DType::float32), dout = on_gpu(dout_, DType::float32);
  Tensor o[2] = {poisoned_gpu(shape_, DType::float32), poisoned_gpu(shape_, DType::float32)};
  Tensor lse[2] = {poisoned_gpu(lse_shape(s_), DType::float32),
                   poisoned_gpu(lse_shape(s_), DType::float32)};
  kernels->forward(config_, q, k, v, o[0], lse[0], host);
  kernels->forward(config_, q, k, v, o[1], lse[1], device);
  EXPECT_TRUE(test::bitwise_equal(o[0].to(Device::cpu), o[1].to(Device::cpu)));
  EXPECT_TRUE(test::bitwise_equal(lse[0].to(Device::cpu), lse[1].to(Device::cpu)));
  Tensor grads[2][3];
  for (auto& g : grads) {
    for (Tensor& t : g) t = poisoned_gpu(shape_, DType::float32);
  }
  std::vector<Tensor> dbias_host = poisoned_like(host.bias, Device::cpu);
  std::vector<Tensor> dbias_device = poisoned_like(host.bias, Device::cuda);
  kernels->backward(config_, q, k, v, o[0], lse[0], dout, grads[0][0], grads[0][1], grads[0][2],
                    host, dbias_host);
  kernels->backward(config_, q, k, v, o[0], lse[0], dout, grads[1][0], grads[1][1], grads[1][2],
                    device, dbias_device);
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(test::bitwise_equal(grads[0][i].to(Device::cpu), grads[1][i].to(Device::cpu)))
        << "gradient " << i << " (dq, dk, dv)";
  }
  const std::vector<double> want = test::flatten(dbias_host);
  EXPECT_LE(test::error_over_floor(test::flatten(to_device(dbias_device, Device::cpu)), want, 1.0),
            1e-5);
}

// Splits every task into query rows [0, cut) and [cut, count), the second starting at
// dilated index first_index = cut, as the sequence-parallel layer builds tasks whose
// queries start mid-segment. Keys stay whole.
std::vector<PatternTasks> split_queries(const PatternTasks& pattern, int64_t cut) {
  std::vector<PatternTasks> halves(
      2, PatternTasks{pattern.query_row_stride, pattern.lse_row_stride, {}});
  for (const SegmentTask& task : pattern.tasks) {
    if (task.queries.count <= cut) {
      halves[0].tasks.push_back(task);
      continue;
    }
    SegmentTask head = task, tail = task;
    head.queries.count = cut;
    tail.queries.count = task.queries.count - cut;
    tail.queries.first_index = cut;
    tail.queries.base += cut * pattern.query_row_stride;
    tail.queries.lse_base += cut * pattern.lse_row_stride;
    halves[0].tasks.push_back(head);
    halves[1].tasks.push_back(tail);
  }
  return halves;
}

class CudaExtrasTaskEntryPoints : public testing::TestWithParam<DType> {};

TEST_P(CudaExtrasTaskEntryPoints, QueriesSplitMidSegmentMatchTheCpu) {
  // forward_tasks / backward_tasks with device bias, dbias and dropout, the tasks split at
  // dilated index 77 (mid query block), against the CPU's Tensor-level results on the same
  // (rounded) inputs. Tolerance: float32 1e-5; 16 bits 2e-2, several times their rounding
  // (tests/kernels/test_dilated_attention_cuda.cpp measures 1e-3 to 5e-3), while a bias read from
  // the wrong first_index or a mask drawn for the wrong token is an O(1) change of most
  // rows of the second half.
  LONGNET_SKIP_WITHOUT_GPU();
  const DType dtype = GetParam();
  const AttentionShape s{2, 600, 2, 32};
  const Shape shape = qkv_shape(s);
  const auto cfg = config({600}, {2}, kCausal, HO::grouped);
  std::mt19937_64 rng(kSeed + 2);
  const Tensor q = rounded(test::random_tensor(shape, rng), dtype);
  const Tensor k = rounded(test::random_tensor(shape, rng), dtype);
  const Tensor v = rounded(test::random_tensor(shape, rng), dtype);
  const Tensor dout = rounded(test::random_tensor(shape, rng), dtype);
  const AttentionExtras extras = make_extras(cfg, s.heads, kBias, 0.3f, rng).kernel;

  auto cpu = make_cpu_dilated_attention();
  const AttentionOutputs want = run_forward(*cpu, cfg, q, k, v, extras);
  const AttentionGradients want_grads = run_backward(*cpu, cfg, q, k, v, want, dout, extras);

  AttentionExtras device_extras = extras;
  device_extras.bias = to_device(extras.bias, Device::cuda);
  std::vector<Tensor> dbias{Tensor::zeros(extras.bias[0].shape()).to(Device::cuda)};
  const Tensor gq = on_gpu(q, dtype), gk = on_gpu(k, dtype), gv = on_gpu(v, dtype),
               gdout = on_gpu(dout, dtype);
  Tensor o = Tensor::zeros(shape).to(Device::cuda);
  Tensor lse = Tensor::filled(lse_shape(s), -INFINITY).to(Device::cuda);
  Tensor dq = Tensor::zeros(shape).to(Device::cuda), dk = Tensor::zeros(shape).to(Device::cuda),
         dv = Tensor::zeros(shape).to(Device::cuda);
  const TaskExtras task_extras = pattern_task_extras(cfg, s, device_extras, dbias, 0);
  const PatternTasks whole =
      segment_tasks(cfg.patterns[0], cfg.head_offsets, s, 0, s.tokens, gk.raw(), gv.raw(),
                    dtype_size(dtype), dk.data<float>(), dv.data<float>(), task_extras);
  const std::vector<PatternTasks> halves = split_queries(whole, 77);
  ASSERT_FALSE(halves[1].tasks.empty());

  auto kernels = make_cuda_dilated_attention();
  AttentionParams params;
  params.input_dtype = dtype;
  params.head_dim = s.head_dim;
  params.scale = static_cast<float>(softmax_scale(cfg, s.head_dim));
  params.causal = cfg.causal;
  params.dropout_p = extras.dropout_p;
  params.q = gq.raw();
  params.o = o.data<float>();
  params.lse = lse.data<float>();
  PatternTasks both = halves[0];  // disjoint query rows: one forward call takes both
  both.tasks.insert(both.tasks.end(), halves[1].tasks.begin(), halves[1].tasks.end());
  kernels->forward_tasks(params, both);
  const Tensor o_host = o.to(Device::cpu);

  // delta = rowsum(dout * o) of the float32 output, on the host.
  Tensor delta(lse_shape(s), DType::float32);
  for (int64_t row = 0; row < delta.numel(); ++row) {
    double sum = 0;
    for (int64_t i = 0; i < s.head_dim; ++i) {
      sum += static_cast<double>(o_host.data<float>()[row * s.head_dim + i]) *
             dout.data<float>()[row * s.head_dim + i];
    }
    delta.data<float>()[row] = static_cast<float>(sum);
  }
  const Tensor gdelta = delta.to(Device::cuda);
  params.saved_lse = lse.data<float>();
  params.dout = gdout.raw();
  params.delta = gdelta.data<float>();
  params.dq = dq.data<float>();
  kernels->backward_tasks(params, halves[0]);  // the halves share key-gradient rows
  kernels->backward_tasks(params, halves[1]);

  const double tol = dtype == DType::float32 ? 1e-5 : 2e-2;
  auto as_doubles = [](const Tensor& t) { return reference::to_doubles(t); };
  EXPECT_LE(test::relative_l2(o_host, as_doubles(want.o)), tol) << "o";
  EXPECT_LE(test::relative_l2(dq.to(Device::cpu), as_doubles(want_grads.dq)), tol) << "dq";
  EXPECT_LE(test::relative_l2(dk.to(Device::cpu), as_doubles(want_grads.dk)), tol) << "dk";
  EXPECT_LE(test::relative_l2(dv.to(Device::cpu), as_doubles(want_grads.dv)), tol) << "dv";
  EXPECT_LE(test::error_over_floor(dbias[0].to(Device::cpu).span<float>(),
                                   as_doubles(want_grads.dbias[0]), 1.0),
            tol)
      << "dbias";
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CudaExtrasTaskEntryPoints,
                         testing::Values(DType::float32, DType::bfloat16),
                         [](const testing::TestParamInfo<DType>& case_info) {
                           return std::string(dtype_name(case_info.param));
                         });

// ---- without a GPU: the baseline and argument errors ---------------------------------------
TEST(NaiveExtrasBaseline, IsWithinItsDtypesRoundingOfTheReference) {
  // The 16-bit baseline of the bound must itself be right: a slip in it (a bias slot, a
  // mask, a missing Z) would be an O(1) error and loosen every bound above.
  const AttentionShape s{2, 97, 2, 16};
  const auto cfg = config({32, 97}, {2, 3}, kCausal, HO::interleaved);
  std::mt19937_64 rng(kSeed + 3);
  const Shape shape = qkv_shape(s);
  for (DType dtype : {DType::bfloat16, DType::float16}) {
    SCOPED_TRACE(dtype_name(dtype));
    const Tensor q = rounded(test::random_tensor(shape, rng), dtype);
    const Tensor k = rounded(test::random_tensor(shape, rng), dtype);
    const Tensor v = rounded(test::random_tensor(shape, rng), dtype);
    const Tensor dout = rounded(test::random_tensor(shape, rng), dtype);
    const Extras extras = make_extras(cfg, s.heads, kBias, 0.3f, rng);
    const DenseInputs in = DenseInputs::from_tensors(q, k, v);
    const auto ref = reference::dense_forward(cfg, in, extras.dense);
    const auto ref_grads =
        reference::dense_backward(cfg, in, reference::to_doubles(dout), extras.dense);
    const NaiveExtras naive = naive_extras_attention(cfg, q, k, v, dout, dtype, extras.dense);
    // 16 ulps of bfloat16 (2^-8 each): rounding of a few steps, far below a slip's O(1).
    const double tol = 16.0 / 256;
    EXPECT_LE(test::relative_l2(naive.o, ref.o), tol) << "o";
    EXPECT_LE(test::relative_l2(naive.dq, ref_grads.dq), tol) << "dq";
    EXPECT_LE(test::relative_l2(naive.dk, ref_grads.dk), tol) << "dk";
    EXPECT_LE(test::relative_l2(naive.dv, ref_grads.dv), tol) << "dv";
    EXPECT_LE(test::error_over_floor(naive.dbias, test::flatten(ref_grads.dbias), 1.0), tol)
        << "dbias";
    fmt::print("# naive {:<8} o {:.2e} dq {:.2e} dk {:.2e} dv {:.2e} dbias {:.2e}\n",
               dtype_name(dtype), test::relative_l2(naive.o, ref.o),
               test::relative_l2(naive.dq, ref_grads.dq), test::relative_l2(naive.dk, ref_grads.dk),
               test::relative_l2(naive.dv, ref_grads.dv),
               test::error_over_floor(naive.dbias, test::flatten(ref_grads.dbias), 1.0));
  }
}

class CudaExtrasErrors : public testing::Test {
 protected:
  AttentionShape s_{1, 64, 2, 32};
  Shape shape_ = qkv_shape(s_);
  Tensor t_ = Tensor::zeros(shape_), lse_ = Tensor::zeros(lse_shape(s_));
  DilatedAttentionConfig config_ = config({32}, {2}, kCausal, HO::interleaved);
  std::unique_ptr<DilatedAttentionOp> kernels_ = make_cuda_dilated_attention();
};

TEST_F(CudaExtrasErrors, MalformedExtrasNameTheProblemBeforeAnyCudaCall) {
  AttentionExtras extras;
  extras.dropout_p = 1.0f;
  EXPECT_THAT([&] { kernels_->forward(config_, t_, t_, t_, t_, lse_, extras); },
              ThrowsMessage<Error>(HasSubstr("dropout_p must be in [0, 1), got 1")));
  extras.dropout_p = 0.0f;
  // Pattern (w = 32, r = 2) has L = 16, so 2L - 1 = 31 distances, not 30.
  extras.bias = {Tensor::zeros({2, 30})};
  EXPECT_THAT([&] { kernels_->forward(config_, t_, t_, t_, t_, lse_, extras); },
              ThrowsMessage<Error>(AllOf(HasSubstr("bias of pattern 0"), HasSubstr("[2, 30]"),
                                         HasSubstr("[2, 31]"))));
  std::vector<Tensor> dbias{Tensor::zeros({2, 31})};
  extras.bias.clear();
  EXPECT_THAT(
      [&] { kernels_->backward(config_, t_, t_, t_, t_, lse_, t_, t_, t_, t_, extras, dbias); },
      ThrowsMessage<Error>(HasSubstr("dbias was requested but extras.bias is empty")));
}

TEST_F(CudaExtrasErrors, TaskDropoutOutsideItsRangeIsRejected) {
  AttentionParams params;
  params.head_dim = 32;
  params.scale = 0.25f;
  for (float p : {-0.1f, 1.0f, std::numeric_limits<float>::quiet_NaN()}) {
    params.dropout_p = p;
    EXPECT_THAT([&] { kernels_->forward_tasks(params, PatternTasks{}); },
                ThrowsMessage<Error>(HasSubstr("dropout_p must be in [0, 1)")));
  }
}

}  // namespace
}  // namespace longnet
