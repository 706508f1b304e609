// Helpers for the ModelOps tests: random tensors with fixed seeds, central finite
// differences in double, and error norms.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <vector>

#include "runtime/tensor.hpp"

namespace longnet::test {

// Standard normal entries (times `scale`, plus `offset`), float64, reproducible from `seed`.
inline Tensor random_double(const Shape& shape, uint64_t seed, double scale = 1.0,
                            double offset = 0.0) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> dist(0.0, 1.0);
  Tensor t(shape, DType::float64);
  for (double& x : t.span<double>()) x = offset + scale * dist(rng);
  return t;
}

inline std::vector<int32_t> random_ids(std::size_t count, int32_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> dist(0, vocab - 1);
  std::vector<int32_t> ids(count);
  for (int32_t& id : ids) id = dist(rng);
  return ids;
}

inline std::vector<double> values(const Tensor& t) {
  const Tensor d = t.dtype() == DType::float64 ? t : t.cast(DType::float64);
  const auto s = d.span<double>();
  return {s.begin(), s.end()};
}

// <a, b> over all elements (float64 tensors): the scalar whose gradient is b when a = f(x).
inline double dot(const Tensor& a, const Tensor& b) {
  double s = 0;
  const auto x = a.span<double>(), y = b.span<double>();
  for (std::size_t i = 0; i < x.size(); ++i) s += x[i] * y[i];
  return s;
}

// dL/dt by central differences: (L(t + h e_i) - L(t - h e_i)) / 2h for every element i of the
// float64 tensor t, which `loss` reads. The truncation error is O(h^2) and the rounding
// error O(eps / h): h = 1e-6 makes both about 1e-10 relative for O(1) inputs.
inline std::vector<double> numeric_gradient(Tensor& t, const std::function<double()>& loss,
                                            double h = 1e-6) {
  std::vector<double> grad(static_cast<std::size_t>(t.numel()));
  auto x = t.span<double>();
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double saved = x[i];
    x[i] = saved + h;
    const double up = loss();
    x[i] = saved - h;
    const double down = loss();
    x[i] = saved;
    grad[i] = (up - down) / (2 * h);
  }
  return grad;
}

// max_i |got_i - want_i| / max(1, max_i |want_i|): an error relative to the data's scale
// that does not blow up on entries that happen to be near zero.
inline double max_error(const std::vector<double>& got, const std::vector<double>& want) {
  if (got.size() != want.size()) return INFINITY;
  double err = 0, unit = 1;
  for (std::size_t i = 0; i < want.size(); ++i) {
    err = std::max(err, std::abs(got[i] - want[i]));
    unit = std::max(unit, std::abs(want[i]));
  }
  return err / unit;
}
inline double max_error(const Tensor& got, const std::vector<double>& want) {
  return max_error(values(got), want);
}

// `got` minus the values it held before an accumulating op: the accumulated part.
inline std::vector<double> minus(const Tensor& got, const Tensor& before) {
  std::vector<double> out = values(got);
  const std::vector<double> b = values(before);
  for (std::size_t i = 0; i < out.size(); ++i) out[i] -= b[i];
  return out;
}

}  // namespace longnet::test
