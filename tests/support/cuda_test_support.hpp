// Helpers shared by the CUDA kernel tests (test_dilated_attention_cuda*.cpp).
#pragma once

#include "kernels/dilated_attention.hpp"
#include "runtime/device_memory.hpp"
#include "runtime/tensor.hpp"
#include "tests/support/relative_error.hpp"

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

namespace longnet::test {

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

}  // namespace longnet::test
