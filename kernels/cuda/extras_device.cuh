// Device helpers of the kExtras = true kernels: relative position bias, attention dropout
// and the bias gradient (see kernels/attention_tasks.hpp for what a task carries, and
// kernels/cpu/dilated_attention_extras.inc for the CPU twin these must agree with).
//
// Bias. The score of query i and key j (dilated indices of the segment) gains
// task.bias[i - j]. Only real pairs (i a row of the task, j < keys.count) may read it: the
// padding of a tile lies outside the vector's valid range [-(L-1), L-1].
// Dropout. The pair is kept iff dropout_keep(task.dropout_key, m, n, threshold) with the
// GLOBAL tokens m = token_origin + i * token_stride, n = token_origin + j * token_stride,
// so the forward, the backward kernels and the CPU draw the same mask bit for bit.
// A thread's fragment of a score tile holds up to 64 elements; their keep bits are
// computed in a rolled loop into one 64-bit word (one copy of the ten Philox rounds in
// the code, not one per unrolled element), then read with compile-time shifts.
#pragma once

#include "kernels/attention_tasks.hpp"
#include "kernels/philox.hpp"

#include <cstdint>

namespace longnet::cuda_kernels {

// Whether the pair (query dilated index i, key dilated index j) of `task` survives dropout.
__device__ __forceinline__ bool pair_kept(const SegmentTask& task, uint32_t threshold, int64_t i,
                                          int64_t j) {
  return dropout_keep(task.dropout_key, task.token_origin + i * task.token_stride,
                      task.token_origin + j * task.token_stride, threshold);
}

// Bit x (x < kCount <= 64) set iff the pair index(x) = {i, j} is kept.
struct DilatedPair {
  int64_t query;
  int64_t key;
};
template <int kCount, typename Index>
__device__ __forceinline__ uint64_t dropout_keep_bits(const SegmentTask& task, uint32_t threshold,
                                                      Index index) {
  static_assert(kCount >= 1 && kCount <= 64, "one 64-bit word of keep bits");
  uint64_t bits = 0;
#pragma unroll 1
  for (int x = 0; x < kCount; ++x) {
    const DilatedPair pair = index(x);
    if (pair_kept(task, threshold, pair.query, pair.key)) bits |= uint64_t{1} << x;
  }
  return bits;
}

// The dropout factor Z of element x: dropout_scale if kept, else 0.
__device__ __forceinline__ float keep_factor(uint64_t bits, int x, float scale) {
  return ((bits >> x) & 1u) != 0 ? scale : 0.0f;
}

}  // namespace longnet::cuda_kernels
