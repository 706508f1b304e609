// `longnet attend`: dilated attention on tensors read from an HDF5 file.
//
// Input file: datasets q, k, v (float32 [B, N, H, D]) and, optionally, do (the output
// gradient, same shape); root attributes segment_lengths and dilation_rates (integer
// arrays, one entry per pattern), causal (integer 0 or 1), head_offsets (the string
// "interleaved" or "grouped") and, optionally, scale (float64; default 1/sqrt(D)).
// Output file: o [B, N, H, D] and lse [B, N, H] (float32; lse = -inf and o = 0 on rows
// no pattern covers), plus dq, dk, dv when the input held do, plus the configuration
// and the backend's name as root attributes so that the result describes itself.
//
// Under mpirun, each rank reads only its shard of tokens and runs the sequence-parallel
// op; the output file is the same as one rank's.
//
// The output appears whole or not at all: it is written under a temporary name in its
// own directory and renamed into place, and the temporary is removed on any failure.
// Everything that can be refused (options, attributes, shapes, dtypes, the output
// directory) is refused before the kernels run.
#pragma once

#include "kernels/dilated_attention.hpp"

#include <filesystem>
#include <iosfwd>
#include <string>

namespace CLI {
class App;
}

namespace longnet {

struct AttendOptions {
  std::filesystem::path input;    // --in
  std::filesystem::path output;   // --out
  std::string isa;                // --isa; empty: default_cpu_isa()
  int threads = 0;                // --threads; 0: OpenMP's default (OMP_NUM_THREADS)
  bool quiet = false;             // --quiet: no summary on success
  bool allow_nonfinite = false;   // --allow-nonfinite: skip the NaN/Inf check of the inputs
  bool stats = false;             // --stats: bytes moved per rank and pattern, time split
  std::string device = "cpu";     // --device: cpu or cuda
  std::string dtype = "float32";  // --dtype: float32, bfloat16 or float16 (cuda only)
};

// The whole command: validate, read, run forward (and backward), write the output
// atomically, and print a summary to `out` unless options.quiet.
void run_attend(const AttendOptions& options, std::ostream& out);

// Registers the `attend` subcommand; its callback calls run_attend.
void add_attend_command(CLI::App& app);

}  // namespace longnet
