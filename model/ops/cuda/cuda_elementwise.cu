// Elementwise ops, the squared norm and the AdamW step on the GPU; the formulas are those
// of model/ops/cpu_elementwise.cpp.
//
// sum_of_squares: a fixed grid of kSumOfSquaresPartials blocks, each thread accumulating
// its grid-stride elements in double, then a block reduction to one partial per block; the
// host adds the partials in order. The split depends only on n: deterministic.
#include "model/ops/cuda/ops_common.cuh"
#include "model/ops/cuda/ops_launch.hpp"
#include "runtime/cublas_check.hpp"
#include "runtime/cuda_check.hpp"

namespace longnet::cuda_ops {
namespace {

__device__ inline float sqrt_t(float x) { return sqrtf(x); }
__device__ inline double sqrt_t(double x) { return sqrt(x); }

// ---- CUDA kernels ------------------------------------------------------------------------
template <typename T>
__global__ void add_kernel(const T* a, const T* b, T* out, int64_t n) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) out[i] = a[i] + b[i];
}

template <typename T>
__global__ void scale_kernel(T* a, T factor, int64_t n) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) a[i] *= factor;
}

template <typename T>
__global__ void sum_of_squares_kernel(const T* a, int64_t n, double* partials) {
  __shared__ double shared[kThreads / kWarp];
  double s = 0.0;
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    const double x = static_cast<double>(a[i]);
    s += x * x;
  }
  s = block_reduce<false>(s, shared);
  if (threadIdx.x == 0) partials[blockIdx.x] = s;
}

// The scalars arrive already cast to T, as the CPU computes them.
template <typename T>
struct AdamWArgs {
  T beta1, beta2, inv_bc1, inv_bc2, lr, eps, wd;
};

template <typename T>
__global__ void adamw_kernel(T* param, const T* grad, T* m, T* v, int64_t n, AdamWArgs<T> s) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    const T g = grad[i];
    const T mi = s.beta1 * m[i] + (T(1) - s.beta1) * g;
    const T vi = s.beta2 * v[i] + (T(1) - s.beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    const T update = (mi * s.inv_bc1) / (sqrt_t(vi * s.inv_bc2) + s.eps);
    param[i] -= s.lr * (update + s.wd * param[i]);
  }
}

}  // namespace

// ---- kernel launchers --------------------------------------------------------------------
template <typename T>
void add(const T* a, const T* b, T* out, int64_t n, cudaStream_t stream) {
  add_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(a, b, out, n);
  LONGNET_CUDA_CHECK_LAUNCH("add_kernel");
}

template <typename T>
void scale(T* a, double factor, int64_t n, cudaStream_t stream) {
  scale_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(a, static_cast<T>(factor), n);
  LONGNET_CUDA_CHECK_LAUNCH("scale_kernel");
}

template <typename T>
void sum_of_squares_partials(const T* a, int64_t n, double* partials, cudaStream_t stream) {
  sum_of_squares_kernel<T><<<kSumOfSquaresPartials, kThreads, 0, stream>>>(a, n, partials);
  LONGNET_CUDA_CHECK_LAUNCH("sum_of_squares_kernel");
}

template <typename T>
void adamw_step(T* param, const T* grad, T* m, T* v, int64_t n, const AdamWScalars& s,
                cudaStream_t stream) {
  const AdamWArgs<T> args{static_cast<T>(s.beta1),
                          static_cast<T>(s.beta2),
                          static_cast<T>(s.inv_bias_correction1),
                          static_cast<T>(s.inv_bias_correction2),
                          static_cast<T>(s.lr),
                          static_cast<T>(s.eps),
                          static_cast<T>(s.weight_decay)};
  adamw_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(param, grad, m, v, n, args);
  LONGNET_CUDA_CHECK_LAUNCH("adamw_kernel");
}

#define LONGNET_INSTANTIATE(T)                                                        \
  template void add<T>(const T*, const T*, T*, int64_t, cudaStream_t);                \
  template void scale<T>(T*, double, int64_t, cudaStream_t);                          \
  template void sum_of_squares_partials<T>(const T*, int64_t, double*, cudaStream_t); \
  template void adamw_step<T>(T*, const T*, T*, T*, int64_t, const AdamWScalars&, cudaStream_t);
LONGNET_INSTANTIATE(float)
LONGNET_INSTANTIATE(double)
#undef LONGNET_INSTANTIATE

}  // namespace longnet::cuda_ops
