#include "bench/comm/report.hpp"

#include "runtime/error.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <map>
#include <string>

namespace longnet::bench {
namespace {

// "64 MiB", "8 B": a size as a reader wants it in the header.
std::string readable_bytes(std::int64_t bytes) {
  constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB"};
  int unit = 0;
  while (unit < 3 && bytes >= 1024 && bytes % 1024 == 0) {
    bytes /= 1024;
    ++unit;
  }
  return fmt::format("{} {}", bytes, kUnits[unit]);
}

}  // namespace

void print_header(const RunInfo& info) {
  const DriverOptions& o = info.options;
  fmt::print(
      "# longnet bench comm: the collectives of sequence-parallel attention, "
      "nccl-tests style (definitions: bench/README.md)\n");
  fmt::print("# backend {} ({}), P={} ranks, host {}, {}\n", info.backend, info.library, info.ranks,
             info.host, info.date);
  for (const std::string& line : info.rank_lines) fmt::print("#   {}\n", line);
  fmt::print(
      "# dtype {}; sizes {} to {}, step x{}; per size: 1 checked call, {} warm-up, {} timed\n",
      type_column_name(o.type), readable_bytes(o.min_bytes), readable_bytes(o.max_bytes),
      o.step_factor, o.warmup, o.iters);
  fmt::print(
      "# time = max over ranks of the rank's median time of one call; algbw = size / time;"
      " busbw = algbw * (P-1)/P; GB = 1e9 B\n");
  fmt::print("#\n");
  fmt::print("# {:>15} {:>12} {:>12} {:>7} {:>6} {:>11} {:>8} {:>8} {:>7}\n", "op", "size", "count",
             "type", "redop", "time", "algbw", "busbw", "#wrong");
  fmt::print("# {:>15} {:>12} {:>12} {:>7} {:>6} {:>11} {:>8} {:>8} {:>7}\n", "", "(B)",
             "(elements)", "", "", "(us)", "(GB/s)", "(GB/s)", "");
  std::fflush(stdout);
}

void print_row(const ResultRow& row) {
  fmt::print("  {:>15} {:>12} {:>12} {:>7} {:>6} {:>11.2f} {:>8.3f} {:>8.3f} {:>7}\n", row.op,
             row.size, row.count, row.type, row.redop, row.time_us, row.algbw, row.busbw,
             row.wrong);
  std::fflush(stdout);
}

void print_footer(const std::vector<ResultRow>& rows) {
  std::int64_t wrong = 0;
  std::map<std::string, std::pair<double, int>> busbw;  // op -> (sum, rows)
  std::vector<std::string> order;
  for (const ResultRow& row : rows) {
    wrong += row.wrong;
    if (!busbw.contains(row.op)) order.push_back(row.op);
    auto& [sum, n] = busbw[row.op];
    sum += row.busbw;
    ++n;
  }
  fmt::print("# #wrong in total: {} ({})\n", wrong, wrong == 0 ? "OK" : "FAILED");
  for (const std::string& op : order) {
    const auto& [sum, n] = busbw[op];
    fmt::print("# average busbw over sizes, {}: {:.3f} GB/s\n", op, sum / n);
  }
  std::fflush(stdout);
}

ResultTable result_table(const RunInfo& info, const std::vector<ResultRow>& rows) {
  ResultTable table;
  table.benchmark = "longnet bench comm";
  table.info = {{"backend", info.backend},
                {"library", info.library},
                {"ranks", std::to_string(info.ranks)},
                {"host", info.host},
                {"date", info.date},
                {"warmup", std::to_string(info.options.warmup)},
                {"iters", std::to_string(info.options.iters)},
                {"time", "max over ranks of the per-rank median of one call, microseconds"}};
  table.columns = {"backend",    "ranks",      "host",  "date",   "op",
                   "size_bytes", "count",      "type",  "redop",  "time_us",
                   "algbw_GBps", "busbw_GBps", "wrong", "warmup", "iters"};
  for (const ResultRow& r : rows) {
    table.add_row({info.backend, std::to_string(info.ranks), info.host, info.date, r.op,
                   std::to_string(r.size), std::to_string(r.count), r.type, r.redop,
                   fmt::format("{:.3f}", r.time_us), fmt::format("{:.4f}", r.algbw),
                   fmt::format("{:.4f}", r.busbw), std::to_string(r.wrong),
                   std::to_string(info.options.warmup), std::to_string(info.options.iters)});
  }
  return table;
}

}  // namespace longnet::bench
