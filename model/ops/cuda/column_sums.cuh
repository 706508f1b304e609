// Deterministic column sums over rows, for db (linear) and dgamma, dbeta (layer norm).
//
// out[c] += sum over r of f(r, c) in two kernels: column_partials_kernel writes one double
// partial per (chunk of rows, column), grid (column blocks) x (chunks); add_partials_kernel
// adds each column's partials in chunk order. Threads of a warp take adjacent columns, so
// every row is read coalesced; no atomics, so two runs give the same bits. The chunking is
// ops_common.cuh's row_chunks (a function of the row count only).
#pragma once

#include "model/ops/cuda/ops_common.cuh"

namespace longnet::cuda_ops {

// kLayerNorm false: part_dy = sums of dy.  true: also part_dyx = sums of dy * xhat with
// xhat = (x - mean[r]) * rstd[r] (then x, mean, rstd must be valid).
template <typename T, bool kLayerNorm>
__global__ void column_partials_kernel(const T* dy, const T* x, const T* mean, const T* rstd,
                                       int64_t rows, int64_t cols, int64_t chunk_rows,
                                       double* part_dy, double* part_dyx) {
  const int64_t chunk = blockIdx.y;
  const int64_t r_begin = chunk * chunk_rows;
  const int64_t r_end = r_begin + chunk_rows < rows ? r_begin + chunk_rows : rows;
  for (int64_t c = global_thread(); c < cols; c += grid_threads()) {
    double s = 0.0, sx = 0.0;
    for (int64_t r = r_begin; r < r_end; ++r) {
      const double d = static_cast<double>(dy[r * cols + c]);
      s += d;
      if constexpr (kLayerNorm) {
        sx += d * (static_cast<double>(x[r * cols + c]) - static_cast<double>(mean[r])) *
              static_cast<double>(rstd[r]);
      }
    }
    part_dy[chunk * cols + c] = s;
    if constexpr (kLayerNorm) part_dyx[chunk * cols + c] = sx;
  }
}

template <typename T>
__global__ void add_partials_kernel(const double* part, int64_t chunks, int64_t cols, T* out) {
  for (int64_t c = global_thread(); c < cols; c += grid_threads()) {
    double s = 0.0;
    for (int64_t k = 0; k < chunks; ++k) s += part[k * cols + c];
    out[c] = static_cast<T>(static_cast<double>(out[c]) + s);
  }
}

// The grid of column_partials_kernel: column blocks along x, chunks along y (<= 1024).
inline dim3 column_partials_grid(int64_t rows, int64_t cols) {
  return dim3(static_cast<unsigned>(blocks_for(cols)), static_cast<unsigned>(row_chunks(rows)));
}

}  // namespace longnet::cuda_ops
