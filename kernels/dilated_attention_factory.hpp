// The one way to get a dilated-attention op: the backend for a device and input dtype.
#pragma once

#include <memory>
#include <optional>

#include "kernels/cpu/cpu_isa.hpp"
#include "kernels/dilated_attention.hpp"

namespace longnet {

// The backend that runs inputs of `dtype` on `device`: the CPU kernels (instruction set
// `isa`, or default_cpu_isa() when omitted: the best this machine runs, or
// LONGNET_CPU_ISA) or the CUDA kernels (on CUDA device `cuda_device`, deterministic). Errors,
// before any work, name what is missing: an ISA the processor or build cannot run, a dtype the
// backend does not take (the CPU kernels compute in float32), a build without CUDA.
std::unique_ptr<DilatedAttentionOp> make_dilated_attention(Device device, DType dtype,
                                                           std::optional<CpuIsa> isa = {},
                                                           int cuda_device = 0);

}  // namespace longnet
