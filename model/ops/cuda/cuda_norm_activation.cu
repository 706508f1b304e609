// Layer norm and GELU on the GPU; the formulas are those of model/ops/cpu_norm_activation.cpp.
//
// Layer norm: one warp per row; lanes stride over the row and reduce by butterfly in double,
// two passes (mean, then the centred variance) as on the CPU. The backward's dx is also one
// warp per row; dgamma and dbeta are column sums (column_sums.cuh). GELU is elementwise in T.
#include "model/ops/cuda/column_sums.cuh"
#include "model/ops/cuda/ops_launch.hpp"
#include "runtime/cublas_check.hpp"
#include "runtime/cuda_check.hpp"

namespace longnet::cuda_ops {
namespace {

constexpr double kInvSqrt2 = 0.70710678118654752440;    // 1 / sqrt(2)
constexpr double kInvSqrt2Pi = 0.39894228040143267794;  // 1 / sqrt(2 pi)

__device__ inline float erf_t(float x) { return erff(x); }
__device__ inline double erf_t(double x) { return erf(x); }
__device__ inline float exp_t(float x) { return expf(x); }
__device__ inline double exp_t(double x) { return exp(x); }

// ---- CUDA kernels ------------------------------------------------------------------------
template <typename T>
__global__ void layer_norm_forward_kernel(const T* x, const T* gamma, const T* beta, double eps,
                                          T* y, T* mean, T* rstd, int64_t rows, int64_t cols) {
  const int lane = threadIdx.x % kWarp;
  const double inv_cols = 1.0 / static_cast<double>(cols);
  // Every lane of a warp has the same row, so the shuffles inside are convergent.
  for (int64_t r = global_thread() / kWarp; r < rows; r += grid_threads() / kWarp) {
    const T* xr = x + r * cols;
    double s = 0.0;
    for (int64_t j = lane; j < cols; j += kWarp) s += static_cast<double>(xr[j]);
    const double mu = warp_sum(s) * inv_cols;
    double q = 0.0;
    for (int64_t j = lane; j < cols; j += kWarp) {
      const double d = static_cast<double>(xr[j]) - mu;
      q += d * d;
    }
    const double rs = 1.0 / sqrt(warp_sum(q) * inv_cols + eps);
    T* yr = y + r * cols;
    for (int64_t j = lane; j < cols; j += kWarp) {
      yr[j] =
          static_cast<T>((static_cast<double>(xr[j]) - mu) * rs * static_cast<double>(gamma[j]) +
                         static_cast<double>(beta[j]));
    }
    if (lane == 0) {
      mean[r] = static_cast<T>(mu);
      rstd[r] = static_cast<T>(rs);
    }
  }
}

template <typename T>
__global__ void layer_norm_dx_kernel(const T* x, const T* gamma, const T* mean, const T* rstd,
                                     const T* dy, T* dx, int64_t rows, int64_t cols) {
  const int lane = threadIdx.x % kWarp;
  const double inv_cols = 1.0 / static_cast<double>(cols);
  for (int64_t r = global_thread() / kWarp; r < rows; r += grid_threads() / kWarp) {
    const T* xr = x + r * cols;
    const T* dyr = dy + r * cols;
    const double mu = static_cast<double>(mean[r]), rs = static_cast<double>(rstd[r]);
    double g_sum = 0.0, gx_sum = 0.0;
    for (int64_t j = lane; j < cols; j += kWarp) {
      const double g = static_cast<double>(dyr[j]) * static_cast<double>(gamma[j]);
      g_sum += g;
      gx_sum += g * (static_cast<double>(xr[j]) - mu) * rs;
    }
    const double g_mean = warp_sum(g_sum) * inv_cols, gx_mean = warp_sum(gx_sum) * inv_cols;
    T* dxr = dx + r * cols;
    for (int64_t j = lane; j < cols; j += kWarp) {
      const double g = static_cast<double>(dyr[j]) * static_cast<double>(gamma[j]);
      const double xhat = (static_cast<double>(xr[j]) - mu) * rs;
      dxr[j] = static_cast<T>(rs * (g - g_mean - xhat * gx_mean));
    }
  }
}

template <typename T>
__global__ void gelu_forward_kernel(const T* x, T* y, int64_t n) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    y[i] = T(0.5) * x[i] * (T(1) + erf_t(x[i] * static_cast<T>(kInvSqrt2)));
  }
}

template <typename T>
__global__ void gelu_backward_kernel(const T* x, const T* dy, T* dx, int64_t n) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    const T cdf = T(0.5) * (T(1) + erf_t(x[i] * static_cast<T>(kInvSqrt2)));
    const T pdf = static_cast<T>(kInvSqrt2Pi) * exp_t(T(-0.5) * x[i] * x[i]);
    dx[i] = dy[i] * (cdf + x[i] * pdf);
  }
}

}  // namespace

// ---- kernel launchers --------------------------------------------------------------------
template <typename T>
void layer_norm_forward(const T* x, const T* gamma, const T* beta, double eps, T* y, T* mean,
                        T* rstd, int64_t rows, int64_t cols, cudaStream_t stream) {
  layer_norm_forward_kernel<T><<<blocks_for(rows, kThreads / kWarp), kThreads, 0, stream>>>(
      x, gamma, beta, eps, y, mean, rstd, rows, cols);
  LONGNET_CUDA_CHECK_LAUNCH("layer_norm_forward_kernel");
}

template <typename T>
void layer_norm_backward(const T* x, const T* gamma, const T* mean, const T* rstd, const T* dy,
                         T* dx, T* dgamma, T* dbeta, int64_t rows, int64_t cols, double* scratch,
                         cudaStream_t stream) {
  layer_norm_dx_kernel<T><<<blocks_for(rows, kThreads / kWarp), kThreads, 0, stream>>>(
      x, gamma, mean, rstd, dy, dx, rows, cols);
  LONGNET_CUDA_CHECK_LAUNCH("layer_norm_dx_kernel");
  double* part_dbeta = scratch;
  double* part_dgamma = scratch + column_partial_doubles(rows, cols);
  column_partials_kernel<T, true><<<column_partials_grid(rows, cols), kThreads, 0, stream>>>(
      dy, x, mean, rstd, rows, cols, rows_per_chunk(rows), part_dbeta, part_dgamma);
  LONGNET_CUDA_CHECK_LAUNCH("column_partials_kernel");
  add_partials_kernel<T>
      <<<blocks_for(cols), kThreads, 0, stream>>>(part_dgamma, row_chunks(rows), cols, dgamma);
  LONGNET_CUDA_CHECK_LAUNCH("add_partials_kernel");
  add_partials_kernel<T>
      <<<blocks_for(cols), kThreads, 0, stream>>>(part_dbeta, row_chunks(rows), cols, dbeta);
  LONGNET_CUDA_CHECK_LAUNCH("add_partials_kernel");
}

template <typename T>
void gelu_forward(const T* x, T* y, int64_t n, cudaStream_t stream) {
  gelu_forward_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(x, y, n);
  LONGNET_CUDA_CHECK_LAUNCH("gelu_forward_kernel");
}

template <typename T>
void gelu_backward(const T* x, const T* dy, T* dx, int64_t n, cudaStream_t stream) {
  gelu_backward_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(x, dy, dx, n);
  LONGNET_CUDA_CHECK_LAUNCH("gelu_backward_kernel");
}

#define LONGNET_INSTANTIATE(T)                                                                   \
  template void layer_norm_forward<T>(const T*, const T*, const T*, double, T*, T*, T*, int64_t, \
                                      int64_t, cudaStream_t);                                    \
  template void layer_norm_backward<T>(const T*, const T*, const T*, const T*, const T*, T*, T*, \
                                       T*, int64_t, int64_t, double*, cudaStream_t);             \
  template void gelu_forward<T>(const T*, T*, int64_t, cudaStream_t);                            \
  template void gelu_backward<T>(const T*, const T*, T*, int64_t, cudaStream_t);
LONGNET_INSTANTIATE(float)
LONGNET_INSTANTIATE(double)
#undef LONGNET_INSTANTIATE

}  // namespace longnet::cuda_ops
