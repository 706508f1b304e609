// The measurement under every sequence-parallel benchmark (`longnet bench sp-attention`,
// `longnet bench scaling`): inputs for one rank's shard, an untimed forward and backward
// spot-checked against float64 from the definition, and per-call wall, compute and
// communication times.
#pragma once

#include <CLI/CLI.hpp>
#include "bench/stats.hpp"

#include "comm/communicator.hpp"
#include "kernels/dilated_attention_config.hpp"
#include "model/sequence_parallel_attention.hpp"
#include "runtime/tensor.hpp"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace longnet::bench {

struct SpCheckOptions {
  int64_t rows = 16;                 // sampled rows per rank, its first and last included
  int64_t limit = int64_t{1} << 24;  // largest B*N*H*D for which ranks build full inputs
  double tolerance = 1e-5;
};

// The options of every sequence-parallel measurement on a benchmark's command: --isa,
// --repeats, --warmup, --check-rows, --check-limit and --tolerance.
void add_measurement_options(CLI::App& command, std::string& isa, int& repeats, int& warmup,
                             SpCheckOptions& check);

struct SpCheckResult {
  bool ran = false;
  double o = 0, lse = 0, dq = 0;              // worst over ranks
  int64_t rows = 0, coverage_mismatches = 0;  // summed over ranks
  bool passed(double tolerance) const {
    return !ran ||
           (o <= tolerance && lse <= tolerance && dq <= tolerance && coverage_mismatches == 0);
  }
};

struct SpInputs {
  Tensor q, k, v, dout;
};

// This rank's shard of the inputs. When B*N*H*D <= check.limit, every rank builds the
// full tensors from fixed seeds and takes its shard, and one forward and one backward
// with NaN-poisoned outputs are spot-checked (o, lse, dq) against float64; the result,
// agreed over `group`, goes to `result`. Above the limit each rank draws its own random
// shard (the values do not matter for timing) and result.ran is false.
SpInputs make_sp_inputs_and_check(Communicator& group, SequenceParallelAttention& sp,
                                  const DilatedAttentionConfig& config, const AttentionShape& shape,
                                  const SpCheckOptions& check, SpCheckResult& result);

// Per-call times of one direction on one rank, in seconds.
struct CallTimes {
  std::vector<double> wall, compute, communication;
};

// `repeats` calls of fn, each after a barrier on `group`; compute and communication are
// the growth of sp.timing() across each call.
CallTimes time_sp_calls(Communicator& group, const SequenceParallelAttention& sp, int repeats,
                        const std::function<void()>& fn);

// `warmup` untimed forward+backward pairs on `in`, then `repeats` timed forward calls and
// `repeats` timed backward calls, each direction with the traffic its calls moved (the
// counters are reset before each).
struct SpTimedCalls {
  CallTimes forward, backward;
  std::vector<PatternTraffic> forward_traffic, backward_traffic;
};
SpTimedCalls time_sp_forward_backward(Communicator& group, SequenceParallelAttention& sp,
                                      const SpInputs& in, int warmup, int repeats);

// "rank 0 may run on 1 of 2 CPUs": mpirun binds ranks to cores by default, which
// silently serialises a rank's OpenMP threads; headers say so.
std::string affinity_note(int rank);

}  // namespace longnet::bench
