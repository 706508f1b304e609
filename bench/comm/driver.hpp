// The shared driver of the communication benchmark (nccl-tests' common.cu, in small):
// for one Collective and every size, an untimed correctness pass, then warm-up and
// timed calls, reduced over ranks into one table row.
//
// Per size, on every rank:
//   1. layout: equal blocks of floor(size / (P * s)) elements, or for the uneven forms
//      blocks u * (j + 1) for rank j with u = floor(size / (s * P (P + 1) / 2)) (u even
//      when P is even, so the mean block total / P is whole);
//   2. correctness: send = input_value(rank, i), receive and guards = kPoison; one call;
//      every receive element, both buffers' guards and the send buffer are compared with
//      what they must hold; the mismatches, summed over ranks, are #wrong;
//   3. barrier, `warmup` calls, barrier, `iters` calls each timed on its own (for NCCL
//      the call and synchronize()); this rank's median; time = max over ranks.
// Sizes, times and bandwidths are defined in bench/README.md.
#pragma once

#include "bench/comm/collective.hpp"
#include "comm/communicator.hpp"

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace longnet::bench {

struct DriverOptions {
  std::int64_t min_bytes = 8;
  std::int64_t max_bytes = 64 << 20;
  std::int64_t step_factor = 2;  // sizes min, min*f, min*f^2, ... <= max
  int iters = 20;                // timed calls per size
  int warmup = 5;                // untimed calls per size, after the correctness pass
  ElementType type = ElementType::float32;
};

struct ResultRow {
  std::string op;          // "all_gather", ...
  std::string type;        // "float", ...
  std::string redop;       // "none" or "sum"
  std::int64_t size = 0;   // bytes: gathered (all_gather) or reduced input (reduce_scatter)
  std::int64_t count = 0;  // elements of the mean per-rank block, size / (P * s)
  double time_us = 0;      // max over ranks of the per-rank median time of one call
  double algbw = 0;        // GB/s: size / time
  double busbw = 0;        // GB/s: Collective::bus_bandwidth of algbw
  std::int64_t wrong = 0;  // mismatching elements, summed over ranks
};

// The type column's name of an element type ("float", "double", "int32", "int64"), and
// the parse of --dtype (those names, plus float32 and float64).
std::string_view type_column_name(ElementType type);
ElementType parse_bench_type(std::string_view text);

// The sizes the options ask for, in bytes.
std::vector<std::int64_t> bench_sizes(const DriverOptions& options);
// The per-rank blocks for one size (step 1 of the file top).
BlockLayout layout_for(std::int64_t size_bytes, std::size_t element_bytes, int ranks, bool uneven);

// Runs `collective` at every size. Collective over `comm` (the communicator measured)
// and `control` (an MPI communicator over the same ranks, in host memory, that carries
// the reductions of times and #wrong). on_row is called on every rank for each row.
std::vector<ResultRow> run_collective(const Collective& collective, Communicator& comm,
                                      Communicator& control, const DriverOptions& options,
                                      const std::function<void(const ResultRow&)>& on_row);

}  // namespace longnet::bench
