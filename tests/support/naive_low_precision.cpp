#include "tests/support/naive_low_precision.hpp"

#include "runtime/error.hpp"
#include "tests/reference/dense_attention_reference.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace longnet::test {

NaiveLowPrecision naive_low_precision_attention(const DilatedAttentionConfig& config,
                                                const Tensor& q, const Tensor& k, const Tensor& v,
                                                const Tensor& dout, DType dtype) {
  LONGNET_CHECK(dtype == DType::bfloat16 || dtype == DType::float16,
                "the naive low-precision attention rounds to bfloat16 or float16, not {}",
                dtype_name(dtype));
  auto rd = [dtype](double x) {
    const auto f = static_cast<float>(x);
    return static_cast<double>(dtype == DType::bfloat16 ? to_float(to_bfloat16(f))
                                                        : to_float(to_float16(f)));
  };
  const int64_t B = q.dim(0), N = q.dim(1), H = q.dim(2), D = q.dim(3);
  const double scale = reference::reference_scale(config, D);
  const float* qd = q.data<float>();
  const float* kd = k.data<float>();
  const float* vd = v.data<float>();
  const float* dod = dout.data<float>();
  const auto n = static_cast<std::size_t>(q.numel());
  NaiveLowPrecision out{std::vector<double>(n, 0.0), std::vector<double>(n, 0.0),
                        std::vector<double>(n, 0.0), std::vector<double>(n, 0.0)};
  auto at = [&](int64_t b, int64_t t, int64_t h) {
    return static_cast<std::size_t>(((b * N + t) * H + h) * D);
  };
  auto dot = [D](const float* x, const float* y) {
    double s = 0;
    for (int64_t d = 0; d < D; ++d) s += static_cast<double>(x[d]) * y[d];
    return s;
  };

  std::vector<int64_t> keys;  // one entry per allowed (pattern, key) pair
  std::vector<double> a, p, dp;
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < H; ++h) {
      for (int64_t i = 0; i < N; ++i) {
        keys.clear();
        for (const DilationPattern& pattern : config.patterns) {
          for (int64_t j = 0; j < N; ++j) {
            if (reference::reference_allowed(pattern, config.head_offsets, config.causal, h, H, i,
                                             j)) {
              keys.push_back(j);
            }
          }
        }
        if (keys.empty()) continue;
        const std::size_t qi = at(b, i, h);
        a.resize(keys.size());
        p.resize(keys.size());
        dp.resize(keys.size());
        double m = -std::numeric_limits<double>::infinity();
        for (std::size_t e = 0; e < keys.size(); ++e) {
          a[e] = rd(rd(dot(qd + qi, kd + at(b, keys[e], h))) * scale);
          m = std::max(m, a[e]);
        }
        double sum = 0;
        for (std::size_t e = 0; e < keys.size(); ++e) sum += std::exp(a[e] - m);
        for (std::size_t e = 0; e < keys.size(); ++e) p[e] = rd(std::exp(a[e] - m) / sum);
        for (int64_t d = 0; d < D; ++d) {
          double o = 0;
          for (std::size_t e = 0; e < keys.size(); ++e) o += p[e] * vd[at(b, keys[e], h) + d];
          out.o[qi + d] = rd(o);
        }
        // Backward of this row: its dq, and its terms of dk and dv (rounded at the end).
        double p_dp = 0;
        for (std::size_t e = 0; e < keys.size(); ++e) {
          dp[e] = rd(dot(dod + qi, vd + at(b, keys[e], h)));
          p_dp += p[e] * dp[e];
        }
        for (std::size_t e = 0; e < keys.size(); ++e) {
          const double ds = rd(rd(p[e] * (dp[e] - p_dp)) * scale);
          const std::size_t kj = at(b, keys[e], h);
          for (int64_t d = 0; d < D; ++d) {
            out.dq[qi + d] += ds * kd[kj + d];
            out.dk[kj + d] += ds * qd[qi + d];
            out.dv[kj + d] += p[e] * dod[qi + d];
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
  return out;
}

}  // namespace longnet::test
