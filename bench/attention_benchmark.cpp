// `longnet bench attention`: the dilated-attention kernel table (CPU, or CUDA with
// --device cuda).
//
// For each sequence length: one untimed pass whose output is spot-checked against a
// double-precision evaluation of sampled rows (a wrong kernel is never timed), then
// warm-up and the median of repeated runs, forward and backward. On the CPU the sgemm
// rate of the linked BLAS is measured in the same run and each row reports its share
// of it. Output: a '#'-headed fixed-width table on stdout, the same rows as CSV and JSON.
// FLOP convention (bench/README.md): 4*D per allowed (query, key) pair and head in the
// forward, 2.5x that in the backward.
#include "bench/attention_benchmark.hpp"
#include "longnet/config.hpp"
#include "runtime/check_failed.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdio>
#include <memory>

#include "bench/bench_commands.hpp"
#include "bench/result_table.hpp"
#include "bench/sgemm_rate.hpp"
#include "bench/timing.hpp"
#include "kernels/dilated_attention_factory.hpp"
#include "kernels/dilated_attention_spot_check.hpp"
#include "runtime/random_fill.hpp"

namespace longnet::bench {

AttentionBenchOptions cpu_attention_defaults() {
  AttentionBenchOptions o;
  o.problem = {.tokens = {4096, 16384, 65536},
               .batch = 1,
               .heads = 8,
               .head_dim = 64,
               .segments = {2048, 4096, 8192, 16384},
               .rates = {1, 2, 4, 8},
               .offsets = "interleaved"};
  return o;
}

AttentionBenchOptions cuda_attention_defaults() {
  AttentionBenchOptions o;
  o.device = "cuda";
  o.problem = {.tokens = {32768, 131072, 524288, 1048576},
               .batch = 1,
               .heads = 16,
               .head_dim = 128,
               .segments = {2048, 4096, 8192, 16384, 32768},
               .rates = {1, 2, 4, 6, 12},
               .offsets = "grouped"};
  o.repeats = 10;
  o.warmup = 3;
  o.check_rows = 16;
  return o;
}

void run_cpu_attention_bench(const AttentionBenchOptions& opt) {
  constexpr double kTolerance = 1e-5;
  const auto config = opt.problem.config();
  validate_config(config);
  auto kernels = make_dilated_attention(Device::cpu, DType::float32, parse_cpu_isa_option(opt.isa));
  const SgemmRate sgemm = measure_sgemm(opt.sgemm_size, opt.repeats);
  const bool do_forward = opt.direction != "bwd", do_backward = opt.direction != "fwd";

  ResultTable table{.benchmark = "longnet bench attention",
                    .info = {{"backend", std::string(kernels->name())},
                             {"machine", machine_description()},
                             {"date", utc_now()},
                             {"config", config.describe()},
                             {"sgemm_gflops", fmt::format("{:.3f}", sgemm.gflops)},
                             {"repeats", std::to_string(opt.repeats)},
                             {"warmup", std::to_string(opt.warmup)}},
                    .columns = {"backend", "N", "B", "H", "D", "segment_lengths", "dilation_rates",
                                "causal", "direction", "median_ms", "gflops", "sgemm_gflops",
                                "percent_sgemm", "check_error"},
                    .text_columns = {"segment_lengths", "dilation_rates"}};
  fmt::print("# longnet bench attention: {} on {}\n", kernels->name(), machine_description());
  fmt::print("# config: {}  B={} H={} D={}  median of {} runs after {} warm-up\n",
             config.describe(), opt.problem.batch, opt.problem.heads, opt.problem.head_dim,
             opt.repeats, opt.warmup);
  fmt::print("# sgemm {}^3 (linked BLAS): {:.1f} GFLOP/s\n", sgemm.size, sgemm.gflops);
  fmt::print("# {:>9} {:>4} {:>4} {:>6} {:>4} {:>11} {:>9} {:>7} {:>10}\n", "N", "H", "D", "causal",
             "dir", "median_ms", "GFLOP/s", "%sgemm", "check_err");

  for (int64_t n : opt.problem.tokens) {
    const AttentionShape shape = opt.problem.shape(n);
    const Shape full = qkv_shape(shape);
    const Tensor q = random_tensor(full, 1), k = random_tensor(full, 2), v = random_tensor(full, 3);
    AttentionOutputs out = run_forward(*kernels, config, q, k, v);
    const auto sample = sample_rows(shape, opt.check_rows, 7);
    const SpotCheckError fwd_check = spot_check_forward(config, q, k, v, out.o, out.lse, sample);
    if (fwd_check.o > kTolerance || fwd_check.coverage_mismatches > 0) {
      throw CheckFailed(
          fmt::format("forward check failed at N={}: relative error {:.3g} (> {:.1g}), {} coverage "
                      "mismatches; a wrong kernel is not timed",
                      n, fwd_check.o, kTolerance, fwd_check.coverage_mismatches));
    }
    auto report = [&](const char* dir, double ms, double flops, double err) {
      const double gflops = flops / (ms * 1e6), percent = 100.0 * gflops / sgemm.gflops;
      fmt::print("  {:>9} {:>4} {:>4} {:>6} {:>4} {:>11.2f} {:>9.1f} {:>7.1f} {:>10.2e}\n", n,
                 opt.problem.heads, opt.problem.head_dim, config.causal ? 1 : 0, dir, ms, gflops,
                 percent, err);
      std::fflush(stdout);
      table.add_row({kernels->name(), std::to_string(n), std::to_string(opt.problem.batch),
                     std::to_string(opt.problem.heads), std::to_string(opt.problem.head_dim),
                     fmt::format("{}", fmt::join(opt.problem.segments, " ")),
                     fmt::format("{}", fmt::join(opt.problem.rates, " ")),
                     config.causal ? "1" : "0", dir, fmt::format("{:.4f}", ms),
                     fmt::format("{:.3f}", gflops), fmt::format("{:.3f}", sgemm.gflops),
                     fmt::format("{:.2f}", percent), fmt::format("{:.3e}", err)});
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
      if (bwd_check.dq > kTolerance) {
        throw CheckFailed(fmt::format(
            "backward check failed at N={}: dq relative error {:.3g} (> {:.1g}); a wrong "
            "kernel is not timed",
            n, bwd_check.dq, kTolerance));
      }
      const double ms = median_ms(
          [&] {
            kernels->backward(config, q, k, v, out.o, out.lse, dout, grads.dq, grads.dk, grads.dv);
          },
          opt.warmup, opt.repeats);
      report("bwd", ms, backward_flops(config, shape), bwd_check.dq);
    }
  }
  write_outputs(table, opt.csv, opt.json);
}

#ifndef LONGNET_HAVE_CUDA_KERNELS
void run_cuda_attention_bench(const AttentionBenchOptions&) {
  fail(
      "--device cuda: this build has no CUDA kernels (configured with LONGNET_CUDA=OFF or "
      "without nvcc); rebuild with nvcc on PATH or -DCMAKE_CUDA_COMPILER=.../nvcc");
}
#endif

void add_attention_bench(CLI::App& bench) {
  auto opt = std::make_shared<AttentionBenchOptions>(cpu_attention_defaults());
  CLI::App* cmd = bench.add_subcommand(
      "attention",
      "The dilated-attention kernels: correctness-checked, median timings, GFLOP/s (CPU: "
      "also % of the BLAS sgemm rate)");
  add_problem_options(*cmd, opt->problem);
  cmd->add_option("--device", opt->device,
                  "cpu, or cuda (the CUDA kernels; defaults then become the paper's five "
                  "patterns, B=1 H=16 D=128, 32K..1M tokens, bf16)")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  cmd->add_option("--direction", opt->direction,
                  "fwd, bwd or both (CPU; the CUDA table times both)")
      ->check(CLI::IsMember({"fwd", "bwd", "both"}))
      ->capture_default_str();
  cmd->add_option("--isa", opt->isa, "CPU: generic, avx2 or avx512 (default: best available)");
  cmd->add_option("--dtype", opt->dtype, "CUDA: bfloat16, float16 or float32")
      ->capture_default_str();
  cmd->add_flag("!--atomic-dq", opt->deterministic_dq,
                "CUDA: sum dq with atomicAdd in the key-block kernel instead of the "
                "(deterministic, and on an H100 faster) separate dq kernel");
  cmd->add_option("--repeats", opt->repeats, "timed runs per measurement (median reported)");
  cmd->add_option("--warmup", opt->warmup, "untimed warm-up runs");
  cmd->add_option("--sgemm-size", opt->sgemm_size, "CPU: n of the n^3 sgemm reference");
  cmd->add_option("--check-rows", opt->check_rows, "rows spot-checked before timing");
  add_output_options(*cmd, opt->csv, opt->json);
  cmd->callback([opt, cmd] {
    AttentionBenchOptions run = *opt;
    if (run.device == "cuda") {
      // The CUDA table's own defaults for whatever the command line left unset.
      const AttentionBenchOptions cuda = cuda_attention_defaults();
      auto keep_or = [&](const char* name, auto& field, const auto& fallback) {
        if (cmd->count(name) == 0) field = fallback;
      };
      keep_or("--tokens", run.problem.tokens, cuda.problem.tokens);
      keep_or("--heads", run.problem.heads, cuda.problem.heads);
      keep_or("--head-dim", run.problem.head_dim, cuda.problem.head_dim);
      keep_or("--segments", run.problem.segments, cuda.problem.segments);
      keep_or("--rates", run.problem.rates, cuda.problem.rates);
      keep_or("--offsets", run.problem.offsets, cuda.problem.offsets);
      keep_or("--repeats", run.repeats, cuda.repeats);
      keep_or("--warmup", run.warmup, cuda.warmup);
      keep_or("--check-rows", run.check_rows, cuda.check_rows);
      run_cuda_attention_bench(run);
    } else {
      run_cpu_attention_bench(run);
    }
  });
}

}  // namespace longnet::bench
