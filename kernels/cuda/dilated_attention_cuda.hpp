// The CUDA backend of the dilated-attention op (kernels/dilated_attention.hpp).
//
// Fused, tiled FlashAttention-2-style kernels: bf16 and fp16 inputs on tensor cores
// (mma.sync m16n8k16, fp32 accumulation), fp32 inputs on CUDA cores with fp32 FMAs;
// head dims 32, 64 and 128; sm_80 and sm_90. See kernels/cuda/flash_forward.cuh and
// flash_backward.cuh for the algorithm, flash_traits.cuh for the tile choices.
//
// Tensors. q, k, v, o (and dout, dq, dk, dv) are Device::cuda tensors of one dtype
// (bfloat16, float16 or float32); lse and delta are float32 on the device. Internally o,
// dq, dk, dv are accumulated over the patterns in float32 and converted to the dtype at
// the end (for float32 the outputs are the accumulators).
//
// Task entry points (forward_tasks, backward_tasks): every pointer in AttentionParams and
// in the tasks is a device pointer on this backend's device; inputs are of
// params.input_dtype, everything written is float32. For bf16/fp16, rows must be 16-byte
// aligned (pointers, bases and row strides multiples of 8 elements); this is checked.
//
// Extras (relative position bias, dropout, dbias). forward()/backward() take the bias and
// dbias tensors in device memory (used in place) or all in host memory (copied to and
// from device buffers within the call). In the task entry points a task's bias and dbias
// are device pointers. Without extras the kernels are the plain ones (a separate
// instantiation); with them, dbias is summed with atomicAdd, so it is not bitwise
// reproducible even in deterministic mode (dq, dk, dv still are).
//
// Streams. Each call enqueues its work on the backend's own stream and waits for it
// before returning (errors from inside a kernel surface there, as an Error). The stream is
// a blocking one, so it is ordered after work other code left on the legacy default stream
// (the runtime's tensor copies, fills and poison()).
//
// deterministic (the default): dq is computed by a separate kernel that owns its rows, so
// two runs give bitwise equal gradients. It recomputes the scores (about 40% more backward
// math) yet is the faster mode: on an H100 (bf16, B=1 H=16 D=128, the paper's five
// patterns, causal) the backward took 290 ms at 1M tokens against 378 ms with dq summed by
// atomicAdd from the key-block kernel (false), whose fp32 atomics to a shared dq cost more
// than the recomputation (bench/results/cuda_attention_2026-11-22_h100.txt). The forward
// is always deterministic.
#pragma once

#include "kernels/dilated_attention.hpp"

#include <memory>

namespace longnet {

// No CUDA call happens until the first forward/backward: argument errors are reported
// (as Error) even on a machine without a GPU.
std::unique_ptr<DilatedAttentionOp> make_cuda_dilated_attention(int device = 0,
                                                                bool deterministic = true);

}  // namespace longnet
