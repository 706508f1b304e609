#include "kernels/dilated_attention_spot_check.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

namespace longnet {
namespace {

struct RowResult {
  double lse = -std::numeric_limits<double>::infinity();
  std::vector<double> o, dq;
};

// Every key token the row may attend, once per pattern that allows it.
std::vector<int64_t> allowed_keys(const DilatedAttentionConfig& config, const AttentionShape& shape,
                                  const RowIndex& row) {
  std::vector<int64_t> keys;
  for (const auto& p : config.patterns) {
    const int64_t w = p.segment_length, r = p.dilation_rate;
    const int64_t off = head_offset(config.head_offsets, row.head, shape.heads, r);
    if ((row.token % w) % r != off) continue;
    const int64_t start = row.token / w * w;
    const int64_t end = config.causal ? row.token + 1 : std::min(start + w, shape.tokens);
    for (int64_t j = start + off; j < end; j += r) keys.push_back(j);
  }
  return keys;
}

RowResult evaluate_row(const DilatedAttentionConfig& config, const AttentionShape& shape,
                       const float* q, const float* k, const float* v, const float* dout,
                       const RowIndex& row) {
  const int64_t d = shape.head_dim;
  auto at = [&](int64_t token) {
    return ((row.batch * shape.tokens + token) * shape.heads + row.head) * d;
  };
  const double scale = softmax_scale(config, d);
  const std::vector<int64_t> keys = allowed_keys(config, shape, row);
  RowResult result;
  result.o.assign(d, 0.0);
  result.dq.assign(d, 0.0);
  if (keys.empty()) return result;

  const float* qi = q + at(row.token);
  std::vector<double> s(keys.size());
  for (std::size_t n = 0; n < keys.size(); ++n) {
    const float* kj = k + at(keys[n]);
    double dot = 0;
    for (int64_t e = 0; e < d; ++e) dot += static_cast<double>(qi[e]) * kj[e];
    s[n] = scale * dot;
  }
  const double m = *std::max_element(s.begin(), s.end());
  double sum = 0;
  for (double& x : s) sum += (x = std::exp(x - m));
  for (std::size_t n = 0; n < keys.size(); ++n) {
    const float* vj = v + at(keys[n]);
    for (int64_t e = 0; e < d; ++e) result.o[e] += s[n] / sum * vj[e];
  }
  result.lse = m + std::log(sum);
  if (dout == nullptr) return result;

  // dq_i = scale * sum_j P_ij (do_i . v_j - do_i . o_i) k_j
  const float* doi = dout + at(row.token);
  double delta = 0;
  for (int64_t e = 0; e < d; ++e) delta += doi[e] * result.o[e];
  for (std::size_t n = 0; n < keys.size(); ++n) {
    const float* vj = v + at(keys[n]);
    const float* kj = k + at(keys[n]);
    double dp = 0;
    for (int64_t e = 0; e < d; ++e) dp += static_cast<double>(doi[e]) * vj[e];
    const double ds = s[n] / sum * (dp - delta);
    for (int64_t e = 0; e < d; ++e) result.dq[e] += scale * ds * kj[e];
  }
  return result;
}

AttentionShape shape_of(const Tensor& q) { return {q.dim(0), q.dim(1), q.dim(2), q.dim(3)}; }

int64_t row_offset(const AttentionShape& shape, const RowIndex& row) {
  return ((row.batch * shape.tokens + row.token) * shape.heads + row.head) * shape.head_dim;
}

}  // namespace

std::vector<RowIndex> sample_rows(const AttentionShape& shape, int64_t count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<RowIndex> rows{{0, 0, 0}, {shape.batch - 1, shape.tokens - 1, shape.heads - 1}};
  while (static_cast<int64_t>(rows.size()) < count) {
    rows.push_back({static_cast<int64_t>(rng() % shape.batch),
                    static_cast<int64_t>(rng() % shape.tokens),
                    static_cast<int64_t>(rng() % shape.heads)});
  }
  rows.resize(std::min<std::size_t>(rows.size(), static_cast<std::size_t>(count)));
  return rows;
}

SpotCheckError spot_check_forward(const DilatedAttentionConfig& config, const Tensor& q,
                                  const Tensor& k, const Tensor& v, const Tensor& o,
                                  const Tensor& lse, const std::vector<RowIndex>& rows) {
  const AttentionShape shape = shape_of(q);
  SpotCheckError error;
  double err2 = 0, ref2 = 0;
  for (const RowIndex& row : rows) {
    const RowResult ref = evaluate_row(config, shape, q.data<float>(), k.data<float>(),
                                       v.data<float>(), nullptr, row);
    const float* got = o.data<float>() + row_offset(shape, row);
    for (int64_t e = 0; e < shape.head_dim; ++e) {
      err2 += (got[e] - ref.o[e]) * (got[e] - ref.o[e]);
      ref2 += ref.o[e] * ref.o[e];
    }
    const double got_lse = lse.data<float>()[row_offset(shape, row) / shape.head_dim];
    if (std::isinf(ref.lse) != std::isinf(got_lse)) {
      ++error.coverage_mismatches;
    } else if (!std::isinf(ref.lse)) {
      error.lse = std::max(error.lse, std::abs(got_lse - ref.lse));
    }
    ++error.rows;
  }
  error.o = ref2 > 0 ? std::sqrt(err2 / ref2) : std::sqrt(err2);
  return error;
}

SpotCheckError spot_check_backward(const DilatedAttentionConfig& config, const Tensor& q,
                                   const Tensor& k, const Tensor& v, const Tensor& dout,
                                   const Tensor& dq, const std::vector<RowIndex>& rows) {
  const AttentionShape shape = shape_of(q);
  SpotCheckError error;
  double err2 = 0, ref2 = 0;
  for (const RowIndex& row : rows) {
    const RowResult ref = evaluate_row(config, shape, q.data<float>(), k.data<float>(),
                                       v.data<float>(), dout.data<float>(), row);
    const float* got = dq.data<float>() + row_offset(shape, row);
    for (int64_t e = 0; e < shape.head_dim; ++e) {
      err2 += (got[e] - ref.dq[e]) * (got[e] - ref.dq[e]);
      ref2 += ref.dq[e] * ref.dq[e];
    }
    ++error.rows;
  }
  error.dq = ref2 > 0 ? std::sqrt(err2 / ref2) : std::sqrt(err2);
  return error;
}

}  // namespace longnet
