// What one dilation pattern of an attention call reads and writes, when patterns do not
// all see the same q and k.
//
// xPos anchors its decay at the centre of each token's segment (model/xpos.hpp), and
// segments differ between patterns, so every pattern gets its own q and k (and the
// backward returns the gradient with respect to those). Without xPos every pattern's
// operands point at the same tensors; gradients are accumulated (+=), so aliasing them
// across patterns sums the patterns' contributions, as the plain op does.
#pragma once

#include "kernels/attention_tasks.hpp"
#include "runtime/tensor.hpp"

#include <cstdint>
#include <vector>

namespace longnet {

struct PatternOperands {
  const Tensor* q = nullptr;  // [B, T, H, D] float32, this rank's tokens
  const Tensor* k = nullptr;
  Tensor* dq = nullptr;  // backward: += dL/dq of this pattern's q (zeroed by the caller)
  Tensor* dk = nullptr;  // backward: += dL/dk of this pattern's k
  // Relative position bias by dilated distance (kernels/attention_tasks.hpp): float32
  // [H, 2L - 1], L = relative_bias_rows(pattern), distance d at column L - 1 + d; null:
  // none. dbias (same shape) gets += dL/dbias in the backward.
  const Tensor* bias = nullptr;
  Tensor* dbias = nullptr;
  // Attention dropout: probability (0: off) and one Philox stream key per head
  // (dropout_stream_key of kernels/philox.hpp); the same in forward and backward.
  float dropout_p = 0;
  std::vector<uint64_t> dropout_keys;
};

// The kernels' per-task extras (kernels/attention_tasks.hpp) of one pattern's operands:
// per-head pointers at distance 0 of the bias (and, for a backward, dbias) rows, and the
// dropout keys. Checks the bias shape against the pattern.
TaskExtras task_extras(const PatternOperands& operands, const DilationPattern& pattern,
                       int64_t heads, bool backward);

}  // namespace longnet
