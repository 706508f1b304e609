// Kernel launchers of the dilated-attention kernels, instantiated once per dtype in
// flash_launch_{bf16,fp16,fp32}.cu (FlashAttention's *_launch_template.h layout: the
// instantiations compile in parallel).
//
// Grid. A launch covers one pattern's tasks: blockIdx.x is the query block (forward, dQ)
// or key block (dK/dV) within a task, sized by the largest task; blockIdx.y + gridDim.y *
// blockIdx.z is the task (y is limited to 65535, so z takes the rest). Blocks past a
// smaller task's end return at once. x varies fastest, so the blocks of one task run
// together and share its keys and values in L2.
#pragma once

#include "kernels/cuda/flash_backward.cuh"
#include "kernels/cuda/flash_launch.hpp"
#include "kernels/cuda/simt_backward.cuh"
#include "runtime/cuda_check.hpp"

#include <climits>
#include <string>
#include <type_traits>

namespace longnet::cuda_kernels {

inline dim3 task_grid(int64_t blocks_per_task, int64_t num_tasks, const char* kernel) {
  constexpr int64_t kMaxY = 65535, kMaxZ = 65535;
  const int64_t y = num_tasks < kMaxY ? num_tasks : kMaxY;
  const int64_t z = (num_tasks + y - 1) / y;
  if (blocks_per_task > INT_MAX || z > kMaxZ) {
    ::longnet::detail::throw_error(std::string(kernel) + ": grid too large (" +
                                   std::to_string(blocks_per_task) + " blocks per task, " +
                                   std::to_string(num_tasks) + " tasks)");
  }
  return dim3(static_cast<unsigned>(blocks_per_task), static_cast<unsigned>(y),
              static_cast<unsigned>(z));
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Sets the kernel's dynamic shared-memory limit (above the 48 KiB default needs opt-in),
// launches one block of `threads` per (block, task) and checks the launch.
template <typename Kernel>
void launch_over_tasks(Kernel kernel, const char* name, int64_t blocks_per_task, int threads,
                       int smem_bytes, const FlashParams& params, cudaStream_t stream) {
  if (blocks_per_task <= 0 || params.num_tasks <= 0) return;
  const dim3 grid = task_grid(blocks_per_task, params.num_tasks, name);
  LONGNET_CUDA_CHECK(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes), name);
  kernel<<<grid, threads, smem_bytes, stream>>>(params);
  LONGNET_CUDA_CHECK_LAUNCH(name);
}

// ---- kernel launchers --------------------------------------------------------------------
// kExtras: the instantiations with bias, dropout and dbias (FlashParams::extras); the
// tensor-core dK/dV kernel then also takes the dbias diagonal sums' shared memory.
template <typename T, int kHeadDim, bool kCausal, bool kExtras>
void launch_forward(const FlashParams& params, cudaStream_t stream) {
  if constexpr (std::is_same_v<T, float>) {
    using Tr = SimtTraits<kHeadDim>;
    launch_over_tasks(simt_forward_kernel<kHeadDim, kCausal, kExtras>, "simt_forward_kernel",
                      ceil_div(params.max_query_count, Tr::kBlockM), Tr::kThreads,
                      Tr::kForwardSmemBytes, params, stream);
  } else {
    using Tr = FlashForwardTraits<T, kHeadDim>;
    launch_over_tasks(flash_forward_kernel<Tr, kCausal, kExtras>, "flash_forward_kernel",
                      ceil_div(params.max_query_count, Tr::kBlockM), Tr::kThreads, Tr::kSmemBytes,
                      params, stream);
  }
}

template <typename T, int kHeadDim, bool kCausal, bool kExtras>
void launch_backward(const FlashParams& params, bool deterministic, cudaStream_t stream) {
  if constexpr (std::is_same_v<T, float>) {
    using Tr = SimtTraits<kHeadDim>;
    const int64_t key_blocks = ceil_div(params.max_key_count, Tr::kBlockN);
    if (deterministic) {
      launch_over_tasks(simt_backward_dkdv_kernel<kHeadDim, kCausal, false, kExtras>,
                        "simt_backward_dkdv_kernel", key_blocks, Tr::kThreads,
                        Tr::kBackwardSmemBytes, params, stream);
      launch_over_tasks(simt_backward_dq_kernel<kHeadDim, kCausal, kExtras>,
                        "simt_backward_dq_kernel",
                        ceil_div(params.max_query_count, Tr::kBackwardBlockM), Tr::kThreads,
                        Tr::kBackwardSmemBytes, params, stream);
    } else {
      launch_over_tasks(simt_backward_dkdv_kernel<kHeadDim, kCausal, true, kExtras>,
                        "simt_backward_dkdv_kernel", key_blocks, Tr::kThreads,
                        Tr::kBackwardSmemBytes, params, stream);
    }
  } else {
    using Tr = FlashBackwardTraits<T, kHeadDim>;
    using DqTr = FlashDqTraits<T, kHeadDim>;
    const int64_t key_blocks = ceil_div(params.max_key_count, Tr::kBlockN);
    const int dkdv_smem = kExtras ? Tr::kExtrasSmemBytes : Tr::kSmemBytes;
    if (deterministic) {
      launch_over_tasks(flash_backward_dkdv_kernel<Tr, kCausal, false, kExtras>,
                        "flash_backward_dkdv_kernel", key_blocks, Tr::kThreads, dkdv_smem, params,
                        stream);
      launch_over_tasks(flash_backward_dq_kernel<DqTr, kCausal, kExtras>,
                        "flash_backward_dq_kernel", ceil_div(params.max_query_count, DqTr::kBlockM),
                        DqTr::kThreads, DqTr::kSmemBytes, params, stream);
    } else {
      launch_over_tasks(flash_backward_dkdv_kernel<Tr, kCausal, true, kExtras>,
                        "flash_backward_dkdv_kernel", key_blocks, Tr::kThreads, dkdv_smem, params,
                        stream);
    }
  }
}

// Explicit instantiations for one element type and one value of kExtras: every head dim,
// causal and not.
#define LONGNET_INSTANTIATE_FLASH_LAUNCHERS_EXTRAS(T, E)                                   \
  template void launch_forward<T, 32, false, E>(const FlashParams&, cudaStream_t);         \
  template void launch_forward<T, 32, true, E>(const FlashParams&, cudaStream_t);          \
  template void launch_forward<T, 64, false, E>(const FlashParams&, cudaStream_t);         \
  template void launch_forward<T, 64, true, E>(const FlashParams&, cudaStream_t);          \
  template void launch_forward<T, 128, false, E>(const FlashParams&, cudaStream_t);        \
  template void launch_forward<T, 128, true, E>(const FlashParams&, cudaStream_t);         \
  template void launch_backward<T, 32, false, E>(const FlashParams&, bool, cudaStream_t);  \
  template void launch_backward<T, 32, true, E>(const FlashParams&, bool, cudaStream_t);   \
  template void launch_backward<T, 64, false, E>(const FlashParams&, bool, cudaStream_t);  \
  template void launch_backward<T, 64, true, E>(const FlashParams&, bool, cudaStream_t);   \
  template void launch_backward<T, 128, false, E>(const FlashParams&, bool, cudaStream_t); \
  template void launch_backward<T, 128, true, E>(const FlashParams&, bool, cudaStream_t)

// ... and both values of kExtras.
#define LONGNET_INSTANTIATE_FLASH_LAUNCHERS(T)          \
  LONGNET_INSTANTIATE_FLASH_LAUNCHERS_EXTRAS(T, false); \
  LONGNET_INSTANTIATE_FLASH_LAUNCHERS_EXTRAS(T, true)

}  // namespace longnet::cuda_kernels
