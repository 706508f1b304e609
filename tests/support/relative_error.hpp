// The error measures the kernel tests compare with, written once for every suite.
#pragma once

#include "runtime/tensor.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

namespace longnet::test {

// ||got - ref|| / ||ref|| over the elements `keep` accepts (||got|| / sqrt(n) when ref is
// exactly 0: the inputs are O(1), so an RMS of 1 is the natural unit); NaN when a compared
// element of got is not finite. `got` is anything indexable: a span, a vector.
template <typename Got, typename Keep>
double relative_l2(const Got& got, const std::vector<double>& ref, Keep keep) {
  double diff2 = 0, ref2 = 0;
  std::size_t n = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    if (!keep(i)) continue;
    const double g = static_cast<double>(got[i]);
    if (!std::isfinite(g)) return std::numeric_limits<double>::quiet_NaN();
    diff2 += (g - ref[i]) * (g - ref[i]);
    ref2 += ref[i] * ref[i];
    ++n;
  }
  return std::sqrt(diff2 / (ref2 > 0 ? ref2 : static_cast<double>(std::max<std::size_t>(n, 1))));
}

template <typename Got>
double relative_l2(const Got& got, const std::vector<double>& ref) {
  return relative_l2(got, ref, [](std::size_t) { return true; });
}

// The same for a float32 host tensor.
template <typename Keep>
double relative_l2(const Tensor& got, const std::vector<double>& ref, Keep keep) {
  return relative_l2(got.span<float>(), ref, keep);
}

inline double relative_l2(const Tensor& got, const std::vector<double>& ref) {
  return relative_l2(got.span<float>(), ref);
}

// Whether two tensors, on any device, hold the same bytes (NaN payloads included).
inline bool bitwise_equal(const Tensor& a, const Tensor& b) {
  const Tensor ha = a.to(Device::cpu), hb = b.to(Device::cpu);
  return ha.shape() == hb.shape() && ha.dtype() == hb.dtype() &&
         std::memcmp(ha.raw(), hb.raw(), ha.nbytes()) == 0;
}

// Rows (of [B, N, H]) that `covered` rejects but that hold a nonzero in the float32 host
// tensor t [B, N, H, D]: rows no pattern selects must be exactly 0 (o, dq, dk, dv).
template <typename Covered>
int64_t nonzero_uncovered_rows(const Tensor& t, int64_t d, std::size_t rows, Covered covered) {
  int64_t bad = 0;
  const auto x = t.span<float>();
  for (std::size_t row = 0; row < rows; ++row) {
    if (covered(row)) continue;
    bool zero = true;
    for (int64_t i = 0; i < d; ++i) zero = zero && x[row * d + static_cast<std::size_t>(i)] == 0.0f;
    bad += !zero;
  }
  return bad;
}

}  // namespace longnet::test
