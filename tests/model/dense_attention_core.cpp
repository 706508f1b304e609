#include "tests/model/dense_attention_core.hpp"

#include "kernels/philox.hpp"
#include "tests/reference/dense_attention_reference.hpp"

#include <cmath>
#include <limits>
#include <vector>

namespace longnet::test {
namespace {

struct Pair {
  std::size_t pattern;
  int64_t key;
  double p;            // softmax probability
  double keep;         // dropout factor Z: 0, or 1 / (1 - p) for a kept pair (1 without dropout)
  int64_t bias_index;  // into the pattern's bias row of this head (distance d at L - 1 + d)
};

// Every allowed (pattern, key) of query i in (b, h), with its softmax probability; also
// the log-sum-exp. Scores use the pattern's own q and k.
// The row of k and v (and dk, dv) that query head h reads at token n: with Hkv kv heads
// (grouped-query attention), kv head h / (H / Hkv), written here from the definition.
int64_t key_row(const AttentionShape& s, int64_t b, int64_t n, int64_t h) {
  const int64_t kv_heads = s.kv_heads > 0 ? s.kv_heads : s.heads;
  return (b * s.tokens + n) * kv_heads + h / (s.heads / kv_heads);
}

double attend_row(const DilatedAttentionConfig& config, const AttentionShape& s,
                  std::span<const PatternOperands> patterns, int64_t b, int64_t h, int64_t i,
                  std::vector<Pair>& pairs) {
  const double scale = reference::reference_scale(config, s.head_dim);
  auto at = [&](int64_t n) { return ((b * s.tokens + n) * s.heads + h) * s.head_dim; };
  auto key_at = [&](int64_t n) { return key_row(s, b, n, h) * s.head_dim; };
  pairs.clear();
  std::vector<double> scores;
  for (std::size_t p = 0; p < patterns.size(); ++p) {
    const double* q = patterns[p].q->data<double>();
    const double* k = patterns[p].k->data<double>();
    for (int64_t j = 0; j < s.tokens; ++j) {
      if (!reference::reference_allowed(config.patterns[p], config.head_offsets, config.causal, h,
                                        s.heads, i, j)) {
        continue;
      }
      double dot = 0;
      for (int64_t e = 0; e < s.head_dim; ++e) dot += q[at(i) + e] * k[key_at(j) + e];
      // Same segment and offset, so i - j is r times the dilated distance.
      const DilationPattern& pattern = config.patterns[p];
      const int64_t rows = relative_bias_rows(pattern);
      const int64_t bias_index = h * (2 * rows - 1) + rows - 1 + (i - j) / pattern.dilation_rate;
      double score = scale * dot;
      if (patterns[p].bias != nullptr) score += patterns[p].bias->data<double>()[bias_index];
      double keep = 1.0;
      if (patterns[p].dropout_p > 0) {
        const uint64_t key = dropout_task_key(patterns[p].dropout_keys[h], b);
        keep = dropout_keep(key, i, j, dropout_threshold(patterns[p].dropout_p))
                   ? 1.0 / (1.0 - static_cast<double>(patterns[p].dropout_p))
                   : 0.0;
      }
      pairs.push_back({p, j, 0.0, keep, bias_index});
      scores.push_back(score);
    }
  }
  if (pairs.empty()) return -std::numeric_limits<double>::infinity();
  double m = -std::numeric_limits<double>::infinity();
  for (double x : scores) m = std::max(m, x);
  double sum = 0;
  for (double x : scores) sum += std::exp(x - m);
  for (std::size_t n = 0; n < pairs.size(); ++n) pairs[n].p = std::exp(scores[n] - m) / sum;
  return m + std::log(sum);
}

}  // namespace

void DenseAttentionCore::forward(std::span<const PatternOperands> patterns, const Tensor& v,
                                 Tensor& o, Tensor& lse) {
  const AttentionShape& s = shape_;
  const double* vv = v.data<double>();
  double* out = o.data<double>();
  double* l = lse.data<double>();
  std::vector<Pair> pairs;
  for (int64_t b = 0; b < s.batch; ++b) {
    for (int64_t i = 0; i < s.tokens; ++i) {
      for (int64_t h = 0; h < s.heads; ++h) {
        const int64_t row = ((b * s.tokens + i) * s.heads + h) * s.head_dim;
        l[(b * s.tokens + i) * s.heads + h] = attend_row(config_, s, patterns, b, h, i, pairs);
        for (int64_t e = 0; e < s.head_dim; ++e) out[row + e] = 0;
        for (const Pair& pr : pairs) {
          const int64_t key = key_row(s, b, pr.key, h) * s.head_dim;
          for (int64_t e = 0; e < s.head_dim; ++e) out[row + e] += pr.p * pr.keep * vv[key + e];
        }
      }
    }
  }
}

void DenseAttentionCore::backward(std::span<const PatternOperands> patterns, const Tensor& v,
                                  const Tensor&, const Tensor&, const Tensor& dout, Tensor& dv) {
  const AttentionShape& s = shape_;
  const double scale = reference::reference_scale(config_, s.head_dim);
  const double* vv = v.data<double>();
  const double* g = dout.data<double>();
  dv.fill(0.0);
  double* dvv = dv.data<double>();
  std::vector<Pair> pairs;
  for (int64_t b = 0; b < s.batch; ++b) {
    for (int64_t i = 0; i < s.tokens; ++i) {
      for (int64_t h = 0; h < s.heads; ++h) {
        attend_row(config_, s, patterns, b, h, i, pairs);
        const int64_t row = ((b * s.tokens + i) * s.heads + h) * s.head_dim;
        std::vector<double> dp(pairs.size());
        double delta = 0;
        for (std::size_t n = 0; n < pairs.size(); ++n) {
          const int64_t key = key_row(s, b, pairs[n].key, h) * s.head_dim;
          double dot = 0;
          for (int64_t e = 0; e < s.head_dim; ++e) {
            dot += g[row + e] * vv[key + e];
            dvv[key + e] += pairs[n].p * pairs[n].keep * g[row + e];
          }
          dp[n] = pairs[n].keep * dot;  // through the dropout factor
          delta += pairs[n].p * dp[n];
        }
        for (std::size_t n = 0; n < pairs.size(); ++n) {
          const double dscore = pairs[n].p * (dp[n] - delta);  // d loss / d score
          const double ds = dscore * scale;
          const PatternOperands& op = patterns[pairs[n].pattern];
          if (op.dbias != nullptr) op.dbias->data<double>()[pairs[n].bias_index] += dscore;
          const int64_t key = key_row(s, b, pairs[n].key, h) * s.head_dim;
          const double* q = op.q->data<double>();
          const double* k = op.k->data<double>();
          double* dq = op.dq->data<double>();
          double* dk = op.dk->data<double>();
          for (int64_t e = 0; e < s.head_dim; ++e) {
            dq[row + e] += ds * k[key + e];
            dk[key + e] += ds * q[row + e];
          }
        }
      }
    }
  }
}

}  // namespace longnet::test
