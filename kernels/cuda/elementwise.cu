// Small memory-bound kernels around the attention kernels: filling lse with -inf,
// converting the fp32 accumulators to the output dtype (summing the per-member
// accumulators of grouped-query heads), and delta = rowsum(dout * o).
//
// All use grid-stride loops over int64 indices (tensors may exceed 2^31 elements) with a
// grid capped at kMaxBlocks, enough to fill any current GPU several times over.
#include "kernels/cuda/dilated_attention_launch.hpp"
#include "kernels/cuda/mma_primitives.cuh"
#include "runtime/cuda_check.hpp"

#include <algorithm>
#include <string>

namespace longnet::cuda_kernels {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 4096;

int blocks_for(int64_t work_items, int per_block) {
  return static_cast<int>(
      std::clamp<int64_t>((work_items + per_block - 1) / per_block, 1, kMaxBlocks));
}

// ---- CUDA kernels ------------------------------------------------------------------------
__global__ void fill_kernel(float* data, int64_t n, float value) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    data[i] = value;
  }
}

template <typename T>
__global__ void convert_kernel(const float* in, T* out, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    out[i] = ElementOps<T>::from_float(in[i]);
  }
}

// out[i] = sum over j < groups of in[j n + i] (in member order, as the CPU backend),
// rounded once to T.
template <typename T>
__global__ void sum_convert_kernel(const float* in, int64_t groups, T* out, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float sum = in[i];
    for (int64_t j = 1; j < groups; ++j) sum += in[j * n + i];
    out[i] = ElementOps<T>::from_float(sum);
  }
}

// One warp per row; lanes stride over the row, then a butterfly sum. Double accumulation,
// as the CPU backend: delta's rounding error would pass into every dS = P (dP - delta).
template <typename T>
__global__ void row_dot_kernel(const T* a, const T* b, float* out, int64_t rows, int64_t d) {
  const int lane = threadIdx.x % 32;
  const int64_t warps_per_grid = static_cast<int64_t>(gridDim.x) * (blockDim.x / 32);
  for (int64_t row = blockIdx.x * static_cast<int64_t>(blockDim.x / 32) + threadIdx.x / 32;
       row < rows; row += warps_per_grid) {
    double sum = 0.0;
    for (int64_t j = lane; j < d; j += 32) {
      sum += static_cast<double>(ElementOps<T>::to_float(a[row * d + j])) *
             static_cast<double>(ElementOps<T>::to_float(b[row * d + j]));
    }
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2) {
      sum += __shfl_xor_sync(0xffffffffu, sum, offset);
    }
    if (lane == 0) out[row] = static_cast<float>(sum);
  }
}

// ---- kernel launchers --------------------------------------------------------------------
template <typename T>
void convert_as(const float* in, void* out, int64_t n, cudaStream_t stream) {
  convert_kernel<T><<<blocks_for(n, kThreads), kThreads, 0, stream>>>(in, static_cast<T*>(out), n);
  LONGNET_CUDA_CHECK_LAUNCH("convert_kernel");
}

template <typename T>
void sum_convert_as(const float* in, int64_t groups, void* out, int64_t n, cudaStream_t stream) {
  sum_convert_kernel<T>
      <<<blocks_for(n, kThreads), kThreads, 0, stream>>>(in, groups, static_cast<T*>(out), n);
  LONGNET_CUDA_CHECK_LAUNCH("sum_convert_kernel");
}

template <typename T>
void row_dot_as(const void* a, const void* b, float* out, int64_t rows, int64_t d,
                cudaStream_t stream) {
  row_dot_kernel<T><<<blocks_for(rows, kThreads / 32), kThreads, 0, stream>>>(
      static_cast<const T*>(a), static_cast<const T*>(b), out, rows, d);
  LONGNET_CUDA_CHECK_LAUNCH("row_dot_kernel");
}

[[noreturn]] void unsupported(DType dtype, const char* what) {
  ::longnet::detail::throw_error(std::string(what) + ": unsupported dtype " +
                                 std::string(dtype_name(dtype)) +
                                 " (the CUDA kernels take bfloat16, float16 or float32)");
}

}  // namespace

void fill(float* data, int64_t n, float value, cudaStream_t stream) {
  if (n == 0) return;
  fill_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream>>>(data, n, value);
  LONGNET_CUDA_CHECK_LAUNCH("fill_kernel");
}

void convert_from_float(DType dtype, const float* in, void* out, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  switch (dtype) {
    case DType::bfloat16:
      return convert_as<__nv_bfloat16>(in, out, n, stream);
    case DType::float16:
      return convert_as<__half>(in, out, n, stream);
    case DType::float32:
      if (in != out) {
        LONGNET_CUDA_CHECK(cudaMemcpyAsync(out, in, static_cast<std::size_t>(n) * sizeof(float),
                                           cudaMemcpyDeviceToDevice, stream));
      }
      return;
    case DType::float64:
      break;
  }
  unsupported(dtype, "convert_from_float");
}

void sum_from_float(DType dtype, const float* in, int64_t groups, void* out, int64_t n,
                    cudaStream_t stream) {
  if (groups == 1) return convert_from_float(dtype, in, out, n, stream);
  if (n == 0) return;
  switch (dtype) {
    case DType::bfloat16:
      return sum_convert_as<__nv_bfloat16>(in, groups, out, n, stream);
    case DType::float16:
      return sum_convert_as<__half>(in, groups, out, n, stream);
    case DType::float32:
      return sum_convert_as<float>(in, groups, out, n, stream);
    case DType::float64:
      break;
  }
  unsupported(dtype, "sum_from_float");
}

void row_dot(DType dtype, const void* a, const void* b, float* out, int64_t rows, int64_t d,
             cudaStream_t stream) {
  if (rows == 0) return;
  switch (dtype) {
    case DType::bfloat16:
      return row_dot_as<__nv_bfloat16>(a, b, out, rows, d, stream);
    case DType::float16:
      return row_dot_as<__half>(a, b, out, rows, d, stream);
    case DType::float32:
      return row_dot_as<float>(a, b, out, rows, d, stream);
    case DType::float64:
      break;
  }
  unsupported(dtype, "row_dot");
}

}  // namespace longnet::cuda_kernels
