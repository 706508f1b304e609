// `longnet bench attention`: the kernel table, on the CPU (attention_benchmark.cpp) or
// on a CUDA device (cuda_attention_benchmark.cpp, in builds with the CUDA kernels).
#pragma once

#include "bench/problem_options.hpp"

#include <string>

namespace longnet::bench {

struct AttentionBenchOptions {
  ProblemOptions problem;
  std::string device = "cpu";      // cpu or cuda
  std::string direction = "both";  // fwd, bwd or both
  std::string isa;                 // CPU copy; empty: the best this CPU runs
  std::string dtype = "bfloat16";  // CUDA input type
  bool deterministic_dq = true;    // CUDA: dq by its own kernel, not atomicAdd
  int repeats = 5, warmup = 1, sgemm_size = 2048;
  int64_t check_rows = 32;
  std::string csv, json;
};

// The defaults of each device: the CPU table's problem fits the 2-core CI machine; the
// CUDA one is the paper's five patterns at up to 1M tokens.
AttentionBenchOptions cpu_attention_defaults();
AttentionBenchOptions cuda_attention_defaults();

// Both throw CheckFailed when a sampled row disagrees with float64 (nothing is timed).
void run_cpu_attention_bench(const AttentionBenchOptions& options);
void run_cuda_attention_bench(const AttentionBenchOptions& options);

}  // namespace longnet::bench
