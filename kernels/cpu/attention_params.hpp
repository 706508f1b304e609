// The parameters the per-ISA CPU tile code receives, and the row sets it works on.
//
// One params struct per kernel family, passed by value: raw pointers into
// [B, N, H, D] tensors, their strides in elements, and the scalars. The ISA copies
// (dilated_attention_tiles.inc) see nothing else of the runtime.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace longnet::cpu {

struct AttentionParams {
  // Inputs, [B, N, H, D].
  const float* q = nullptr;
  const float* k = nullptr;
  const float* v = nullptr;
  // Forward outputs. o and lse ([B, N, H], natural log) hold the running mixture of
  // the patterns processed so far: o = 0, lse = -inf before the first pattern.
  float* o = nullptr;
  float* lse = nullptr;
  // Backward inputs: the forward's lse, dout [B, N, H, D], delta = rowsum(dout * o) [B, N, H].
  const float* saved_lse = nullptr;
  const float* dout = nullptr;
  const float* delta = nullptr;
  // Backward outputs, [B, N, H, D], accumulated over patterns (zero before the first).
  float* dq = nullptr;
  float* dk = nullptr;
  float* dv = nullptr;

  int64_t head_dim = 0;          // D
  int64_t token_stride = 0;      // elements between consecutive tokens of q, k, v, o: H * D
  int64_t lse_token_stride = 0;  // elements between consecutive tokens of lse, delta: H
  float scale = 0;           // softmax scale applied to q . k
  bool causal = false;
};

// The rows one pattern selects in one (batch, head, segment): the tokens
// segment_start + off(h) + t * r for t in [0, count). Row t of q, k, v, o sits at
// element base + t * r * token_stride, and its lse at lse_base + t * r * lse_token_stride.
struct DilatedRows {
  int64_t base = 0;      // element offset of row 0 in [B, N, H, D] arrays
  int64_t lse_base = 0;  // element offset of row 0 in [B, N, H] arrays
  int64_t count = 0;     // M = ceil((segment length - off(h)) / r), or 0
};

// One pattern's work: every row set it selects, and the token stride r between rows.
struct PatternRows {
  int64_t dilation_rate = 1;
  std::vector<DilatedRows> sets;
};

}  // namespace longnet::cpu
