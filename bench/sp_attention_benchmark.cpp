// `longnet bench sp-attention`: sequence-parallel dilated attention on all ranks, time
// per rank split into compute and communication, and the bytes each rank moves per
// pattern. Run under mpirun (`longnet bench scaling` compares rank counts):
//
//   OMP_NUM_THREADS=1 mpirun -np 2 build/launch/longnet bench sp-attention --tokens 16384
//
// For each sequence length N:
//   1. correctness, untimed: one forward and one backward of SequenceParallelAttention on
//      this rank's shard, then --check-rows sampled rows of the shard (its first and last
//      token included) are evaluated from the definition in float64
//      (kernels/dilated_attention_spot_check.hpp) and compared with o, lse and dq. That
//      evaluation reads keys from the whole sequence, so every rank builds the full
//      inputs from the same seeds and takes its shard of them; above --check-limit
//      elements per tensor the check is skipped and the header says so. An error above
//      --tolerance on any rank stops the benchmark before any timing;
//   2. --warmup forward and backward calls;
//   3. counters reset; --repeats forward calls, each after a barrier; then counters
//      reset again and --repeats backward calls. Each call's wall time is taken on this
//      rank, and its compute and communication times are the growth of sp.timing()
//      across the call (communication is time inside collectives, including waiting for
//      the slowest member of the group; compute is kernels, packing and unpacking).
// Rank 0 prints one row per rank (medians over the calls), a table of the bytes each
// rank moves per pattern and call (sp.traffic()), and a summary: tokens/s and effective
// GFLOP/s over the global shape, against the slowest rank's median. bench/README.md
// defines every column. Exit status 0, 1 when the check fails, 2 for a usage error.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <cstdio>
#include <memory>

#include "bench/bench_commands.hpp"
#include "bench/problem_options.hpp"
#include "bench/result_table.hpp"
#include "bench/sp_measurement.hpp"
#include "bench/timing.hpp"
#include "comm/collective_step.hpp"
#include "comm/communicator_factory.hpp"
#include "kernels/dilated_attention_factory.hpp"
#include "model/sequence_parallel_attention.hpp"
#include "runtime/check_failed.hpp"

namespace longnet::bench {
namespace {

constexpr double kBytesPerMB = 1e6;

struct Options {
  ProblemOptions problem{.tokens = {16384},
                         .batch = 1,
                         .heads = 8,
                         .head_dim = 64,
                         .segments = {2048, 4096, 8192},
                         .rates = {1, 2, 4},
                         .offsets = "interleaved"};
  std::string isa;
  int repeats = 5, warmup = 1;
  SpCheckOptions check;
  std::string csv, json, traffic_csv;
};

// What each rank contributes to rank 0's table, gathered as doubles (byte counts per
// call are far below 2^53, so they travel exactly).
enum RankField : std::size_t {
  kShard,
  kFwdWall,
  kFwdCompute,
  kFwdComm,
  kBwdWall,
  kBwdCompute,
  kBwdComm,  // medians
  kFwdWallMean,
  kFwdComputeMean,
  kFwdCommMean,
  kBwdWallMean,
  kBwdComputeMean,
  kBwdCommMean,
  kFwdSent,
  kFwdReceived,
  kBwdSent,
  kBwdReceived,  // bytes per call
  kRankFields
};
// Per pattern: bytes per call.
enum PatternField : std::size_t {
  kFwdGatherSent,
  kFwdGatherReceived,
  kBwdGatherSent,
  kBwdGatherReceived,
  kBwdScatterSent,
  kBwdScatterReceived,
  kPatternFields
};

std::string pattern_label(const DilationPattern& p) {
  return fmt::format("w{}r{}", p.segment_length, p.dilation_rate);
}

// The per-rank rows and the per-pattern traffic rows, written at the end as CSV/JSON.
struct Tables {
  ResultTable ranks, traffic;
};

// Returns false when the check failed (every rank alike).
bool run_one(Communicator& world, DilatedAttentionOp& kernels, const DilatedAttentionConfig& config,
             int64_t tokens, const Options& opt, Tables& tables) {
  const int size = world.size(), rank = world.rank();
  const bool printer = rank == 0;
  const AttentionShape shape = opt.problem.shape(tokens);
  SequenceParallelAttention sp(world, config, shape, kernels);
  const AttentionShape local = sp.local_shape();

  SpCheckResult check;
  const SpInputs in = make_sp_inputs_and_check(world, sp, config, shape, opt.check, check);
  const bool check_ok = check.passed(opt.check.tolerance);
  if (printer) {
    fmt::print("# N={}: ", tokens);
    if (check.ran)
      fmt::print(
          "check of {} sampled rows (o, lse, dq against float64 from the definition): "
          "o {:.2e}, lse {:.2e}, dq {:.2e} (max over ranks), {} coverage mismatches: {}\n",
          check.rows, check.o, check.lse, check.dq, check.coverage_mismatches,
          check_ok ? "OK"
                   : fmt::format("FAILED (tolerance {:.0e}); not timing", opt.check.tolerance));
    else
      fmt::print(
          "check SKIPPED: B*N*H*D = {} elements per tensor > --check-limit {} (every rank "
          "would build the full inputs); inputs are per-rank random shards\n",
          shape.elements(), opt.check.limit);
    std::fflush(stdout);
  }
  if (!check_ok) return false;

  const SpTimedCalls timed = time_sp_forward_backward(world, sp, in, opt.warmup, opt.repeats);
  const CallTimes& fwd = timed.forward;
  const CallTimes& bwd = timed.backward;
  const std::vector<PatternTraffic>& fwd_traffic = timed.forward_traffic;
  const std::vector<PatternTraffic>& bwd_traffic = timed.backward_traffic;

  // This rank's row and per-pattern bytes, per call.
  const auto calls = static_cast<int64_t>(opt.repeats);
  const std::size_t patterns = config.patterns.size();
  std::vector<double> mine(kRankFields, 0.0);
  std::vector<int64_t> mine_patterns(patterns * kPatternFields, 0);
  mine[kShard] = static_cast<double>(local.tokens);
  mine[kFwdWall] = median(fwd.wall);
  mine[kFwdCompute] = median(fwd.compute);
  mine[kFwdComm] = median(fwd.communication);
  mine[kBwdWall] = median(bwd.wall);
  mine[kBwdCompute] = median(bwd.compute);
  mine[kBwdComm] = median(bwd.communication);
  mine[kFwdWallMean] = mean(fwd.wall);
  mine[kFwdComputeMean] = mean(fwd.compute);
  mine[kFwdCommMean] = mean(fwd.communication);
  mine[kBwdWallMean] = mean(bwd.wall);
  mine[kBwdComputeMean] = mean(bwd.compute);
  mine[kBwdCommMean] = mean(bwd.communication);
  for (std::size_t p = 0; p < patterns; ++p) {
    int64_t* f = &mine_patterns[p * kPatternFields];
    f[kFwdGatherSent] = fwd_traffic[p].gather_sent / calls;
    f[kFwdGatherReceived] = fwd_traffic[p].gather_received / calls;
    f[kBwdGatherSent] = bwd_traffic[p].gather_sent / calls;
    f[kBwdGatherReceived] = bwd_traffic[p].gather_received / calls;
    f[kBwdScatterSent] = bwd_traffic[p].scatter_sent / calls;
    f[kBwdScatterReceived] = bwd_traffic[p].scatter_received / calls;
    mine[kFwdSent] += static_cast<double>(f[kFwdGatherSent]);
    mine[kFwdReceived] += static_cast<double>(f[kFwdGatherReceived]);
    mine[kBwdSent] += static_cast<double>(f[kBwdGatherSent] + f[kBwdScatterSent]);
    mine[kBwdReceived] += static_cast<double>(f[kBwdGatherReceived] + f[kBwdScatterReceived]);
  }
  std::vector<double> all(kRankFields * static_cast<std::size_t>(size));
  std::vector<int64_t> all_patterns(mine_patterns.size() * static_cast<std::size_t>(size));
  world.all_gather<double>(mine, all, "rank rows");
  world.all_gather<int64_t>(mine_patterns, all_patterns, "pattern rows");
  if (!printer) return true;

  auto field = [&](int r, RankField f) {
    return all[static_cast<std::size_t>(r) * kRankFields + f];
  };
  double fwd_max = 0, bwd_max = 0;
  for (int r = 0; r < size; ++r) {
    fwd_max = std::max(fwd_max, field(r, kFwdWall));
    bwd_max = std::max(bwd_max, field(r, kBwdWall));
  }
  const double fwd_flops = forward_flops(config, shape), bwd_flops = backward_flops(config, shape);
  const double global_tokens = static_cast<double>(shape.batch * shape.tokens);

  fmt::print("# {:>8} {:>4} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
             "N", "rank", "shard", "fwd", "fwd_comp", "fwd_comm", "bwd", "bwd_comp", "bwd_comm",
             "fwd_sent", "fwd_recv", "bwd_sent", "bwd_recv");
  fmt::print("# {:>8} {:>4} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
             "(tokens)", "", "(tokens)", "(ms)", "(ms)", "(ms)", "(ms)", "(ms)", "(ms)", "(MB)",
             "(MB)", "(MB)", "(MB)");
  for (int r = 0; r < size; ++r) {
    fmt::print(
        "  {:>8} {:>4} {:>8} {:>9.2f} {:>9.2f} {:>9.2f} {:>9.2f} {:>9.2f} {:>9.2f} {:>9.3f} "
        "{:>9.3f} {:>9.3f} {:>9.3f}\n",
        tokens, r, static_cast<int64_t>(field(r, kShard)), 1e3 * field(r, kFwdWall),
        1e3 * field(r, kFwdCompute), 1e3 * field(r, kFwdComm), 1e3 * field(r, kBwdWall),
        1e3 * field(r, kBwdCompute), 1e3 * field(r, kBwdComm), field(r, kFwdSent) / kBytesPerMB,
        field(r, kFwdReceived) / kBytesPerMB, field(r, kBwdSent) / kBytesPerMB,
        field(r, kBwdReceived) / kBytesPerMB);
  }
  fmt::print(
      "# summary N={} P={}: fwd {:.2f} ms, {:.0f} tokens/s, {:.1f} GFLOP/s | bwd {:.2f} ms, "
      "{:.0f} tokens/s, {:.1f} GFLOP/s | fwd+bwd {:.0f} tokens/s  (slowest rank's median; "
      "effective FLOPs of the global shape)\n",
      tokens, size, 1e3 * fwd_max, global_tokens / fwd_max, fwd_flops / fwd_max / 1e9,
      1e3 * bwd_max, global_tokens / bwd_max, bwd_flops / bwd_max / 1e9,
      global_tokens / (fwd_max + bwd_max));
  fmt::print(
      "# traffic per call (bytes; comm/comm_counters.hpp: sent = own bytes others read, "
      "received = others' bytes read), per rank and pattern\n");
  fmt::print("# {:>8} {:>4} {:>10} {:>11} {:>11} {:>11} {:>11} {:>11} {:>11}\n", "N", "rank",
             "pattern", "fwd_g_sent", "fwd_g_recv", "bwd_g_sent", "bwd_g_recv", "bwd_rs_sent",
             "bwd_rs_recv");
  for (int r = 0; r < size; ++r) {
    for (std::size_t p = 0; p < patterns; ++p) {
      const int64_t* f =
          &all_patterns[(static_cast<std::size_t>(r) * patterns + p) * kPatternFields];
      fmt::print("  {:>8} {:>4} {:>10} {:>11} {:>11} {:>11} {:>11} {:>11} {:>11}\n", tokens, r,
                 pattern_label(config.patterns[p]), f[kFwdGatherSent], f[kFwdGatherReceived],
                 f[kBwdGatherSent], f[kBwdGatherReceived], f[kBwdScatterSent],
                 f[kBwdScatterReceived]);
      tables.traffic.add_row(
          {std::to_string(tokens), std::to_string(size), std::to_string(r),
           pattern_label(config.patterns[p]), std::to_string(f[kFwdGatherSent]),
           std::to_string(f[kFwdGatherReceived]), std::to_string(f[kBwdGatherSent]),
           std::to_string(f[kBwdGatherReceived]), std::to_string(f[kBwdScatterSent]),
           std::to_string(f[kBwdScatterReceived])});
    }
  }
  std::fflush(stdout);

  auto ms = [](double seconds) { return fmt::format("{:.4f}", 1e3 * seconds); };
  auto bytes = [](double b) { return std::to_string(static_cast<int64_t>(b)); };
  for (int r = 0; r < size; ++r) {
    tables.ranks.add_row({std::to_string(tokens),
                          std::to_string(opt.problem.batch),
                          std::to_string(opt.problem.heads),
                          std::to_string(opt.problem.head_dim),
                          std::to_string(size),
                          fmt::format("{}", fmt::join(opt.problem.segments, " ")),
                          fmt::format("{}", fmt::join(opt.problem.rates, " ")),
                          config.causal ? "1" : "0",
                          std::string(head_offsets_name(config.head_offsets)),
                          std::to_string(r),
                          bytes(field(r, kShard)),
                          ms(field(r, kFwdWall)),
                          ms(field(r, kFwdCompute)),
                          ms(field(r, kFwdComm)),
                          ms(field(r, kBwdWall)),
                          ms(field(r, kBwdCompute)),
                          ms(field(r, kBwdComm)),
                          ms(field(r, kFwdWallMean)),
                          ms(field(r, kFwdComputeMean)),
                          ms(field(r, kFwdCommMean)),
                          ms(field(r, kBwdWallMean)),
                          ms(field(r, kBwdComputeMean)),
                          ms(field(r, kBwdCommMean)),
                          bytes(field(r, kFwdSent)),
                          bytes(field(r, kFwdReceived)),
                          bytes(field(r, kBwdSent)),
                          bytes(field(r, kBwdReceived)),
                          ms(fwd_max),
                          fmt::format("{:.1f}", global_tokens / fwd_max),
                          fmt::format("{:.3f}", fwd_flops / fwd_max / 1e9),
                          ms(bwd_max),
                          fmt::format("{:.1f}", global_tokens / bwd_max),
                          fmt::format("{:.3f}", bwd_flops / bwd_max / 1e9),
                          check.ran ? "1" : "0",
                          fmt::format("{:.3e}", check.o),
                          fmt::format("{:.3e}", check.dq)});
  }
  return true;
}

void run(const Options& opt) {
  const auto config = opt.problem.config();
  validate_config(config);
  auto world = make_communicator("mpi", "sp bench");
  auto kernels = make_dilated_attention(Device::cpu, DType::float32, parse_cpu_isa_option(opt.isa));
  const bool printer = world->rank() == 0;

  Tables tables;
  tables.ranks = {.benchmark = "longnet bench sp-attention",
                  .info = {{"date", utc_now()},
                           {"ranks", std::to_string(world->size())},
                           {"kernels", std::string(kernels->name())},
                           {"machine", machine_description()},
                           {"config", config.describe()},
                           {"repeats", std::to_string(opt.repeats)},
                           {"warmup", std::to_string(opt.warmup)}},
                  .columns = {"N",
                              "B",
                              "H",
                              "D",
                              "P",
                              "segment_lengths",
                              "dilation_rates",
                              "causal",
                              "head_offsets",
                              "rank",
                              "shard_tokens",
                              "fwd_ms",
                              "fwd_compute_ms",
                              "fwd_comm_ms",
                              "bwd_ms",
                              "bwd_compute_ms",
                              "bwd_comm_ms",
                              "fwd_mean_ms",
                              "fwd_compute_mean_ms",
                              "fwd_comm_mean_ms",
                              "bwd_mean_ms",
                              "bwd_compute_mean_ms",
                              "bwd_comm_mean_ms",
                              "fwd_bytes_sent",
                              "fwd_bytes_received",
                              "bwd_bytes_sent",
                              "bwd_bytes_received",
                              "fwd_max_ms",
                              "fwd_tokens_per_s",
                              "fwd_gflops",
                              "bwd_max_ms",
                              "bwd_tokens_per_s",
                              "bwd_gflops",
                              "checked",
                              "check_o_err",
                              "check_dq_err"},
                  .text_columns = {"segment_lengths", "dilation_rates"}};
  tables.traffic = {.benchmark = "longnet bench sp-attention (traffic per pattern)",
                    .info = tables.ranks.info,
                    .columns = {"N", "P", "rank", "pattern", "fwd_gather_sent",
                                "fwd_gather_received", "bwd_gather_sent", "bwd_gather_received",
                                "bwd_scatter_sent", "bwd_scatter_received"}};

  if (printer) {
    fmt::print(
        "# longnet bench sp-attention: sequence-parallel dilated attention, time per rank "
        "split into compute and communication (definitions: bench/README.md)\n");
    std::array<char, 256> host{};
    gethostname(host.data(), host.size() - 1);
    fmt::print("# P={} ranks (MPI), host {}, {}; kernels {} on {} per rank; {}\n", world->size(),
               host.data(), utc_now(), kernels->name(), machine_description(),
               affinity_note(world->rank()));
    fmt::print("# config: {}  B={} H={} D={}\n", config.describe(), opt.problem.batch,
               opt.problem.heads, opt.problem.head_dim);
    fmt::print(
        "# per call: median of {} calls after {} warm-up (forward and backward), each after "
        "a barrier; comp and comm: medians of each call's compute and communication time\n",
        opt.repeats, opt.warmup);
    std::fflush(stdout);
  }
  for (const int64_t n : opt.problem.tokens) {
    if (!run_one(*world, *kernels, config, n, opt, tables))
      throw CheckFailed(fmt::format("the check of N={} failed (the table's header line says "
                                    "which output and by how much); nothing was timed",
                                    n),
                        /*agreed=*/true);
  }
  if (!printer) return;
  write_outputs(tables.ranks, opt.csv, opt.json);
  write_outputs(tables.traffic, opt.traffic_csv, "");
}

}  // namespace

void add_sp_attention_bench(CLI::App& bench) {
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = bench.add_subcommand(
      "sp-attention",
      "Sequence-parallel dilated attention on all ranks (under mpirun): per-rank compute and "
      "communication time, bytes per pattern");
  add_problem_options(*cmd, opt->problem);
  add_measurement_options(*cmd, opt->isa, opt->repeats, opt->warmup, opt->check);
  add_output_options(*cmd, opt->csv, opt->json);
  cmd->add_option("--traffic-csv", opt->traffic_csv,
                  "write the bytes per (N, rank, pattern) as CSV to this file")
      ->check(writable_output_file());
  cmd->callback([opt] {
    if (opt->repeats < 1 || opt->warmup < 0 || opt->check.rows < 1)
      throw AgreedError(
          fmt::format("--repeats {} and --check-rows {} must be >= 1, --warmup {} "
                      ">= 0",
                      opt->repeats, opt->check.rows, opt->warmup));
    run(*opt);
  });
}

}  // namespace longnet::bench
