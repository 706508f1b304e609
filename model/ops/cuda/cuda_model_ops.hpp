// The CUDA backend of ModelOps (model/ops/model_ops.hpp).
//
// Linear layers run on cuBLAS (cublasSgemm / cublasDgemm, in the default math mode: no
// TF32, so float32 GEMMs keep float32 accuracy and agree with the CPU to ~1e-6); the other
// ops are small kernels in this directory. Tensors are Device::cuda tensors; token ids and
// targets stay host spans (as on the CPU), are range-checked there and copied to the
// device by the call.
//
// Streams. Work is queued on the backend's own (blocking) stream, ordered after what other
// code left on the legacy default stream (the runtime's copies and fills). Calls that
// return a value computed on the device (cross_entropy, sum_of_squares) wait for it; the
// others return once queued: call synchronize() before reading their outputs through
// another stream. Reductions are deterministic: fixed-size partial sums added in order,
// never atomics, so two runs give the same bits.
//
// No CUDA call happens until the first op: argument errors are reported (as Error) even
// on a machine without a GPU.
#pragma once

#include <memory>

#include "model/ops/model_ops.hpp"

namespace longnet {

std::unique_ptr<ModelOps> make_cuda_model_ops(int device = 0);

}  // namespace longnet
