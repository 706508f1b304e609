// `longnet bench <name>`: the benchmarks, one file each, as subcommands of `longnet`.
//
// add_bench_command registers the `bench` group and, on it, every benchmark this build
// has (the MPI ones only with LONGNET_MPI, the CUDA table only with the CUDA kernels).
// A benchmark reports a usage problem as longnet::Error (exit status 2) and a failed
// correctness check as longnet::CheckFailed (exit status 1); launch/main.cpp turns them
// into exit statuses. bench/README.md defines every column they print.
#pragma once

#include "longnet/config.hpp"

#include <CLI/CLI.hpp>

namespace longnet::bench {

void add_bench_command(CLI::App& app);

// The benchmarks, each registering its subcommand on the `bench` group.
void add_attention_bench(CLI::App& bench);  // attention_benchmark.cpp: the kernel table
void add_model_bench(CLI::App& bench);      // model_benchmark.cpp: the cost model
void add_train_bench(CLI::App& bench);      // train_benchmark.cpp: training throughput
#ifdef LONGNET_HAVE_MPI
void add_comm_bench(CLI::App& bench);          // comm_benchmark.cpp: nccl-tests style
void add_sp_attention_bench(CLI::App& bench);  // sp_attention_benchmark.cpp: per rank
void add_scaling_bench(CLI::App& bench);       // scaling_benchmark.cpp: weak and strong
#endif

}  // namespace longnet::bench
