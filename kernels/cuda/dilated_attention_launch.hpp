// Host entry points of the CUDA kernels, in plain C++ (no device code): what the backend
// (dilated_attention_cuda.cpp) calls. Every function enqueues work on `stream` and checks
// the launch; none synchronises. Pointers are device pointers; counts are in elements.
#pragma once

#include "kernels/cuda/flash_params.hpp"
#include "runtime/dtype.hpp"

#include <cuda_runtime_api.h>

#include <array>
#include <cstdint>

namespace longnet::cuda_kernels {

// Head dims with compiled kernels (one instantiation per dtype, head dim and causal flag).
inline constexpr std::array<int, 3> kSupportedHeadDims{32, 64, 128};
constexpr bool head_dim_supported(int64_t d) {
  for (int supported : kSupportedHeadDims) {
    if (d == supported) return true;
  }
  return false;
}

// ---- dilated_attention_dispatch.cu: one pattern, dtype in {bfloat16, float16, float32} --
// Merges the pattern into params.o / params.lse (flash_forward.cuh, simt_forward.cuh).
void forward_pattern(DType dtype, const FlashParams& params, cudaStream_t stream);
// Adds the pattern's gradients into params.dq and every task's dk, dv, and dbias where a
// task has one (flash_backward.cuh, simt_backward.cuh). deterministic: dq by a separate
// kernel that owns its rows, instead of atomicAdd from the key-block kernel (dbias is
// summed with atomicAdd in either mode).
void backward_pattern(DType dtype, const FlashParams& params, bool deterministic,
                      cudaStream_t stream);

// ---- elementwise.cu ---------------------------------------------------------------------
// data[0, n) = value.
void fill(float* data, int64_t n, float value, cudaStream_t stream);
// out[0, n) = in rounded to `dtype` (to nearest even); dtype float32 copies.
void convert_from_float(DType dtype, const float* in, void* out, int64_t n, cudaStream_t stream);
// out[0, n) = the sum of `groups` accumulators in[j n, (j + 1) n), in order, rounded to
// `dtype` (grouped-query heads' dk and dv); groups = 1 is convert_from_float. in != out.
void sum_from_float(DType dtype, const float* in, int64_t groups, void* out, int64_t n,
                    cudaStream_t stream);
// out[row] = sum over j < d of a[row d + j] * b[row d + j], a and b of `dtype`,
// accumulated in double (delta = rowsum(dout * o) is the subtrahend of dP - delta).
void row_dot(DType dtype, const void* a, const void* b, float* out, int64_t rows, int64_t d,
             cudaStream_t stream);

}  // namespace longnet::cuda_kernels
