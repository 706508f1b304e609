// Elementwise ops, the squared norm for gradient clipping, and the AdamW step, on the CPU.
//
// sum_of_squares accumulates in double over fixed chunks of kChunk elements whose sums
// are then added in chunk order: the same bits for any thread count, and a float32
// gradient of 10^9 elements still sums without losing its small entries.
//
// AdamW (Loshchilov & Hutter, decoupled weight decay), per element, step t >= 1:
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
//   p -= lr (m / (1 - b1^t) / (sqrt(v / (1 - b2^t)) + eps) + wd p)   (wd only when decay).
// The decay term uses p before the update. The bias corrections are computed once per call
// in double; the per-element arithmetic runs in T.
#include <algorithm>
#include <cmath>
#include <vector>

#include "model/ops/cpu_ops.hpp"

namespace longnet::cpu_ops {
namespace {

constexpr int64_t kChunk = int64_t{1} << 14;

}  // namespace

template <typename T>
void add(const T* a, const T* b, T* out, int64_t n) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

template <typename T>
double sum_of_squares(const T* a, int64_t n) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial(static_cast<std::size_t>(chunks));
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    double s = 0;
    for (int64_t i = c * kChunk; i < std::min(n, (c + 1) * kChunk); ++i) {
      s += static_cast<double>(a[i]) * static_cast<double>(a[i]);
    }
    partial[static_cast<std::size_t>(c)] = s;
  }
  double total = 0;
  for (double s : partial) total += s;
  return total;
}

template <typename T>
void scale(T* a, double factor, int64_t n) {
  const T f = static_cast<T>(factor);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) a[i] *= f;
}

template <typename T>
void adamw_step(T* param, const T* grad, T* m, T* v, int64_t n, int64_t step,
                const AdamWSettings& s, bool decay) {
  const double t = static_cast<double>(step);
  const T b1 = static_cast<T>(s.beta1), b2 = static_cast<T>(s.beta2);
  const T inv_bc1 = static_cast<T>(1.0 / (1.0 - std::pow(s.beta1, t)));
  const T inv_bc2 = static_cast<T>(1.0 / (1.0 - std::pow(s.beta2, t)));
  const T lr = static_cast<T>(s.lr), eps = static_cast<T>(s.eps);
  const T wd = decay ? static_cast<T>(s.weight_decay) : T(0);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const T g = grad[i];
    m[i] = b1 * m[i] + (T(1) - b1) * g;
    v[i] = b2 * v[i] + (T(1) - b2) * g * g;
    const T update = (m[i] * inv_bc1) / (std::sqrt(v[i] * inv_bc2) + eps);
    param[i] -= lr * (update + wd * param[i]);
  }
}

#define LONGNET_INSTANTIATE(T)                           \
  template void add<T>(const T*, const T*, T*, int64_t); \
  template double sum_of_squares<T>(const T*, int64_t);  \
  template void scale<T>(T*, double, int64_t);           \
  template void adamw_step<T>(T*, const T*, T*, T*, int64_t, int64_t, const AdamWSettings&, bool);
LONGNET_INSTANTIATE(float)
LONGNET_INSTANTIATE(double)
#undef LONGNET_INSTANTIATE

}  // namespace longnet::cpu_ops
