#include "bench/comm/report.hpp"

#include "runtime/error.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <map>

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

std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<int>(c));
      continue;
    }
    out += c;
  }
  return out + "\"";
}

std::ofstream open_output(const std::string& path) {
  std::ofstream out(path);
  LONGNET_CHECK(out.good(), "cannot write '{}'", path);
  return out;
}

}  // namespace

void print_header(const RunInfo& info) {
  const DriverOptions& o = info.options;
  fmt::print("# longnet bench comm: the collectives of sequence-parallel attention, "
             "nccl-tests style (definitions: bench/README.md)\n");
  fmt::print("# backend {} ({}), P={} ranks, host {}, {}\n", info.backend, info.library,
             info.ranks, info.host, info.date);
  for (const std::string& line : info.rank_lines) fmt::print("#   {}\n", line);
  fmt::print("# dtype {}; sizes {} to {}, step x{}; per size: 1 checked call, {} warm-up, {} timed\n",
             type_column_name(o.type), readable_bytes(o.min_bytes), readable_bytes(o.max_bytes),
             o.step_factor, o.warmup, o.iters);
  fmt::print("# time = max over ranks of the rank's median time of one call; algbw = size / time;"
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
             row.size, row.count, row.type, row.redop, row.time_us, row.algbw, row.busbw, row.wrong);
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

void write_csv(const std::string& path, const RunInfo& info, const std::vector<ResultRow>& rows) {
  std::ofstream out = open_output(path);
  out << "backend,ranks,host,date,op,size_bytes,count,type,redop,time_us,algbw_GBps,busbw_GBps,"
         "wrong,warmup,iters\n";
  for (const ResultRow& r : rows) {
    out << fmt::format("{},{},{},{},{},{},{},{},{},{:.3f},{:.4f},{:.4f},{},{},{}\n", info.backend,
                       info.ranks, info.host, info.date, r.op, r.size, r.count, r.type, r.redop,
                       r.time_us, r.algbw, r.busbw, r.wrong, info.options.warmup, info.options.iters);
  }
}

void write_json(const std::string& path, const RunInfo& info, const std::vector<ResultRow>& rows) {
  std::ofstream out = open_output(path);
  out << "{\n";
  out << fmt::format("  \"benchmark\": \"longnet bench comm\",\n  \"backend\": {},\n  \"library\": {},\n"
                     "  \"ranks\": {},\n  \"host\": {},\n  \"date\": {},\n  \"warmup\": {},\n"
                     "  \"iters\": {},\n  \"time\": \"max over ranks of the per-rank median of one "
                     "call, microseconds\",\n  \"rows\": [\n",
                     json_string(info.backend), json_string(info.library), info.ranks,
                     json_string(info.host), json_string(info.date), info.options.warmup,
                     info.options.iters);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const ResultRow& r = rows[i];
    out << fmt::format("    {{\"op\": {}, \"size_bytes\": {}, \"count\": {}, \"type\": {}, "
                       "\"redop\": {}, \"time_us\": {:.3f}, \"algbw_GBps\": {:.4f}, "
                       "\"busbw_GBps\": {:.4f}, \"wrong\": {}}}{}\n",
                       json_string(r.op), r.size, r.count, json_string(r.type), json_string(r.redop),
                       r.time_us, r.algbw, r.busbw, r.wrong, i + 1 < rows.size() ? "," : "");
  }
  out << "  ]\n}\n";
}

}  // namespace longnet::bench
