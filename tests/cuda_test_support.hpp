// Helpers shared by the CUDA kernel tests (test_dilated_attention_cuda*.cpp).
#pragma once

#include "kernels/dilated_attention.hpp"
#include "runtime/device_memory.hpp"
#include "runtime/tensor.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

// Every test that needs a GPU starts with this: without one it is reported as skipped,
// with the reason, never as passed.
#define LONGNET_SKIP_WITHOUT_GPU()                                 \
  do {                                                             \
    std::string longnet_no_gpu_reason;                             \
    if (!::longnet::cuda_device_available(&longnet_no_gpu_reason)) \
      GTEST_SKIP() << longnet_no_gpu_reason;                       \
  } while (false)

namespace longnet::testing_support {

inline Tensor random_normal(const Shape& shape, std::mt19937_64& rng) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  Tensor t(shape, DType::float32);
  for (float& x : t.span<float>()) x = dist(rng);
  return t;
}

// The values `dtype` holds for x, as a float32 host tensor (rounded to nearest even).
inline Tensor rounded(const Tensor& x, DType dtype) { return x.cast(dtype).cast(DType::float32); }

// A device copy of the float32 host tensor x in `dtype`.
inline Tensor on_gpu(const Tensor& x, DType dtype) { return x.cast(dtype).to(Device::cuda); }

// Device memory whose every byte is 0xFF: NaN in every floating type, so unwritten
// elements show.
inline Tensor poisoned_gpu(const Shape& shape, DType dtype) {
  Tensor t(shape, dtype, Device::cuda);
  t.poison();
  return t;
}

// A float32 host copy of any tensor.
inline Tensor host_float(const Tensor& t) { return t.to(Device::cpu).cast(DType::float32); }

// ||got - ref|| / ||ref|| over the elements `keep` accepts (||got|| / sqrt(n) when ref is
// exactly 0: the inputs are O(1), so an RMS of 1 is the natural unit); NaN when a compared
// element of got is not finite.
template <typename Keep>
double relative_l2(const Tensor& got, const std::vector<double>& ref, Keep keep) {
  const auto x = got.span<float>();
  double diff2 = 0, ref2 = 0;
  int64_t n = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    if (!keep(i)) continue;
    if (!std::isfinite(x[i])) return std::numeric_limits<double>::quiet_NaN();
    const double d = static_cast<double>(x[i]) - ref[i];
    diff2 += d * d;
    ref2 += ref[i] * ref[i];
    ++n;
  }
  const double unit = ref2 > 0 ? ref2 : static_cast<double>(std::max<int64_t>(n, 1));
  return std::sqrt(diff2 / unit);
}
inline double relative_l2(const Tensor& got, const std::vector<double>& ref) {
  return relative_l2(got, ref, [](std::size_t) { return true; });
}

// The same for a vector (a naive implementation's output).
inline double relative_l2(const std::vector<double>& got, const std::vector<double>& ref) {
  double diff2 = 0, ref2 = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    if (!std::isfinite(got[i])) return std::numeric_limits<double>::quiet_NaN();
    diff2 += (got[i] - ref[i]) * (got[i] - ref[i]);
    ref2 += ref[i] * ref[i];
  }
  return std::sqrt(diff2 /
                   (ref2 > 0 ? ref2 : static_cast<double>(std::max<std::size_t>(ref.size(), 1))));
}

inline bool bitwise_equal(const Tensor& a, const Tensor& b) {
  const Tensor ha = a.to(Device::cpu), hb = b.to(Device::cpu);
  return ha.nbytes() == hb.nbytes() && std::memcmp(ha.raw(), hb.raw(), ha.nbytes()) == 0;
}

}  // namespace longnet::testing_support
