// The dense reference: every (query, key, pattern) triple is tested against the
// definition, and each row is one softmax over the multiset of allowed (pattern, key)
// entries. Nothing here is tiled, vectorised or clever; it is meant to be read.
#include "tests/reference/dense_attention_reference.hpp"

#include "kernels/philox.hpp"
#include "runtime/error.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

namespace longnet::reference {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// One allowed (pattern, key) pair of a query row: its score S_ij (bias included) and
// its dropout factor Z (1 without dropout).
struct Entry {
  std::size_t pattern;
  int64_t key;
  double score;
  double z;
};

// Where a (pattern p, head h) bias table holds the value for real distance i - j, which
// the mask makes a multiple of r.
std::size_t bias_slot(const BiasTable& table, const DilatedAttentionConfig& config, std::size_t p,
                      int64_t h, int64_t i, int64_t j) {
  const DilationPattern& pattern = config.patterns[p];
  const int64_t rows = (pattern.segment_length + pattern.dilation_rate - 1) / pattern.dilation_rate;
  const std::size_t size = table.at(p).at(static_cast<std::size_t>(h)).size();
  LONGNET_CHECK(
      static_cast<int64_t>(size) == 2 * rows - 1,
      "reference: bias of pattern {} head {} has {} values, expected 2 ceil(w/r) - 1 = {}", p, h,
      size, 2 * rows - 1);
  LONGNET_CHECK((i - j) % pattern.dilation_rate == 0,
                "reference: distance {} of an allowed pair is not a multiple of r = {}", i - j,
                pattern.dilation_rate);
  return static_cast<std::size_t>(rows - 1 + (i - j) / pattern.dilation_rate);
}

double dot(const double* a, const double* b, int64_t d) {
  double s = 0;
  for (int64_t x = 0; x < d; ++x) s += a[x] * b[x];
  return s;
}

// Every allowed (pattern, key) entry of query i in (batch b, head h), with its score.
// Evaluates the predicate for every key j in [0, N) and every pattern: a dense mask.
std::vector<Entry> row_entries(const DilatedAttentionConfig& config, const DenseInputs& in,
                               const DenseExtras& extras, double scale, int64_t b, int64_t h,
                               int64_t i) {
  const BiasTable& bias = extras.bias;
  const double keep_scale = 1.0 / (1.0 - static_cast<double>(extras.dropout_p));
  const AttentionShape& s = in.shape;
  std::vector<Entry> entries;
  const double* qi = &in.q[static_cast<std::size_t>(in.index(b, i, h, 0))];
  for (std::size_t p = 0; p < config.patterns.size(); ++p) {
    for (int64_t j = 0; j < s.tokens; ++j) {
      if (!reference_allowed(config.patterns[p], config.head_offsets, config.causal, h, s.heads, i,
                             j)) {
        continue;
      }
      const double* kj = &in.k[static_cast<std::size_t>(in.index(b, j, h, 0))];
      const double b_ij =
          bias.empty() ? 0.0
                       : bias[p][static_cast<std::size_t>(h)][bias_slot(bias, config, p, h, i, j)];
      const double z = extras.dropout_p == 0.0f                 ? 1.0
                       : reference_keeps(extras, p, h, b, i, j) ? keep_scale
                                                                : 0.0;
      entries.push_back({p, j, scale * dot(qi, kj, s.head_dim) + b_ij, z});
    }
  }
  return entries;
}

// m_i + log sum_p s_p(i), written as in the definition (per-pattern sums, then mixed).
double row_lse(const std::vector<Entry>& entries, std::size_t patterns) {
  if (entries.empty()) return kNegInf;
  double m = kNegInf;
  for (const Entry& e : entries) m = std::max(m, e.score);
  std::vector<double> s_p(patterns, 0.0);
  for (const Entry& e : entries) s_p[e.pattern] += std::exp(e.score - m);
  double total = 0;
  for (double x : s_p) total += x;
  return m + std::log(total);
}

}  // namespace

DenseInputs DenseInputs::from_tensors(const Tensor& q, const Tensor& k, const Tensor& v) {
  LONGNET_CHECK(q.rank() == 4, "reference: q must be [B, N, H, D], got {}",
                shape_string(q.shape()));
  LONGNET_CHECK(k.shape() == q.shape() && v.shape() == q.shape(),
                "reference: q, k, v shapes differ: {} {} {}", shape_string(q.shape()),
                shape_string(k.shape()), shape_string(v.shape()));
  DenseInputs in;
  in.shape = {q.dim(0), q.dim(1), q.dim(2), q.dim(3)};
  in.q = to_doubles(q);
  in.k = to_doubles(k);
  in.v = to_doubles(v);
  return in;
}

DenseInputs DenseInputs::from_grouped_tensors(const Tensor& q, const Tensor& k, const Tensor& v) {
  LONGNET_CHECK(q.rank() == 4 && k.rank() == 4 && v.shape() == k.shape() && k.dim(0) == q.dim(0) &&
                    k.dim(1) == q.dim(1) && k.dim(3) == q.dim(3) && k.dim(2) > 0 &&
                    q.dim(2) % k.dim(2) == 0,
                "reference: q {} and k, v {} {} are not grouped-query shapes",
                shape_string(q.shape()), shape_string(k.shape()), shape_string(v.shape()));
  const int64_t batch = q.dim(0), tokens = q.dim(1), heads = q.dim(2), d = q.dim(3);
  const int64_t kv_heads = k.dim(2), group = heads / kv_heads;
  DenseInputs in;
  in.shape = {batch, tokens, heads, d};
  in.q = to_doubles(q);
  const std::vector<double> k_in = to_doubles(k), v_in = to_doubles(v);
  in.k.resize(in.q.size());
  in.v.resize(in.q.size());
  // Query head h's copy of kv head h / group, written out element by element.
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t n = 0; n < tokens; ++n)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t x = 0; x < d; ++x) {
          const auto from =
              static_cast<std::size_t>(((b * tokens + n) * kv_heads + h / group) * d + x);
          in.k[static_cast<std::size_t>(in.index(b, n, h, x))] = k_in[from];
          in.v[static_cast<std::size_t>(in.index(b, n, h, x))] = v_in[from];
        }
  return in;
}

std::vector<double> sum_over_query_heads(const std::vector<double>& grad,
                                         const AttentionShape& shape, int64_t kv_heads) {
  const int64_t group = shape.heads / kv_heads, d = shape.head_dim;
  std::vector<double> out(static_cast<std::size_t>(shape.batch * shape.tokens * kv_heads * d), 0.0);
  for (int64_t b = 0; b < shape.batch; ++b)
    for (int64_t n = 0; n < shape.tokens; ++n)
      for (int64_t h = 0; h < shape.heads; ++h)
        for (int64_t x = 0; x < d; ++x) {
          out[static_cast<std::size_t>(((b * shape.tokens + n) * kv_heads + h / group) * d + x)] +=
              grad[static_cast<std::size_t>(((b * shape.tokens + n) * shape.heads + h) * d + x)];
        }
  return out;
}

std::vector<double> to_doubles(const Tensor& t) {
  if (t.dtype() == DType::float64) {
    auto s = t.span<double>();
    return {s.begin(), s.end()};
  }
  auto s = t.span<float>();
  return {s.begin(), s.end()};
}

int64_t reference_head_offset(HeadOffsets scheme, int64_t head, int64_t heads, int64_t rate) {
  switch (scheme) {
    case HeadOffsets::interleaved:
      return head % rate;
    case HeadOffsets::grouped: {
      // ceil(H / r) heads share each offset; computed in floating point on purpose,
      // a different route to the same integer than kernels/ takes.
      const auto heads_per_offset =
          static_cast<int64_t>(std::ceil(static_cast<double>(heads) / static_cast<double>(rate)));
      return static_cast<int64_t>(
          std::floor(static_cast<double>(head) / static_cast<double>(heads_per_offset)));
    }
  }
  fail("reference: unknown head-offset scheme");
}

bool reference_allowed(const DilationPattern& pattern, HeadOffsets scheme, bool causal,
                       int64_t head, int64_t heads, int64_t i, int64_t j) {
  const int64_t w = pattern.segment_length;
  const int64_t r = pattern.dilation_rate;
  const int64_t off = reference_head_offset(scheme, head, heads, r);
  const bool same_segment = i / w == j / w;  // i, j >= 0: integer division is floor
  const bool query_on_offset = (i % w) % r == off;
  const bool key_on_offset = (j % w) % r == off;
  const bool in_past = !causal || j <= i;
  return same_segment && query_on_offset && key_on_offset && in_past;
}

double reference_scale(const DilatedAttentionConfig& config, int64_t head_dim) {
  return config.scale ? *config.scale : 1.0 / std::sqrt(static_cast<double>(head_dim));
}

bool reference_keeps(const DenseExtras& extras, std::size_t pattern, int64_t head, int64_t batch,
                     int64_t i, int64_t j) {
  if (extras.dropout_p == 0.0f) return true;
  const uint64_t key = dropout_task_key(
      dropout_stream_key(extras.dropout_seed, extras.dropout_step, extras.dropout_layer,
                         static_cast<uint32_t>(head), static_cast<uint32_t>(pattern)),
      batch);
  // u = (first word >> 8) 2^-24, written as in the definition.
  const double u = static_cast<double>(dropout_bits(key, i, j) >> 8) * 0x1p-24;
  return u >= static_cast<double>(extras.dropout_p);
}

DenseOutputs dense_forward(const DilatedAttentionConfig& config, const DenseInputs& in,
                           const DenseExtras& extras) {
  const AttentionShape& s = in.shape;
  const double scale = reference_scale(config, s.head_dim);
  const std::size_t patterns = config.patterns.size();
  DenseOutputs out;
  out.o.assign(static_cast<std::size_t>(s.elements()), 0.0);
  out.lse.assign(static_cast<std::size_t>(s.rows()), kNegInf);
  for (int64_t b = 0; b < s.batch; ++b) {
    for (int64_t h = 0; h < s.heads; ++h) {
      for (int64_t i = 0; i < s.tokens; ++i) {
        const std::vector<Entry> entries = row_entries(config, in, extras, scale, b, h, i);
        if (entries.empty()) continue;  // o = 0, lse = -inf
        double m = kNegInf;
        for (const Entry& e : entries) m = std::max(m, e.score);
        // Per-pattern numerators and denominators, then the mixture.
        std::vector<double> s_p(patterns, 0.0);
        std::vector<std::vector<double>> n_p(patterns, std::vector<double>(s.head_dim, 0.0));
        for (const Entry& e : entries) {
          const double weight = std::exp(e.score - m);
          s_p[e.pattern] += weight;
          const double* vj = &in.v[static_cast<std::size_t>(in.index(b, e.key, h, 0))];
          for (int64_t x = 0; x < s.head_dim; ++x) n_p[e.pattern][x] += weight * e.z * vj[x];
        }
        double denominator = 0;
        for (double x : s_p) denominator += x;
        double* oi = &out.o[static_cast<std::size_t>(in.index(b, i, h, 0))];
        for (std::size_t p = 0; p < patterns; ++p) {
          for (int64_t x = 0; x < s.head_dim; ++x) oi[x] += n_p[p][x] / denominator;
        }
        out.lse[static_cast<std::size_t>((b * s.tokens + i) * s.heads + h)] =
            m + std::log(denominator);
      }
    }
  }
  return out;
}

// With P_e = exp(S_e - lse_i) over row i's entries, o_i = sum_e P_e Z_e v_{key(e)}, so
//   dv_j += P_e Z_e do_i,   dP_e = do_i . v_j,   delta_i = sum_e P_e Z_e dP_e,
//   dS_e = P_e (Z_e dP_e - delta_i),   dq_i += scale dS_e k_j,   dk_j += scale dS_e q_i,
//   dbias[(i - j) / r] += dS_e.
// delta_i is summed from the entries here, not taken as do_i . o_i (equal in exact
// arithmetic), so the reference never needs its own forward output.
DenseGradients dense_backward(const DilatedAttentionConfig& config, const DenseInputs& in,
                              const std::vector<double>& dout, const DenseExtras& extras) {
  const AttentionShape& s = in.shape;
  LONGNET_CHECK(static_cast<int64_t>(dout.size()) == s.elements(),
                "reference: dout has {} elements, expected {}", dout.size(), s.elements());
  const double scale = reference_scale(config, s.head_dim);
  const int64_t d = s.head_dim;
  DenseGradients g;
  g.dq.assign(static_cast<std::size_t>(s.elements()), 0.0);
  g.dk = g.dq;
  g.dv = g.dq;
  g.dbias = extras.bias;
  for (auto& heads : g.dbias) {
    for (auto& values : heads) std::fill(values.begin(), values.end(), 0.0);
  }
  for (int64_t b = 0; b < s.batch; ++b) {
    for (int64_t h = 0; h < s.heads; ++h) {
      for (int64_t i = 0; i < s.tokens; ++i) {
        const std::vector<Entry> entries = row_entries(config, in, extras, scale, b, h, i);
        if (entries.empty()) continue;  // the row is constant 0: no gradient flows
        const double lse = row_lse(entries, config.patterns.size());
        const auto at_i = static_cast<std::size_t>(in.index(b, i, h, 0));
        const double* qi = &in.q[at_i];
        const double* doi = &dout[at_i];
        std::vector<double> p(entries.size()), dp(entries.size());
        double delta = 0;
        for (std::size_t e = 0; e < entries.size(); ++e) {
          const auto at_j = static_cast<std::size_t>(in.index(b, entries[e].key, h, 0));
          p[e] = std::exp(entries[e].score - lse);
          dp[e] = dot(doi, &in.v[at_j], d);
          delta += p[e] * entries[e].z * dp[e];
        }
        for (std::size_t e = 0; e < entries.size(); ++e) {
          const auto at_j = static_cast<std::size_t>(in.index(b, entries[e].key, h, 0));
          const double ds = p[e] * (entries[e].z * dp[e] - delta);
          if (!g.dbias.empty()) {
            const std::size_t pe = entries[e].pattern;
            g.dbias[pe][static_cast<std::size_t>(h)]
                   [bias_slot(g.dbias, config, pe, h, i, entries[e].key)] += ds;
          }
          for (int64_t x = 0; x < d; ++x) {
            g.dv[at_j + x] += p[e] * entries[e].z * doi[x];
            g.dq[at_i + x] += scale * ds * in.k[at_j + x];
            g.dk[at_j + x] += scale * ds * qi[x];
          }
        }
      }
    }
  }
  return g;
}

std::string case_name(const AttentionShape& shape, const DilatedAttentionConfig& config) {
  std::string name = shape.batch == 1 ? "" : fmt::format("B{}_", shape.batch);
  name += fmt::format("N{}_H{}_D{}_", shape.tokens, shape.heads, shape.head_dim);
  if (shape.kv_heads > 0 && shape.kv_heads != shape.heads)
    name += fmt::format("kv{}_", shape.kv_heads);
  name += "w";
  for (std::size_t p = 0; p < config.patterns.size(); ++p) {
    name += fmt::format("{}{}", p == 0 ? "" : "x", config.patterns[p].segment_length);
  }
  name += "_r";
  for (std::size_t p = 0; p < config.patterns.size(); ++p) {
    name += fmt::format("{}{}", p == 0 ? "" : "x", config.patterns[p].dilation_rate);
  }
  name += config.causal ? "_causal" : "_noncausal";
  name += config.head_offsets == HeadOffsets::grouped ? "_grouped" : "_interleaved";
  if (config.scale) {
    std::string scale = fmt::format("{}", *config.scale);
    std::replace(scale.begin(), scale.end(), '.', 'p');
    std::replace(scale.begin(), scale.end(), '-', 'm');
    name += "_scale" + scale;
  }
  return name;
}

}  // namespace longnet::reference
