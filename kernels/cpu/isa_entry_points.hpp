// The entry points every ISA copy of the tile code defines (one namespace each).
// forward_pattern merges one pattern into the running (o, lse); backward_pattern adds
// one pattern's contribution to (dq, dk, dv). Both parallelise over the pattern's tasks
// with OpenMP; patterns must be run one after another.
#pragma once

#include "kernels/attention_tasks.hpp"

#define LONGNET_DECLARE_ISA(ns)                                                      \
  namespace longnet::cpu::ns {                                                       \
  void forward_pattern(const AttentionParams& params, const PatternTasks& pattern);  \
  void backward_pattern(const AttentionParams& params, const PatternTasks& pattern); \
  }

LONGNET_DECLARE_ISA(generic)
LONGNET_DECLARE_ISA(avx2)
LONGNET_DECLARE_ISA(avx512)

#undef LONGNET_DECLARE_ISA
