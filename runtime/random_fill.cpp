#include "runtime/random_fill.hpp"

#include <cmath>

namespace longnet {
namespace {

constexpr uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

void fill_uniform_unit_variance(Tensor& t, uint64_t seed) {
  float* data = t.data<float>();
  const int64_t n = t.numel();
  const uint64_t key = splitmix64(seed);
  const double half_width = std::sqrt(3.0);
  constexpr double kTwoPow53 = 9007199254740992.0;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const double unit =
        static_cast<double>(splitmix64(key ^ static_cast<uint64_t>(i)) >> 11) / kTwoPow53;
    data[i] = static_cast<float>((2.0 * unit - 1.0) * half_width);
  }
}

Tensor random_tensor(const Shape& shape, uint64_t seed) {
  Tensor t(shape, DType::float32);
  fill_uniform_unit_variance(t, seed);
  return t;
}

}  // namespace longnet
