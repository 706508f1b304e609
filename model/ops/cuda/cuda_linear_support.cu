// The linear layer's kernels around its cuBLAS GEMMs: the bias broadcast before the
// forward GEMM (which then adds with beta = 1) and db += column sums of dy.
#include "model/ops/cuda/column_sums.cuh"
#include "model/ops/cuda/ops_launch.hpp"
#include "runtime/cublas_check.hpp"
#include "runtime/cuda_check.hpp"

namespace longnet::cuda_ops {
namespace {

// ---- CUDA kernels ------------------------------------------------------------------------
template <typename T>
__global__ void broadcast_rows_kernel(const T* row, T* y, int64_t rows, int64_t cols) {
  const int64_t n = rows * cols;
  for (int64_t i = global_thread(); i < n; i += grid_threads()) y[i] = row[i % cols];
}

}  // namespace

// ---- kernel launchers --------------------------------------------------------------------
int64_t column_partial_doubles(int64_t rows, int64_t cols) { return row_chunks(rows) * cols; }

template <typename T>
void broadcast_rows(const T* row, T* y, int64_t rows, int64_t cols, cudaStream_t stream) {
  broadcast_rows_kernel<T><<<blocks_for(rows * cols), kThreads, 0, stream>>>(row, y, rows, cols);
  LONGNET_CUDA_CHECK_LAUNCH("broadcast_rows_kernel");
}

template <typename T>
void add_column_sums(const T* a, int64_t rows, int64_t cols, T* out, double* scratch,
                     cudaStream_t stream) {
  column_partials_kernel<T, false><<<column_partials_grid(rows, cols), kThreads, 0, stream>>>(
      a, nullptr, nullptr, nullptr, rows, cols, rows_per_chunk(rows), scratch, nullptr);
  LONGNET_CUDA_CHECK_LAUNCH("column_partials_kernel");
  add_partials_kernel<T>
      <<<blocks_for(cols), kThreads, 0, stream>>>(scratch, row_chunks(rows), cols, out);
  LONGNET_CUDA_CHECK_LAUNCH("add_partials_kernel");
}

#define LONGNET_INSTANTIATE(T)                                                   \
  template void broadcast_rows<T>(const T*, T*, int64_t, int64_t, cudaStream_t); \
  template void add_column_sums<T>(const T*, int64_t, int64_t, T*, double*, cudaStream_t);
LONGNET_INSTANTIATE(float)
LONGNET_INSTANTIATE(double)
#undef LONGNET_INSTANTIATE

}  // namespace longnet::cuda_ops
