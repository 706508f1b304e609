// `longnet bench model`: the cost model's predictions (bench/cost_model.hpp), and its
// validation against what this machine measured.
//
// Default: a sweep of the LongNet paper's Figure 5 setting, the sequence growing from 8K
// to 2^30 (about 10^9) tokens with the ranks growing with it (a fixed number of tokens per
// rank), dilated attention with geometric patterns beside dense attention; per N and
// kind one row of per-rank work and predicted forward and backward latency.
// --validate: reads the CSV of `longnet bench scaling` (and `longnet bench comm`),
// calibrates the kernel rate and the link on this machine, predicts every multi-rank row
// and prints measured against predicted. Bytes and collective calls must match exactly
// (they come from the same formulas the counters use); a mismatch fails the command.
// No MPI: the model is arithmetic. bench/README.md defines every column.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>

#include "bench/bench_commands.hpp"
#include "bench/cost_model.hpp"
#include "bench/cost_model_validation.hpp"
#include "bench/csv_table.hpp"
#include "bench/result_table.hpp"
#include "runtime/check_failed.hpp"
#include "runtime/error.hpp"

namespace longnet::bench {
namespace {

struct ModelOptions {
  // The sweep's problem.
  int64_t min_tokens = 8192, max_tokens = int64_t{1} << 30, step_factor = 2;
  int64_t tokens_per_rank = 8192;
  std::vector<int64_t> geometric = {2048, 2};  // base segment, ratio
  std::vector<int64_t> segments, rates;        // fixed patterns instead, when given
  std::vector<std::string> attention = {"dilated", "dense"};
  int64_t batch = 1, heads = 16, head_dim = 128;
  bool non_causal = false;
  std::string offsets = "interleaved";
  std::string dtype = "bfloat16";
  int64_t ranks_per_node = 8;
  MachineModel machine = h100_machine();
  std::string latency_steps = "ring";
  // Validation.
  std::string validate;
  std::vector<std::string> comm_csv;
  double bandwidth_GBps = 0, latency_us = -1;  // given link, instead of (or over) the fit
  std::string csv, json;
};

int64_t dtype_bytes(const std::string& dtype) {
  if (dtype == "float32") return 4;
  if (dtype == "bfloat16" || dtype == "float16") return 2;
  fail("--dtype {}: use bfloat16, float16 or float32", dtype);
}

// The file's form: a plain number (JSON reads it as one), or "inf" when the measurement is 0.
std::string percent_cell(double relative) {
  return std::isfinite(relative) ? fmt::format("{:.2f}", 100 * relative) : std::string("inf");
}

std::string percent(double relative) {
  return std::isfinite(relative) ? fmt::format("{:+.1f}", 100 * relative) : std::string("inf");
}

// ---- the sweep --------------------------------------------------------------------

std::vector<int64_t> sweep_tokens(const ModelOptions& o) {
  LONGNET_CHECK(o.min_tokens > 0 && o.min_tokens <= o.max_tokens && o.step_factor >= 2,
                "--min-tokens {} --max-tokens {} --step-factor {}: need 0 < min <= max and a "
                "factor of at least 2",
                o.min_tokens, o.max_tokens, o.step_factor);
  std::vector<int64_t> tokens;
  for (int64_t n = o.min_tokens; n <= o.max_tokens; n *= o.step_factor) {
    tokens.push_back(n);
    if (n > o.max_tokens / o.step_factor) break;
  }
  if (tokens.back() != o.max_tokens) tokens.push_back(o.max_tokens);
  return tokens;
}

DilatedAttentionConfig sweep_config(const ModelOptions& o, const std::string& attention,
                                    int64_t n) {
  const bool causal = !o.non_causal;
  if (attention == "dense") return dense_config(n, causal);
  if (!o.segments.empty() || !o.rates.empty()) {
    return DilatedAttentionConfig::from_lists(o.segments, o.rates, causal,
                                              parse_head_offsets(o.offsets));
  }
  LONGNET_CHECK(o.geometric.size() == 2, "--geometric takes BASE_SEGMENT,RATIO (e.g. 2048,2)");
  DilatedAttentionConfig config;
  config.patterns = geometric_patterns(n, o.geometric[0], o.geometric[1]);
  config.causal = causal;
  config.head_offsets = parse_head_offsets(o.offsets);
  validate_config(config);
  return config;
}

void run_sweep(const ModelOptions& o) {
  const int64_t element_bytes = dtype_bytes(o.dtype);
  LONGNET_CHECK(o.tokens_per_rank > 0, "--tokens-per-rank must be positive");
  const MachineModel& m = o.machine;
  ResultTable table{
      .benchmark = "longnet bench model",
      .info =
          {{"date", utc_now()},
           {"problem",
            fmt::format("B={} H={} D={} {} {} offsets, {} bytes per k/v element", o.batch, o.heads,
                        o.head_dim, o.non_causal ? "non-causal" : "causal", o.offsets,
                        element_bytes)},
           {"ranks", fmt::format("ceil(N / {}), {} per node", o.tokens_per_rank, o.ranks_per_node)},
           {"kernel_tflops", fmt::format("fwd {} bwd {}", m.forward_tflops, m.backward_tflops)},
           {"latency_steps",
            fmt::format("{}: {} per collective over g ranks", latency_steps_name(m.latency_steps),
                        m.latency_steps == LatencySteps::ring ? "g - 1" : "ceil(log2 g)")},
           {"intra_node", fmt::format("{} us per step, {} GB/s", m.intra_node.all_gather.latency_us,
                                      m.intra_node.all_gather.bandwidth_GBps)},
           {"inter_node", fmt::format("{} us per step, {} GB/s", m.inter_node.all_gather.latency_us,
                                      m.inter_node.all_gather.bandwidth_GBps)}},
      .columns = {"attention", "N", "P", "nodes", "patterns", "fwd_gflop_per_rank",
                  "fwd_recv_MB_per_rank", "fwd_collectives", "fwd_compute_ms", "fwd_comm_ms",
                  "fwd_ms", "bwd_compute_ms", "bwd_comm_ms", "bwd_ms", "slowest_rank_fwd"}};
  fmt::print("# longnet bench model: predicted latency of one attention layer, per call\n");
  for (const auto& [key, value] : table.info) fmt::print("# {}: {}\n", key, value);
  fmt::print(
      "# time = max over ranks of (FLOPs / rate + sum over collectives of "
      "latency * steps + bytes / bandwidth); no overlap\n");
  fmt::print(
      "# {:>7} {:>10} {:>7} {:>6} {:>4} {:>11} {:>11} {:>5} {:>10} {:>10} {:>10} {:>10} "
      "{:>10} {:>10}\n",
      "attn", "N", "P", "nodes", "pat", "GFLOP/rank", "recv_MB", "colls", "fwd_comp", "fwd_comm",
      "fwd_ms", "bwd_comp", "bwd_comm", "bwd_ms");
  for (const int64_t n : sweep_tokens(o)) {
    const int64_t world = (n + o.tokens_per_rank - 1) / o.tokens_per_rank;
    LONGNET_CHECK(world <= std::numeric_limits<int>::max(), "N={} needs {} ranks: too many", n,
                  world);
    for (const std::string& attention : o.attention) {
      const LayerProblem problem{.config = sweep_config(o, attention, n),
                                 .shape = {o.batch, n, o.heads, o.head_dim},
                                 .world = static_cast<int>(world),
                                 .element_bytes = element_bytes,
                                 .ranks_per_node = o.ranks_per_node};
      const std::vector<RankWork> work = rank_work(problem);
      const LayerPrediction fwd = predict(work, Direction::forward, m, o.head_dim);
      const LayerPrediction bwd = predict(work, Direction::backward, m, o.head_dim);
      const int64_t nodes = (world + o.ranks_per_node - 1) / o.ranks_per_node;
      const auto patterns = problem.config.patterns.size();
      fmt::print(
          "  {:>7} {:>10} {:>7} {:>6} {:>4} {:>11.4g} {:>11.4g} {:>5} {:>10.4g} {:>10.4g} "
          "{:>10.4g} {:>10.4g} {:>10.4g} {:>10.4g}\n",
          attention, n, world, nodes, patterns, fwd.max_flops / 1e9,
          static_cast<double>(fwd.max_received_bytes) / 1e6, fwd.max_collectives,
          fwd.compute_s * 1e3, fwd.comm_s * 1e3, fwd.time_s * 1e3, bwd.compute_s * 1e3,
          bwd.comm_s * 1e3, bwd.time_s * 1e3);
      std::fflush(stdout);
      table.add_row(
          {attention, std::to_string(n), std::to_string(world), std::to_string(nodes),
           std::to_string(patterns), fmt::format("{:.6g}", fwd.max_flops / 1e9),
           fmt::format("{:.6g}", static_cast<double>(fwd.max_received_bytes) / 1e6),
           std::to_string(fwd.max_collectives), fmt::format("{:.6g}", fwd.compute_s * 1e3),
           fmt::format("{:.6g}", fwd.comm_s * 1e3), fmt::format("{:.6g}", fwd.time_s * 1e3),
           fmt::format("{:.6g}", bwd.compute_s * 1e3), fmt::format("{:.6g}", bwd.comm_s * 1e3),
           fmt::format("{:.6g}", bwd.time_s * 1e3), std::to_string(fwd.slowest_rank)});
    }
  }
  write_outputs(table, o.csv, o.json);
}

// ---- validation -------------------------------------------------------------------

NetworkCost validation_network(const ModelOptions& o) {
  NetworkCost network;
  if (!o.comm_csv.empty()) {
    std::vector<CommSample> samples;
    for (const std::string& path : o.comm_csv) {
      const auto more = comm_samples(CsvTable::read(path));
      samples.insert(samples.end(), more.begin(), more.end());
    }
    for (const bool gathers : {true, false}) {
      const LinkFit fit = fit_link(samples, gathers, o.machine.latency_steps);
      (gathers ? network.all_gather : network.reduce_scatter) = fit.cost;
      fmt::print(
          "# link fit, {} ({} rows of {}, {} steps): latency {:.3f} us per step, "
          "bandwidth {:.3f} GB/s; median |relative error| of the fit {:.1f} %\n",
          gathers ? "k, v all-gathers" : "dk, dv reduce-scatters", fit.samples, fit.ops,
          latency_steps_name(o.machine.latency_steps), fit.cost.latency_us, fit.cost.bandwidth_GBps,
          100 * fit.median_abs_rel_error);
    }
  }
  if (o.bandwidth_GBps > 0 || o.latency_us >= 0) {
    LONGNET_CHECK(o.bandwidth_GBps > 0 && o.latency_us >= 0,
                  "give --bandwidth and --latency together (or --comm-csv to fit them)");
    network.all_gather = network.reduce_scatter = {o.latency_us, o.bandwidth_GBps};
    fmt::print("# link given: latency {} us per step, bandwidth {} GB/s (both collectives)\n",
               o.latency_us, o.bandwidth_GBps);
  }
  LONGNET_CHECK(network.all_gather.bandwidth_GBps > 0,
                "--validate needs the link of this machine: --comm-csv FILE (a `longnet bench "
                "comm --op all --uneven` CSV) or --bandwidth GBPS --latency US");
  return network;
}

void run_validation(const ModelOptions& o) {
  fmt::print("# longnet bench model --validate {}: measured (m) against predicted (p)\n",
             o.validate);
  const ValidationInputs inputs{.network = validation_network(o),
                                .latency_steps = o.machine.latency_steps,
                                .element_bytes = 4};
  const Validation v = validate(scaling_rows(CsvTable::read(o.validate)), inputs);
  for (const auto& [key, rate] : v.rates) {
    fmt::print("# kernel rate, {}: {:.4f} TFLOP/s (one-rank rows: FLOPs / compute_ms)\n", key,
               rate);
  }
  ResultTable table{.benchmark = "longnet bench model --validate",
                    .info = {{"date", utc_now()},
                             {"scaling_csv", o.validate},
                             {"comm_csv", fmt::format("{}", fmt::join(o.comm_csv, " "))}},
                    .columns = {"mode",
                                "attention",
                                "direction",
                                "ranks",
                                "tokens",
                                "oversubscribed",
                                "rate_tflops",
                                "time_ms",
                                "pred_time_ms",
                                "time_err_pct",
                                "compute_ms",
                                "pred_compute_ms",
                                "compute_err_pct",
                                "comm_ms",
                                "pred_comm_ms",
                                "comm_err_pct",
                                "sent_bytes",
                                "pred_sent_bytes",
                                "recv_bytes",
                                "pred_recv_bytes",
                                "collectives",
                                "pred_collectives",
                                "match"}};
  fmt::print(
      "# {:>6} {:>7} {:>3} {:>3} {:>8} {:>4} {:>9} {:>9} {:>7} {:>9} {:>9} {:>7} {:>8} "
      "{:>8} {:>7} {:>11} {:>5} {:>5}\n",
      "mode", "attn", "dir", "P", "N", "over", "time_m", "time_p", "err%", "comp_m", "comp_p",
      "err%", "comm_m", "comm_p", "err%", "recv_bytes", "colls", "match");
  for (const ValidationRow& r : v.rows) {
    const ScalingRow& m = r.measured;
    const LayerPrediction& p = r.predicted;
    const double pt = p.time_s * 1e3, pc = p.compute_s * 1e3, pm = p.comm_s * 1e3;
    const bool ok = r.bytes_match && r.collectives_match && r.flops_match;
    const std::string match =
        ok ? "yes"
           : fmt::format("NO:{}{}{}", r.bytes_match ? "" : "bytes,",
                         r.collectives_match ? "" : "calls,", r.flops_match ? "" : "flops");
    const auto dir = direction_name(m.direction);
    fmt::print(
        "  {:>6} {:>7} {:>3} {:>3} {:>8} {:>4} {:>9.2f} {:>9.2f} {:>7} {:>9.2f} {:>9.2f} "
        "{:>7} {:>8.2f} {:>8.2f} {:>7} {:>11} {:>5} {:>5}\n",
        m.mode, m.attention, dir, m.ranks, m.shape.tokens, m.oversubscribed ? 1 : 0, m.time_ms, pt,
        percent(relative_error(pt, m.time_ms)), m.compute_ms, pc,
        percent(relative_error(pc, m.compute_ms)), m.comm_ms, pm,
        percent(relative_error(pm, m.comm_ms)), m.received_bytes, m.collectives, match);
    if (!ok) {
      fmt::print(
          "# MISMATCH at {}: measured sent {} recv {} calls {} flops {:.6g}; model sent {} "
          "recv {} calls {} flops {:.6g}\n",
          m.where, m.sent_bytes, m.received_bytes, m.collectives, m.flops, p.max_sent_bytes,
          p.max_received_bytes, p.max_collectives, p.total_flops);
    }
    table.add_row({m.mode,
                   m.attention,
                   std::string(dir),
                   std::to_string(m.ranks),
                   std::to_string(m.shape.tokens),
                   m.oversubscribed ? "1" : "0",
                   fmt::format("{:.6g}", r.rate_tflops),
                   fmt::format("{:.6g}", m.time_ms),
                   fmt::format("{:.6g}", pt),
                   percent_cell(relative_error(pt, m.time_ms)),
                   fmt::format("{:.6g}", m.compute_ms),
                   fmt::format("{:.6g}", pc),
                   percent_cell(relative_error(pc, m.compute_ms)),
                   fmt::format("{:.6g}", m.comm_ms),
                   fmt::format("{:.6g}", pm),
                   percent_cell(relative_error(pm, m.comm_ms)),
                   std::to_string(m.sent_bytes),
                   std::to_string(p.max_sent_bytes),
                   std::to_string(m.received_bytes),
                   std::to_string(p.max_received_bytes),
                   std::to_string(m.collectives),
                   std::to_string(p.max_collectives),
                   match});
  }
  fmt::print("# time_ms |relative error|, all {} multi-rank rows: median {:.1f} %, max {:.1f} %\n",
             v.all.rows, 100 * v.all.median_abs, 100 * v.all.max_abs);
  fmt::print(
      "# time_ms |relative error|, the {} rows with no more ranks than cores: median "
      "{:.1f} %, max {:.1f} %\n",
      v.not_oversubscribed.rows, 100 * v.not_oversubscribed.median_abs,
      100 * v.not_oversubscribed.max_abs);
  write_outputs(table, o.csv, o.json);
  if (v.mismatches > 0) {
    throw CheckFailed(fmt::format(
        "{} row(s) with bytes, collective calls or FLOPs other than the model's, which uses the "
        "runtime's own formulas: the model or the runtime is wrong (see the MISMATCH lines)",
        v.mismatches));
  }
}

}  // namespace

void add_model_bench(CLI::App& bench) {
  auto o = std::make_shared<ModelOptions>();
  CLI::App* cmd = bench.add_subcommand(
      "model",
      "The cost model: predicted per-layer latency from 8K to 2^30 tokens (dilated and "
      "dense), or --validate it against `longnet bench scaling` measurements");
  cmd->add_option("--min-tokens", o->min_tokens, "first N of the sweep")->capture_default_str();
  cmd->add_option("--max-tokens", o->max_tokens, "last N of the sweep (2^30 ~ 1.07e9)")
      ->capture_default_str();
  cmd->add_option("--step-factor", o->step_factor, "N grows by this factor")->capture_default_str();
  cmd->add_option("--tokens-per-rank", o->tokens_per_rank, "ranks P = ceil(N / this)")
      ->capture_default_str();
  cmd->add_option("--geometric", o->geometric,
                  "BASE,RATIO: patterns w = BASE*RATIO^i, r = RATIO^i for every w <= N")
      ->delimiter(',')
      ->expected(2)
      ->capture_default_str();
  cmd->add_option("--segments,-w", o->segments, "fixed segment lengths instead of --geometric")
      ->delimiter(',');
  cmd->add_option("--rates,-r", o->rates, "their dilation rates")->delimiter(',');
  cmd->add_option("--attention", o->attention, "dilated, dense, or both")
      ->delimiter(',')
      ->check(CLI::IsMember({"dilated", "dense"}))
      ->capture_default_str();
  cmd->add_option("--batch,-b", o->batch, "batch B")->capture_default_str();
  cmd->add_option("--heads", o->heads, "heads H")->capture_default_str();
  cmd->add_option("--head-dim,-d", o->head_dim, "head dimension D")->capture_default_str();
  cmd->add_flag("--non-causal", o->non_causal, "non-causal attention (default causal)");
  cmd->add_option("--offsets", o->offsets, "head offsets: interleaved or grouped")
      ->capture_default_str();
  cmd->add_option("--dtype", o->dtype, "k, v element type on the wire: bfloat16, float16, float32")
      ->capture_default_str();
  cmd->add_option("--ranks-per-node", o->ranks_per_node, "GPUs per node (NVLink inside)")
      ->capture_default_str();
  MachineModel& m = o->machine;
  cmd->add_option("--fwd-tflops", m.forward_tflops, "kernel rate, forward")->capture_default_str();
  cmd->add_option("--bwd-tflops", m.backward_tflops, "kernel rate, backward")
      ->capture_default_str();
  cmd->add_option("--intra-bandwidth", m.intra_node.all_gather.bandwidth_GBps,
                  "GB/s per rank per direction inside a node")
      ->capture_default_str();
  cmd->add_option("--intra-latency", m.intra_node.all_gather.latency_us,
                  "us per latency step inside a node")
      ->capture_default_str();
  cmd->add_option("--inter-bandwidth", m.inter_node.all_gather.bandwidth_GBps,
                  "GB/s per rank per direction across nodes")
      ->capture_default_str();
  cmd->add_option("--inter-latency", m.inter_node.all_gather.latency_us,
                  "us per latency step across nodes")
      ->capture_default_str();
  cmd->add_option("--latency-steps", o->latency_steps,
                  "ring: g - 1 latency steps per collective over g ranks (NCCL's all-gather); "
                  "tree: ceil(log2 g)")
      ->check(CLI::IsMember({"ring", "tree"}))
      ->capture_default_str();
  cmd->add_option("--validate", o->validate,
                  "SCALING_CSV: compare the model with `longnet bench scaling` measurements");
  cmd->add_option("--comm-csv", o->comm_csv,
                  "with --validate: `longnet bench comm` CSVs to fit latency and bandwidth from")
      ->delimiter(',');
  cmd->add_option("--bandwidth", o->bandwidth_GBps, "with --validate: the link's GB/s, not fitted");
  cmd->add_option("--latency", o->latency_us, "with --validate: the link's us per step");
  add_output_options(*cmd, o->csv, o->json);
  cmd->callback([o] {
    ModelOptions run = *o;
    // One figure per link on the command line; the model's reduce-scatters use it too.
    run.machine.intra_node.reduce_scatter = run.machine.intra_node.all_gather;
    run.machine.inter_node.reduce_scatter = run.machine.inter_node.all_gather;
    run.machine.latency_steps = parse_latency_steps(run.latency_steps);
    if (run.validate.empty()) {
      run_sweep(run);
    } else {
      run_validation(run);
    }
  });
}

}  // namespace longnet::bench
