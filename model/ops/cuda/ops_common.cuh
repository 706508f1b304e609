// Shared device helpers of the CUDA ops: grid sizing for grid-stride loops, warp and block
// reductions in double, and the row-chunking of column sums.
//
// Grids: grid-stride loops over int64 indices (tensors may exceed 2^31 elements) with at
// most kMaxBlocks blocks, enough to fill any current GPU several times over.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

namespace longnet::cuda_ops {

constexpr int kThreads = 256;  // threads per block, a multiple of the warp size
constexpr int kWarp = 32;
constexpr int64_t kMaxBlocks = 4096;

// Column sums: rows are split into at most kMaxRowChunks chunks of at least kRowsPerChunk
// rows; the split depends only on the row count, so the summation order is fixed.
constexpr int64_t kRowsPerChunk = 256;
constexpr int64_t kMaxRowChunks = 1024;

inline int blocks_for(int64_t work_items, int64_t per_block = kThreads) {
  return static_cast<int>(
      std::clamp<int64_t>((work_items + per_block - 1) / per_block, 1, kMaxBlocks));
}

inline int64_t row_chunks(int64_t rows) {
  return std::clamp<int64_t>((rows + kRowsPerChunk - 1) / kRowsPerChunk, 1, kMaxRowChunks);
}
inline int64_t rows_per_chunk(int64_t rows) {
  const int64_t chunks = row_chunks(rows);
  return (rows + chunks - 1) / chunks;
}

__device__ inline int64_t global_thread() {
  return blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
}
__device__ inline int64_t grid_threads() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }

__device__ inline double warp_sum(double x) {
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset /= 2)
    x += __shfl_xor_sync(0xffffffffu, x, offset);
  return x;
}
__device__ inline double warp_max(double x) {
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    x = fmax(x, __shfl_xor_sync(0xffffffffu, x, offset));
  }
  return x;
}

// The sum (or max) of x over the block, returned to every thread. The warps' results pass
// through `shared` (kThreads / kWarp doubles); the order of the additions is fixed by the
// thread layout, so the result is deterministic.
template <bool kMax>
__device__ double block_reduce(double x, double* shared) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int warps = blockDim.x / kWarp;
  x = kMax ? warp_max(x) : warp_sum(x);
  __syncthreads();  // `shared` may still be read by a previous reduction
  if (lane == 0) shared[warp] = x;
  __syncthreads();
  x = lane < warps ? shared[lane] : (kMax ? -INFINITY : 0.0);
  return kMax ? warp_max(x) : warp_sum(x);
}

}  // namespace longnet::cuda_ops
