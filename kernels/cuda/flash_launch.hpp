// Declarations of the launcher templates, defined in flash_launch_template.cuh and
// explicitly instantiated per element type (__nv_bfloat16, __half, float), head dim
// (32, 64, 128), causal flag and kExtras in flash_launch_{bf16,fp16,fp32}.cu. The
// dispatch includes only this.
#pragma once

#include "kernels/cuda/flash_params.hpp"

#include <cuda_runtime_api.h>

namespace longnet::cuda_kernels {

// Merges one pattern into params.o / params.lse; float selects the CUDA-core kernels.
// kExtras: the kernels with relative position bias and dropout (FlashParams::extras).
template <typename T, int kHeadDim, bool kCausal, bool kExtras>
void launch_forward(const FlashParams& params, cudaStream_t stream);

// Adds one pattern's gradients to params.dq and the tasks' dk, dv (and, with kExtras,
// the tasks' dbias).
template <typename T, int kHeadDim, bool kCausal, bool kExtras>
void launch_backward(const FlashParams& params, bool deterministic, cudaStream_t stream);

}  // namespace longnet::cuda_kernels
