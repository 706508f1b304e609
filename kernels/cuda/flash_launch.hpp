// Declarations of the launcher templates, defined in flash_launch_template.cuh and
// explicitly instantiated per element type (__nv_bfloat16, __half, float) and head dim
// (32, 64, 128) in flash_launch_{bf16,fp16,fp32}.cu. The dispatch includes only this.
#pragma once

#include "kernels/cuda/flash_params.hpp"

#include <cuda_runtime_api.h>

namespace longnet::cuda_kernels {

// Merges one pattern into params.o / params.lse; float selects the CUDA-core kernels.
template <typename T, int kHeadDim, bool kCausal>
void launch_forward(const FlashParams& params, cudaStream_t stream);

// Adds one pattern's gradients to params.dq and the tasks' dk, dv.
template <typename T, int kHeadDim, bool kCausal>
void launch_backward(const FlashParams& params, bool deterministic, cudaStream_t stream);

}  // namespace longnet::cuda_kernels
