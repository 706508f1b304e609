// xPos (Sun et al. 2022, "A Length-Extrapolatable Transformer"): rotary position
// embedding with an exponential decay, applied to q and k before dilated attention.
//
// Definition. Head dim D (even), pairs i in [0, D/2) of elements (2i, 2i+1):
//   theta_i = 10000^(-2i/D)                           (rotation frequency)
//   zeta_i  = (2i + 0.4 D) / (1.4 D)                   (decay base, in [0.29, 1))
//   query at token m:  q'_pair = R(m theta_i) q_pair * zeta_i^( (m - a) / s)
//   key   at token n:  k'_pair = R(n theta_i) k_pair * zeta_i^(-(n - a) / s)
// with R the 2x2 rotation, s the scale base (512) and a an anchor. Then
//   q' . k' = sum_i zeta_i^((m - n) / s) (R((m - n) theta_i) q_pair) . k_pair,
// a function of the distance m - n alone, for ANY anchor a shared by the pair.
//
// The trap, and the anchor. With a fixed anchor the factors zeta^(+-pos/s) leave float32
// once |pos - a| > ~36K tokens (ln(1/0.2857) * 36K / 512 > 88.7 = ln(FLT_MAX)): the
// official code centres the whole sequence and overflows past ~72K tokens. Here a is
// the centre of the token's segment of the pattern being computed, a = floor(m / w) w +
// w / 2, which every query and key that meet in that pattern share, so |pos - a| <= w/2:
// finite for segments up to 65536 (|exponent| <= 80.2) at any absolute position. The
// price is one q and k per pattern (a different anchor per segment length).
//
// Precision. Angles and decays are evaluated in double from the exact integer position
// (m theta_i is reduced by the double-precision sin/cos), then rounded once to the
// tensor's type: at m ~ 1e9 the rotation error is ~1e-7 rad, the float32 rounding of the
// result.
#pragma once

#include "runtime/tensor.hpp"

#include <cstdint>
#include <memory>
#include <vector>

namespace longnet {

enum class XposRole { query, key };

struct XposSpan {
  int64_t first_token = 0;     // global token of row 0 of the tensor's token axis
  int64_t segment_length = 0;  // w of the pattern: the anchor is the centre of w-blocks
  double scale_base = 512.0;
};

// The coefficients of tokens [span.first_token, + tokens) for head dim head_dim: per token
// and pair, cos and sin of the angle and the query's and key's decay factors, in double.
// They depend on positions alone, not on the data, so they are built once per token range
// (shared_xpos_table) and applied at every step (computing them took 3 libm calls per
// token and pair: 6 % of a training step of the default model).
class XposTable {
 public:
  XposTable(const XposSpan& span, int64_t tokens, int64_t head_dim);

  bool covers(const XposSpan& span, int64_t tokens, int64_t head_dim) const;
  int64_t tokens() const { return tokens_; }
  int64_t pairs() const { return pairs_; }
  // Pair i of token t at [t * pairs() + i].
  const double* cos() const { return cos_.data(); }
  const double* sin() const { return sin_.data(); }
  const double* decay(XposRole role) const {
    return (role == XposRole::query ? query_decay_ : key_decay_).data();
  }

 private:
  XposSpan span_;
  int64_t tokens_, pairs_;
  std::vector<double> cos_, sin_, query_decay_, key_decay_;
};

// The table of (span, tokens, head_dim) from a small process-wide cache (the 8 most
// recently used tables, each at most 64 MiB), shared by every layer and thread (a mutex
// guards it; tables are immutable); a larger table is built for the caller alone.
std::shared_ptr<const XposTable> shared_xpos_table(const XposSpan& span, int64_t tokens,
                                                   int64_t head_dim);

// out = xPos(in) for in [B, T, H, D] (float32 or float64, host; out the same shape and
// dtype, may not alias in), with the table of its T tokens and head dim D.
void xpos_forward(const Tensor& in, Tensor& out, XposRole role, const XposTable& table);

// The transpose of xpos_forward's linear map: dx += J^T dy (accumulated into dx).
void xpos_backward_accumulate(const Tensor& dy, Tensor& dx, XposRole role, const XposTable& table);

// The same, building the table for this call: token t of the tensor is global token
// span.first_token + t.
void xpos_forward(const Tensor& in, Tensor& out, XposRole role, const XposSpan& span);
void xpos_backward_accumulate(const Tensor& dy, Tensor& dx, XposRole role, const XposSpan& span);

}  // namespace longnet
