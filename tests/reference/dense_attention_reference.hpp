// A deliberately naive, double-precision dense reference of dilated attention.
//
// For tests only; production code never links it. It is written straight from the
// definition, independently of kernels/: its own head-offset function, its own mask
// predicate evaluated for every (query, key, pattern) triple, and one softmax over the
// multiset union of every pattern's allowed keys. Only the configuration *types*
// (DilatedAttentionConfig, DilationPattern, HeadOffsets, AttentionShape) are shared, and
// for dropout the generator of kernels/philox.hpp, which is the mask's definition.
//
// Definition. For pattern (w, r) and head h of H, query i may attend key j when
//   i / w == j / w                                   (same segment, integer division)
//   (i mod w) mod r == off(h) == (j mod w) mod r
//   j <= i                                           (when causal)
// with off(h) = h mod r (interleaved) or h / ceil(H / r) (grouped). With
// S_ij = scale q_i . k_j, m_i the max over every allowed (pattern, key) pair,
//   s_p(i) = sum_{j allowed by p} exp(S_ij - m_i),  n_p(i) = sum_{same} exp(S_ij - m_i) v_j,
//   o_i = sum_p n_p(i) / sum_p s_p(i),  lse_i = m_i + log sum_p s_p(i);
// a row no pattern selects has o_i = 0 and lse_i = -inf. The backward is the exact
// gradient of this map.
//
// Extras (DenseExtras): a relative position bias, a function of the real token distance
// i - j through per-(pattern, head) vectors, S_ij = scale q_i . k_j + bias_ph[(i - j) / r];
// and attention dropout: each allowed (pattern, key) entry's weight exp(S_e - lse_i) is
// multiplied by Z_e = keep / (1 - p) before it meets v_j, where keep is drawn by
// kernels/philox.hpp for the global tokens (i, j) under the key of (pattern, head, batch)
// (the generator is the specification; everything else here is dense and naive). lse is
// that of the undropped scores.
//
// Cost: O(B H N^2 P) predicate evaluations plus O(D) per allowed pair; fine for the
// test sizes (N up to a few thousand, few heads).
#pragma once

#include "kernels/dilated_attention_config.hpp"
#include "runtime/tensor.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace longnet::reference {

// q, k, v (or any [B, N, H, D] quantity) in double, row-major, plus the shape.
struct DenseInputs {
  AttentionShape shape;
  std::vector<double> q, k, v;

  // Copies three float32 (or float64) [B, N, H, D] tensors of one shape.
  static DenseInputs from_tensors(const Tensor& q, const Tensor& k, const Tensor& v);
  // Grouped-query attention, by its definition: k, v [B, N, Hkv, D] with Hkv dividing H
  // are copied out to H heads, query head h getting kv head h / (H / Hkv); the result is
  // multi-head attention on the copies (shape.kv_heads stays 0).
  static DenseInputs from_grouped_tensors(const Tensor& q, const Tensor& k, const Tensor& v);
  int64_t index(int64_t b, int64_t n, int64_t h, int64_t d) const {
    return ((b * shape.tokens + n) * shape.heads + h) * shape.head_dim + d;
  }
};

struct DenseOutputs {
  std::vector<double> o;    // [B, N, H, D]
  std::vector<double> lse;  // [B, N, H], natural log; -inf for rows no pattern selects
};

// [pattern][head] -> 2L - 1 values, L = ceil(w / r) of that pattern; element L - 1 + d is
// the value at dilated distance d = (i - j) / r.
using BiasTable = std::vector<std::vector<std::vector<double>>>;

struct DenseExtras {
  BiasTable bias;       // empty: no bias
  float dropout_p = 0;  // 0: no dropout
  uint64_t dropout_seed = 0;
  uint64_t dropout_step = 0;
  uint32_t dropout_layer = 0;
};

struct DenseGradients {
  std::vector<double> dq, dk, dv;  // [B, N, H, D]
  BiasTable dbias;                 // like DenseExtras::bias, when it was given
};

// off(h) written from the definition above (not kernels/'s head_offset()).
int64_t reference_head_offset(HeadOffsets scheme, int64_t head, int64_t heads, int64_t rate);

// Whether pattern (w, r) lets query i attend key j in head h of `heads`.
bool reference_allowed(const DilationPattern& pattern, HeadOffsets scheme, bool causal,
                       int64_t head, int64_t heads, int64_t i, int64_t j);

// The softmax scale: config.scale, else 1 / sqrt(D).
double reference_scale(const DilatedAttentionConfig& config, int64_t head_dim);

DenseOutputs dense_forward(const DilatedAttentionConfig& config, const DenseInputs& in,
                           const DenseExtras& extras = {});

// The exact gradient of sum(dout * o) with respect to q, k, v (and the bias); recomputes
// the forward itself, so it depends on nothing a kernel produced. dout: [B, N, H, D].
DenseGradients dense_backward(const DilatedAttentionConfig& config, const DenseInputs& in,
                              const std::vector<double>& dout, const DenseExtras& extras = {});

// Whether the reference keeps the (pattern, head, batch) pair of tokens (i, j) under
// extras' dropout (always true when dropout_p is 0).
bool reference_keeps(const DenseExtras& extras, std::size_t pattern, int64_t head, int64_t batch,
                     int64_t i, int64_t j);

// The gradient of grouped k or v: a [B, N, H, D] gradient of the copies
// (from_grouped_tensors) summed over each kv head's query heads, [B, N, kv_heads, D].
std::vector<double> sum_over_query_heads(const std::vector<double>& grad,
                                         const AttentionShape& shape, int64_t kv_heads);

// Converts a float32 or float64 tensor to doubles.
std::vector<double> to_doubles(const Tensor& t);

// A name for a parameterised case that is also a valid gtest name and filter key:
// "B2_N1000_H3_D64_w256x32_r4x1_causal_grouped" (B omitted when 1; "_scale0p3" appended
// when the scale is explicit, '.' written as 'p').
std::string case_name(const AttentionShape& shape, const DilatedAttentionConfig& config);

}  // namespace longnet::reference
