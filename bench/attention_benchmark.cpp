// CPU dilated-attention benchmark.
//
// For each sequence length: one untimed pass whose output is spot-checked against a
// double-precision evaluation of sampled rows (a wrong kernel is never timed), then
// warm-up and the median of repeated runs, forward and backward. The sgemm rate of the
// linked BLAS is measured in the same run and each row reports its share of it.
// Output: a '#'-headed fixed-width table on stdout and the same rows as CSV.
// FLOP convention (bench/README.md): 4*D per allowed (query, key) pair and head in the
// forward, 2.5x that in the backward.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>

#include "bench/problem_options.hpp"
#include "bench/sgemm_rate.hpp"
#include "bench/timing.hpp"
#include "kernels/cpu/dilated_attention_cpu.hpp"
#include "kernels/dilated_attention_spot_check.hpp"
#include "runtime/random_fill.hpp"

namespace longnet::bench {
namespace {

struct Options {
  ProblemOptions problem{.tokens = {4096, 16384, 65536},
                         .batch = 1,
                         .heads = 8,
                         .head_dim = 64,
                         .segments = {2048, 4096, 8192, 16384},
                         .rates = {1, 2, 4, 8},
                         .offsets = "interleaved"};
  std::string direction = "both";
  std::string isa;
  int repeats = 5, warmup = 1, sgemm_size = 2048;
  int64_t check_rows = 32;
  double tolerance = 1e-5;
  std::string csv = "bench_attention_cpu.csv";
};

struct Row {
  int64_t tokens;
  std::string direction;
  double ms, gflops, percent_sgemm, check_error;
};

int run(const Options& opt) {
  const auto config = opt.problem.config();
  auto kernels =
      make_cpu_dilated_attention(opt.isa.empty() ? default_cpu_isa() : parse_cpu_isa(opt.isa));
  const SgemmRate sgemm = measure_sgemm(opt.sgemm_size, opt.repeats);
  const bool do_forward = opt.direction != "bwd", do_backward = opt.direction != "fwd";

  fmt::print("# longnet CPU dilated attention: {} on {}\n", kernels->name(), machine_description());
  fmt::print("# config: {}  B={} H={} D={}  median of {} runs after {} warm-up\n",
             config.describe(), opt.problem.batch, opt.problem.heads, opt.problem.head_dim,
             opt.repeats, opt.warmup);
  fmt::print("# sgemm {}^3 (linked BLAS): {:.1f} GFLOP/s\n", sgemm.size, sgemm.gflops);
  fmt::print("# {:>9} {:>4} {:>4} {:>6} {:>4} {:>11} {:>9} {:>7} {:>10}\n", "N", "H", "D", "causal",
             "dir", "median_ms", "GFLOP/s", "%sgemm", "check_err");

  std::vector<Row> rows;
  for (int64_t n : opt.problem.tokens) {
    const AttentionShape shape = opt.problem.shape(n);
    const Shape full = qkv_shape(shape);
    const Tensor q = random_tensor(full, 1), k = random_tensor(full, 2), v = random_tensor(full, 3);
    AttentionOutputs out = run_forward(*kernels, config, q, k, v);
    const auto sample = sample_rows(shape, opt.check_rows, 7);
    const SpotCheckError fwd_check = spot_check_forward(config, q, k, v, out.o, out.lse, sample);
    if (fwd_check.o > opt.tolerance || fwd_check.coverage_mismatches > 0) {
      fmt::print(stderr,
                 "bench: forward check FAILED at N={}: rel err {:.3g} (> {:.1g}), {} "
                 "coverage mismatches; not timing a wrong kernel\n",
                 n, fwd_check.o, opt.tolerance, fwd_check.coverage_mismatches);
      return 1;
    }
    auto report = [&](const char* dir, double ms, double flops, double err) {
      Row row{n, dir, ms, flops / (ms * 1e6), 0, err};
      row.percent_sgemm = 100.0 * row.gflops / sgemm.gflops;
      fmt::print("  {:>9} {:>4} {:>4} {:>6} {:>4} {:>11.2f} {:>9.1f} {:>7.1f} {:>10.2e}\n", n,
                 opt.problem.heads, opt.problem.head_dim, config.causal ? 1 : 0, dir, row.ms,
                 row.gflops, row.percent_sgemm, err);
      std::fflush(stdout);
      rows.push_back(row);
    };
    if (do_forward) {
      const double ms = median_ms([&] { kernels->forward(config, q, k, v, out.o, out.lse); },
                                  opt.warmup, opt.repeats);
      report("fwd", ms, forward_flops(config, shape), fwd_check.o);
    }
    if (do_backward) {
      const Tensor dout = random_tensor(full, 4);
      AttentionGradients grads = run_backward(*kernels, config, q, k, v, out, dout);
      const SpotCheckError bwd_check = spot_check_backward(config, q, k, v, dout, grads.dq, sample);
      if (bwd_check.dq > opt.tolerance) {
        fmt::print(stderr, "bench: backward check FAILED at N={}: dq rel err {:.3g} (> {:.1g})\n",
                   n, bwd_check.dq, opt.tolerance);
        return 1;
      }
      const double ms = median_ms(
          [&] {
            kernels->backward(config, q, k, v, out.o, out.lse, dout, grads.dq, grads.dk, grads.dv);
          },
          opt.warmup, opt.repeats);
      report("bwd", ms, backward_flops(config, shape), bwd_check.dq);
    }
  }

  std::ofstream csv(opt.csv);
  LONGNET_CHECK(csv.good(), "cannot write the CSV file '{}'", opt.csv);
  csv << "backend,machine,N,B,H,D,segment_lengths,dilation_rates,causal,direction,median_ms,"
         "gflops,sgemm_gflops,percent_sgemm,check_error\n";
  for (const Row& row : rows) {
    csv << fmt::format(
        "{},\"{}\",{},{},{},{},\"{}\",\"{}\",{},{},{:.4f},{:.3f},{:.3f},{:.2f},{:.3e}\n",
        kernels->name(), machine_description(), row.tokens, opt.problem.batch, opt.problem.heads,
        opt.problem.head_dim, fmt::join(opt.problem.segments, " "),
        fmt::join(opt.problem.rates, " "), config.causal ? 1 : 0, row.direction, row.ms, row.gflops,
        sgemm.gflops, row.percent_sgemm, row.check_error);
  }
  fmt::print("# wrote {}\n", opt.csv);
  return 0;
}

}  // namespace
}  // namespace longnet::bench

int main(int argc, char** argv) {
  longnet::bench::Options opt;
  CLI::App app{"CPU dilated-attention benchmark (correctness-checked, median timings, CSV)"};
  add_problem_options(app, opt.problem);
  app.add_option("--direction", opt.direction, "fwd, bwd or both")
      ->check(CLI::IsMember({"fwd", "bwd", "both"}));
  app.add_option("--isa", opt.isa, "generic, avx2 or avx512 (default: best available)");
  app.add_option("--repeats", opt.repeats, "timed runs per measurement (median reported)");
  app.add_option("--warmup", opt.warmup, "untimed warm-up runs");
  app.add_option("--sgemm-size", opt.sgemm_size, "n of the n^3 sgemm reference");
  app.add_option("--check-rows", opt.check_rows, "rows spot-checked before timing");
  app.add_option("--csv", opt.csv, "CSV output path");
  CLI11_PARSE(app, argc, argv);
  try {
    return longnet::bench::run(opt);
  } catch (const longnet::Error& e) {
    fmt::print(stderr, "bench: error: {}\n", e.what());
    return 2;
  }
}
