// Layer norm and GELU on the CPU.
//
// LayerNorm over the last dim C of each row: mean and variance (population, / C) in
// double with two passes (the one-pass E[x^2] - E[x]^2 cancels catastrophically when
// |mean| >> std), each sum in 8 fixed lanes so that it vectorises;
// rstd = 1 / sqrt(var + eps); y = (x - mean) rstd gamma + beta.
// Backward, with xhat = (x - mean) rstd and g = dy gamma:
//   dx = rstd (g - mean_C(g) - xhat mean_C(g xhat)),
//   dgamma += sum over rows of dy xhat,  dbeta += sum over rows of dy.
// Rows are independent (parallel over rows); dgamma and dbeta are column sums, each
// column block owned by one thread summing the rows in order (deterministic).
//
// GELU, exact form: y = x Phi(x) = 0.5 x (1 + erf(x / sqrt 2));
// dy/dx = Phi(x) + x phi(x), phi the standard normal density. In float, Phi and phi come
// from model/ops/float_vector_math.hpp (vectorised); in double, from libm.
#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>
#include <type_traits>

#include "model/ops/cpu_ops.hpp"
#include "model/ops/float_vector_math.hpp"

namespace longnet::cpu_ops {
namespace {

constexpr int64_t kColumnBlock = 64;
constexpr double kInvSqrt2 = 1.0 / std::numbers::sqrt2;
constexpr double kInvSqrt2Pi =
    0.5 * std::numbers::inv_sqrtpi * std::numbers::sqrt2;  // 1/sqrt(2 pi)

// body(begin, end) over [0, n) in chunks, in parallel (GCC does not vectorise an OpenMP
// loop's outlined body here, but does vectorise the plain loops of the chunk functions).
template <typename Body>
void for_each_chunk(int64_t n, const Body& body) {
  constexpr int64_t kChunk = 4096;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) body(c * kChunk, std::min(n, (c + 1) * kChunk));
}

// sum over c < n of term(c), in double, in 8 independent lanes (so that the loop
// vectorises without reassociating a sum; the order is fixed, not the thread's).
template <typename Term>
inline double lane_sum(int64_t n, const Term& term) {
  constexpr int kLanes = 8;
  double lanes[kLanes] = {};
  int64_t c = 0;
  for (; c + kLanes <= n; c += kLanes) {
    for (int l = 0; l < kLanes; ++l) lanes[l] += term(c + l);
  }
  double sum = 0;
  for (int l = 0; l < kLanes; ++l) sum += lanes[l];
  for (; c < n; ++c) sum += term(c);
  return sum;
}

// One row of the layer norm forward: mean and variance in double with two passes.
template <typename T>
inline void layer_norm_forward_row_impl(const T* xr, const T* gamma, const T* beta, double eps,
                                        T* yr, T& mean, T& rstd, int64_t cols) {
  const double n = static_cast<double>(cols);
  const double mu = lane_sum(cols, [&](int64_t c) { return static_cast<double>(xr[c]); }) / n;
  const double var = lane_sum(cols,
                              [&](int64_t c) {
                                const double d = static_cast<double>(xr[c]) - mu;
                                return d * d;
                              }) /
                     n;
  const double rs = 1.0 / std::sqrt(var + eps);
  for (int64_t c = 0; c < cols; ++c) {
    yr[c] = static_cast<T>((static_cast<double>(xr[c]) - mu) * rs * static_cast<double>(gamma[c]) +
                           static_cast<double>(beta[c]));
  }
  mean = static_cast<T>(mu);
  rstd = static_cast<T>(rs);
}

// One row of dx = rstd (g - mean(g) - xhat mean(g xhat)), g = dy gamma.
template <typename T>
inline void layer_norm_backward_row_impl(const T* xr, const T* gamma, T mean, T rstd, const T* dyr,
                                         T* dxr, int64_t cols) {
  const double mu = static_cast<double>(mean), rs = static_cast<double>(rstd);
  const double n = static_cast<double>(cols);
  const double g_mean =
      lane_sum(
          cols,
          [&](int64_t c) { return static_cast<double>(dyr[c]) * static_cast<double>(gamma[c]); }) /
      n;
  const double gx_mean = lane_sum(cols,
                                  [&](int64_t c) {
                                    return static_cast<double>(dyr[c]) *
                                           static_cast<double>(gamma[c]) *
                                           ((static_cast<double>(xr[c]) - mu) * rs);
                                  }) /
                         n;
  for (int64_t c = 0; c < cols; ++c) {
    const double g = static_cast<double>(dyr[c]) * static_cast<double>(gamma[c]);
    const double xhat = (static_cast<double>(xr[c]) - mu) * rs;
    dxr[c] = static_cast<T>(rs * (g - g_mean - xhat * gx_mean));
  }
}

// The rows, in float compiled per instruction set (LONGNET_VECTOR_CLONES); in double plain.
LONGNET_VECTOR_CLONES void layer_norm_forward_row(const float* xr, const float* gamma,
                                                  const float* beta, double eps, float* yr,
                                                  float& mean, float& rstd, int64_t cols) {
  layer_norm_forward_row_impl(xr, gamma, beta, eps, yr, mean, rstd, cols);
}
void layer_norm_forward_row(const double* xr, const double* gamma, const double* beta, double eps,
                            double* yr, double& mean, double& rstd, int64_t cols) {
  layer_norm_forward_row_impl(xr, gamma, beta, eps, yr, mean, rstd, cols);
}
LONGNET_VECTOR_CLONES void layer_norm_backward_row(const float* xr, const float* gamma, float mean,
                                                   float rstd, const float* dyr, float* dxr,
                                                   int64_t cols) {
  layer_norm_backward_row_impl(xr, gamma, mean, rstd, dyr, dxr, cols);
}
void layer_norm_backward_row(const double* xr, const double* gamma, double mean, double rstd,
                             const double* dyr, double* dxr, int64_t cols) {
  layer_norm_backward_row_impl(xr, gamma, mean, rstd, dyr, dxr, cols);
}

// The float GELU chunks (LONGNET_VECTOR_CLONES: AVX-512, AVX2 and baseline versions).
LONGNET_VECTOR_CLONES void gelu_forward_chunk(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * normal_cdf(x[i]);
}

LONGNET_VECTOR_CLONES void gelu_backward_chunk(const float* x, const float* dy, float* dx,
                                               int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * (normal_cdf(x[i]) + x[i] * normal_pdf(x[i]));
}

}  // namespace

template <typename T>
void layer_norm_forward(const T* x, const T* gamma, const T* beta, double eps, T* y, T* mean,
                        T* rstd, int64_t rows, int64_t cols) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    layer_norm_forward_row(x + r * cols, gamma, beta, eps, y + r * cols, mean[r], rstd[r], cols);
  }
}

template <typename T>
void layer_norm_backward(const T* x, const T* gamma, const T* mean, const T* rstd, const T* dy,
                         T* dx, T* dgamma, T* dbeta, int64_t rows, int64_t cols) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    layer_norm_backward_row(x + r * cols, gamma, mean[r], rstd[r], dy + r * cols, dx + r * cols,
                            cols);
  }
  const int64_t blocks = (cols + kColumnBlock - 1) / kColumnBlock;
#pragma omp parallel for schedule(static)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t c0 = blk * kColumnBlock, width = std::min(kColumnBlock, cols - c0);
    std::array<double, kColumnBlock> dg{}, db{};
    for (int64_t r = 0; r < rows; ++r) {
      const double mu = static_cast<double>(mean[r]), rs = static_cast<double>(rstd[r]);
      for (int64_t j = 0; j < width; ++j) {
        const double d = static_cast<double>(dy[r * cols + c0 + j]);
        dg[j] += d * (static_cast<double>(x[r * cols + c0 + j]) - mu) * rs;
        db[j] += d;
      }
    }
    for (int64_t j = 0; j < width; ++j) {
      dgamma[c0 + j] = static_cast<T>(dgamma[c0 + j] + dg[j]);
      dbeta[c0 + j] = static_cast<T>(dbeta[c0 + j] + db[j]);
    }
  }
}

template <typename T>
void gelu_forward(const T* x, T* y, int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    for_each_chunk(n, [=](int64_t begin, int64_t end) {
      gelu_forward_chunk(x + begin, y + begin, end - begin);
    });
  } else {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      y[i] = static_cast<T>(T(0.5) * x[i] * (T(1) + std::erf(x[i] * static_cast<T>(kInvSqrt2))));
    }
  }
}

template <typename T>
void gelu_backward(const T* x, const T* dy, T* dx, int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    for_each_chunk(n, [=](int64_t begin, int64_t end) {
      gelu_backward_chunk(x + begin, dy + begin, dx + begin, end - begin);
    });
  } else {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const T cdf = T(0.5) * (T(1) + std::erf(x[i] * static_cast<T>(kInvSqrt2)));
      const T pdf = static_cast<T>(kInvSqrt2Pi) * std::exp(T(-0.5) * x[i] * x[i]);
      dx[i] = dy[i] * (cdf + x[i] * pdf);
    }
  }
}

#define LONGNET_INSTANTIATE(T)                                                                   \
  template void layer_norm_forward<T>(const T*, const T*, const T*, double, T*, T*, T*, int64_t, \
                                      int64_t);                                                  \
  template void layer_norm_backward<T>(const T*, const T*, const T*, const T*, const T*, T*, T*, \
                                       T*, int64_t, int64_t);                                    \
  template void gelu_forward<T>(const T*, T*, int64_t);                                          \
  template void gelu_backward<T>(const T*, const T*, T*, int64_t);
LONGNET_INSTANTIATE(float)
LONGNET_INSTANTIATE(double)
#undef LONGNET_INSTANTIATE

}  // namespace longnet::cpu_ops
