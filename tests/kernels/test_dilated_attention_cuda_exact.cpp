// The CUDA kernels' masks, checked exactly, whatever the dtype (label gpu).
//
// Inputs are chosen so that every kernel computes in exact arithmetic: entries in
// {-1, 0, 1}, q nonzero only in the first half of the head dim and k only in the second,
// so every score q . k is exactly 0. Then each allowed (pattern, key) pair of a row gets
// probability weight 2^0 = 1 before normalisation, and
//   forward   lse_i = log(count_i)  and  o_i = (sum of v_j over the allowed pairs) / count_i,
// where count_i counts the (pattern, key) pairs the configuration allows. The backward is
// run through backward_tasks with a saved lse of 0 and a delta of 0 (the kernels take
// them as given), so P = 1 on every allowed pair and dS = dP = do_i . v_j, an integer of
// magnitude <= D <= 128, exact in bf16 and fp16:
//   dv_j = sum of do_i,   dk_j = scale sum of dP_ij q_i,   dq_i = scale sum of dP_ij k_j
// over the allowed pairs. All of it is exact in float32 up to the final divisions, scale
// products and the log-sum-exp merge, a few ulps. So a single wrong (query, key) pair
// anywhere (a tile edge, the causal diagonal, a short segment, a padding row) changes a
// count or a sum by at least 1 and fails; the tolerances (1e-5) are ~100 ulps.
// Counted independently: the expected values come from the reference's mask predicate
// (tests/reference/), evaluated for every (query, key, pattern).
//
// Tasks are built here as the sequence-parallel layer builds them, and each task's query
// rows are split at a third into two launches, the second with first_index > 0 (its
// queries start mid-segment), so causal masking by dilated index is checked as well.
#include "kernels/cuda/dilated_attention_cuda.hpp"
#include "tests/reference/dense_attention_reference.hpp"
#include "tests/support/cuda_test_support.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

namespace longnet {
namespace {

using test::host_float;

constexpr double kTolerance = 1e-5;  // reasoned at the top

struct ExactCase {
  AttentionShape shape;
  DilatedAttentionConfig config;
  DType dtype = DType::float32;
};

void PrintTo(const ExactCase& c, std::ostream* os) {
  *os << c.shape.describe() << " " << c.config.describe() << " " << dtype_name(c.dtype);
}

// One pattern's tasks as two launches: each task's queries [0, cut) and [cut, count) with
// cut = count / 3 (an empty part is left out). Keys: every row of the task; dk, dv
// pointers into the float32 gradients.
std::vector<PatternTasks> split_tasks(const DilationPattern& pattern, HeadOffsets scheme,
                                      const AttentionShape& shape, const Tensor& k, const Tensor& v,
                                      Tensor& dk, Tensor& dv) {
  const int64_t w = pattern.segment_length, r = pattern.dilation_rate;
  std::vector<PatternTasks> parts(2);
  for (PatternTasks& part : parts) {
    part.query_row_stride = r * shape.heads * shape.head_dim;
    part.lse_row_stride = r * shape.heads;
  }
  const auto element = static_cast<int64_t>(dtype_size(k.dtype()));
  for (int64_t b = 0; b < shape.batch; ++b) {
    for (int64_t h = 0; h < shape.heads; ++h) {
      const int64_t off = head_offset(scheme, h, shape.heads, r);
      for (int64_t start = 0; start < shape.tokens; start += w) {
        const int64_t length = std::min(w, shape.tokens - start);
        if (length <= off) continue;
        const int64_t count = (length - off + r - 1) / r;
        const int64_t row = (b * shape.tokens + start + off) * shape.heads + h;
        const int64_t base = row * shape.head_dim;
        SegmentTask task;
        task.keys = {static_cast<const unsigned char*>(k.raw()) + base * element,
                     static_cast<const unsigned char*>(v.raw()) + base * element,
                     dk.data<float>() + base,
                     dv.data<float>() + base,
                     parts[0].query_row_stride,
                     count};
        const int64_t cut = count / 3;
        if (cut > 0) {
          task.queries = {base, row, cut, 0};
          parts[0].tasks.push_back(task);
        }
        task.queries = {base + cut * parts[0].query_row_stride, row + cut * parts[0].lse_row_stride,
                        count - cut, cut};
        parts[1].tasks.push_back(task);
      }
    }
  }
  return parts;
}

struct Expected {
  std::vector<double> o, lse, dq, dk, dv;
};

Expected expected_values(const ExactCase& c, const Tensor& q, const Tensor& k, const Tensor& v,
                         const Tensor& dout, double scale) {
  const AttentionShape& s = c.shape;
  const int64_t D = s.head_dim;
  const auto n = static_cast<std::size_t>(s.elements());
  Expected e{std::vector<double>(n, 0.0), std::vector<double>(static_cast<std::size_t>(s.rows())),
             std::vector<double>(n, 0.0), std::vector<double>(n, 0.0), std::vector<double>(n, 0.0)};
  const float *qd = q.data<float>(), *kd = k.data<float>(), *vd = v.data<float>(),
              *dod = dout.data<float>();
  for (int64_t b = 0; b < s.batch; ++b) {
    for (int64_t h = 0; h < s.heads; ++h) {
      for (int64_t i = 0; i < s.tokens; ++i) {
        const int64_t row = (b * s.tokens + i) * s.heads + h;
        const auto qi = static_cast<std::size_t>(row * D);
        int64_t count = 0;
        for (const DilationPattern& pattern : c.config.patterns) {
          for (int64_t j = 0; j < s.tokens; ++j) {
            if (!reference::reference_allowed(pattern, c.config.head_offsets, c.config.causal, h,
                                              s.heads, i, j)) {
              continue;
            }
            ++count;
            const auto kj = static_cast<std::size_t>(((b * s.tokens + j) * s.heads + h) * D);
            double dp = 0;
            for (int64_t d = 0; d < D; ++d) dp += static_cast<double>(dod[qi + d]) * vd[kj + d];
            for (int64_t d = 0; d < D; ++d) {
              e.o[qi + d] += vd[kj + d];
              e.dv[kj + d] += dod[qi + d];
              e.dk[kj + d] += scale * dp * qd[qi + d];
              e.dq[qi + d] += scale * dp * kd[kj + d];
            }
          }
        }
        e.lse[static_cast<std::size_t>(row)] = count > 0 ? std::log(static_cast<double>(count))
                                                         : -std::numeric_limits<double>::infinity();
        for (int64_t d = 0; d < D; ++d)
          e.o[qi + d] /= static_cast<double>(std::max<int64_t>(count, 1));
      }
    }
  }
  return e;
}

// max |got - want| / max(1, |want|); infinite when an infinity is not matched exactly.
double worst_error(const Tensor& got, const std::vector<double>& want) {
  const auto x = got.span<float>();
  double worst = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (std::isinf(want[i]) || !std::isfinite(x[i])) {
      if (static_cast<double>(x[i]) != want[i]) return std::numeric_limits<double>::infinity();
      continue;
    }
    worst = std::max(worst, std::abs(x[i] - want[i]) / std::max(1.0, std::abs(want[i])));
  }
  return worst;
}

class CudaKernelsCountAllowedPairs : public testing::TestWithParam<ExactCase> {};

TEST_P(CudaKernelsCountAllowedPairs, ExactlyInForwardAndBackward) {
  LONGNET_SKIP_WITHOUT_GPU();
  const ExactCase& c = GetParam();
  const AttentionShape& s = c.shape;
  const Shape shape = qkv_shape(s);
  const int64_t D = s.head_dim;
  std::mt19937_64 rng(99);
  std::uniform_int_distribution<int> unit(-1, 1);
  Tensor q(shape, DType::float32), k(shape, DType::float32), v(shape, DType::float32),
      dout(shape, DType::float32);
  for (int64_t i = 0; i < s.elements(); ++i) {
    const bool first_half = i % D < D / 2;
    q.data<float>()[i] = first_half ? static_cast<float>(unit(rng)) : 0.0f;
    k.data<float>()[i] = first_half ? 0.0f : static_cast<float>(unit(rng));
    v.data<float>()[i] = static_cast<float>(unit(rng));
    dout.data<float>()[i] = static_cast<float>(unit(rng));
  }
  const double scale = softmax_scale(c.config, D);
  const Expected want = expected_values(c, q, k, v, dout, scale);

  const Tensor gq = q.cast(c.dtype).to(Device::cuda), gk = k.cast(c.dtype).to(Device::cuda),
               gv = v.cast(c.dtype).to(Device::cuda), gdout = dout.cast(c.dtype).to(Device::cuda);
  const Tensor zeros = Tensor::zeros(lse_shape(s)).to(Device::cuda);  // saved lse and delta
  for (bool deterministic : {false, true}) {
    SCOPED_TRACE(deterministic ? "default backend (deterministic dq)" : "atomic-dq backend");
    auto kernels = make_cuda_dilated_attention(0, deterministic);
    Tensor o = Tensor::zeros(shape).to(Device::cuda);
    Tensor lse =
        Tensor::filled(lse_shape(s), -std::numeric_limits<double>::infinity()).to(Device::cuda);
    Tensor dq = Tensor::zeros(shape).to(Device::cuda), dk = Tensor::zeros(shape).to(Device::cuda),
           dv = Tensor::zeros(shape).to(Device::cuda);
    AttentionParams params;
    params.input_dtype = c.dtype;
    params.head_dim = D;
    params.scale = static_cast<float>(scale);
    params.causal = c.config.causal;
    params.q = gq.raw();
    params.o = o.data<float>();
    params.lse = lse.data<float>();
    params.saved_lse = zeros.data<float>();
    params.dout = gdout.raw();
    params.delta = zeros.data<float>();
    params.dq = dq.data<float>();
    for (const DilationPattern& pattern : c.config.patterns) {
      for (const PatternTasks& part :
           split_tasks(pattern, c.config.head_offsets, s, gk, gv, dk, dv)) {
        kernels->forward_tasks(params, part);
        kernels->backward_tasks(params, part);
      }
    }
    EXPECT_LE(worst_error(host_float(lse), want.lse), kTolerance) << "lse != log(allowed pairs)";
    EXPECT_LE(worst_error(host_float(o), want.o), kTolerance) << "o != mean of allowed v";
    EXPECT_LE(worst_error(host_float(dq), want.dq), kTolerance) << "dq";
    EXPECT_LE(worst_error(host_float(dk), want.dk), kTolerance) << "dk";
    EXPECT_LE(worst_error(host_float(dv), want.dv), kTolerance) << "dv";
  }
}

std::vector<ExactCase> exact_grid() {
  using HO = HeadOffsets;
  auto cfg = [](std::vector<int64_t> w, std::vector<int64_t> r, bool causal, HO scheme) {
    return DilatedAttentionConfig::from_lists(w, r, causal, scheme);
  };
  // Tile edges mid-set, several key tiles and query blocks per task, the causal diagonal,
  // short last segments, uncovered rows, w > N, r = w, B = 2, every head dim.
  const std::vector<std::pair<AttentionShape, DilatedAttentionConfig>> cases = {
      {{1, 1000, 3, 64}, cfg({256, 1024}, {3, 1}, true, HO::grouped)},
      {{1, 1000, 2, 128}, cfg({100, 333}, {4, 7}, false, HO::interleaved)},
      {{2, 1000, 4, 32}, cfg({32, 96}, {3, 2}, true, HO::interleaved)},
      {{1, 1000, 3, 32}, cfg({10}, {10}, false, HO::interleaved)},
      {{1, 7, 4, 64}, cfg({2, 4, 8}, {1, 2, 4}, true, HO::grouped)},
      {{2, 7, 3, 128}, cfg({16}, {3}, false, HO::grouped)},
      {{1, 1500, 1, 128}, cfg({2048}, {1}, true, HO::interleaved)},
      {{1, 2500, 2, 64}, cfg({2500, 1024}, {1, 2}, true, HO::grouped)},
  };
  std::vector<ExactCase> all;
  for (DType dtype : {DType::float32, DType::bfloat16, DType::float16}) {
    for (const auto& [shape, config] : cases) all.push_back({shape, config, dtype});
  }
  return all;
}

INSTANTIATE_TEST_SUITE_P(Masks, CudaKernelsCountAllowedPairs, testing::ValuesIn(exact_grid()),
                         [](const testing::TestParamInfo<ExactCase>& case_info) {
                           return reference::case_name(case_info.param.shape,
                                                       case_info.param.config) +
                                  "_" + std::string(dtype_name(case_info.param.dtype));
                         });

}  // namespace
}  // namespace longnet
