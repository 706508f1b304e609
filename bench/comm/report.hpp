// The communication benchmark's output: the '#'-headed fixed-width table on stdout (so
// awk and gnuplot read it: every non-data line starts with '#'), and its CSV and JSON
// twins with the same rows. Printed and written by rank 0 only.
#pragma once

#include "bench/comm/driver.hpp"
#include "bench/result_table.hpp"

#include <string>
#include <vector>

namespace longnet::bench {

// What the header states about the run.
struct RunInfo {
  std::string backend;                  // "mpi" or "nccl"
  std::string library;                  // "Open MPI v4.1.4", "NCCL 2.27.3"
  int ranks = 0;                        // P
  std::string host;                     // rank 0's host
  std::string date;                     // UTC, ISO 8601
  std::vector<std::string> rank_lines;  // one per rank: pid, host, device
  DriverOptions options;
};

void print_header(const RunInfo& info);
void print_row(const ResultRow& row);
// The footer: #wrong in total and each op's busbw averaged over its sizes.
void print_footer(const std::vector<ResultRow>& rows);

// The rows as a ResultTable (bench/result_table.hpp), for --csv and --json: one CSV row
// per (op, size) with the run's backend, ranks, host, date, warmup and iters repeated;
// the JSON's info also names the library and what the time is.
ResultTable result_table(const RunInfo& info, const std::vector<ResultRow>& rows);

}  // namespace longnet::bench
