// The CPU backend of the dilated-attention op.
#pragma once

#include "kernels/cpu/cpu_isa.hpp"
#include "kernels/dilated_attention.hpp"

#include <memory>

namespace longnet {

// isa: which vectorised copy of the tile code to run (default_cpu_isa() when omitted).
// Threads: OpenMP's (OMP_NUM_THREADS).
std::unique_ptr<DilatedAttentionOp> make_cpu_dilated_attention();
std::unique_ptr<DilatedAttentionOp> make_cpu_dilated_attention(CpuIsa isa);

}  // namespace longnet
