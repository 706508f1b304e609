// `longnet bench scaling`: weak and strong scaling of sequence-parallel attention,
// dilated and dense side by side, in one job:
//
//   OMP_NUM_THREADS=1 mpirun -np 4 build/launch/longnet bench scaling --ranks 1,2,4
//
// For each mode (weak: tokens per rank fixed, the sequence grows with the ranks;
// strong: the sequence fixed), each attention kind (dilated: the configured patterns;
// dense: one pattern w = N, r = 1, every key attended) and each rank count p of
// --ranks, the first p ranks of the job form a group and run SequenceParallelAttention
// on it: one untimed forward and backward spot-checked against float64 (as in
// `longnet bench sp-attention`), warm-up, then --repeats forward and --repeats backward
// calls, each after a barrier. The other ranks wait asleep (they poll a non-blocking
// all-reduce every millisecond) so that they take no core from the group.
//
// One row per (mode, attention, p, direction): the slowest rank's median call time, the
// largest per-rank compute and communication medians, tokens/s, the efficiency against
// one rank, the bytes each rank moves (the communicator counters) and whether the group
// oversubscribes the cores of a node. bench/README.md defines every column.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <omp.h>
#include <sched.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <thread>
#include <tuple>

#include "bench/bench_commands.hpp"
#include "bench/problem_options.hpp"
#include "bench/result_table.hpp"
#include "bench/sp_measurement.hpp"
#include "bench/timing.hpp"
#include "comm/collective_step.hpp"
#include "comm/mpi_communicator.hpp"
#include "kernels/dilated_attention_factory.hpp"
#include "model/sequence_parallel_attention.hpp"
#include "runtime/check_failed.hpp"

namespace longnet::bench {
namespace {

struct Options {
  ProblemOptions problem{.tokens = {16384},  // the strong-scaling sequence
                         .batch = 1,
                         .heads = 8,
                         .head_dim = 64,
                         .segments = {2048, 4096, 8192},
                         .rates = {1, 2, 4},
                         .offsets = "interleaved"};
  std::string mode = "both";
  std::vector<std::string> attention{"dilated", "dense"};
  int64_t tokens_per_rank = 4096;  // weak scaling
  std::vector<int> ranks;          // default: 1, 2, 4, ... up to the job's size
  std::string isa;
  int repeats = 3, warmup = 1;
  SpCheckOptions check;
  std::string csv, json;
};

// One direction of one group's measurement, as rank 0 of the group sees it.
struct DirectionResult {
  double time = 0;                // s: slowest rank's median wall time of one call
  double compute = 0, comm = 0;   // s: largest per-rank median
  double sent = 0, received = 0;  // bytes per call: largest over ranks
  double collectives = 0;         // collective calls per call: largest over ranks
};

struct GroupResult {
  DirectionResult fwd, bwd;
  SpCheckResult check;
  bool oversubscribed = false;
};

DilatedAttentionConfig config_for(const Options& opt, const std::string& attention,
                                  int64_t tokens) {
  if (attention == "dilated") return opt.problem.config();
  DilatedAttentionConfig dense = opt.problem.config();
  dense.patterns = {DilationPattern{.segment_length = tokens, .dilation_rate = 1}};
  return dense;
}

// "2048 4096 8192": one field of every pattern, as the CSV columns hold them.
std::string pattern_list(const DilatedAttentionConfig& config, int64_t DilationPattern::*field) {
  std::vector<int64_t> values;
  for (const DilationPattern& p : config.patterns) values.push_back(p.*field);
  return fmt::format("{}", fmt::join(values, " "));
}

// True on every rank of `group` when some node runs more of the group's threads (ranks
// there x OpenMP threads per rank) than the CPUs those ranks may use: the union of their
// affinity masks, which mpirun's binding, a Slurm cpuset or a cgroup may make smaller
// than the node.
bool oversubscribes(MpiCommunicator& group) {
  auto node = group.split_by_node("scaling node");
  cpu_set_t mine;
  CPU_ZERO(&mine);
  LONGNET_CHECK(sched_getaffinity(0, sizeof mine, &mine) == 0,
                "sched_getaffinity failed: cannot tell which CPUs this rank may use");
  std::vector<std::uint8_t> bytes(sizeof mine),
      all(sizeof mine * static_cast<std::size_t>(node->size()));
  std::memcpy(bytes.data(), &mine, sizeof mine);
  node->all_gather<std::uint8_t>(bytes, all, "affinity");
  cpu_set_t usable;
  CPU_ZERO(&usable);
  for (int r = 0; r < node->size(); ++r) {
    cpu_set_t theirs;
    std::memcpy(&theirs, all.data() + r * sizeof theirs, sizeof theirs);
    CPU_OR(&usable, &usable, &theirs);
  }
  std::vector<int32_t> over{node->size() * omp_get_max_threads() > CPU_COUNT(&usable) ? 1 : 0};
  group.all_reduce_in_place<int32_t>(over, ReduceOp::max, "oversubscribed");
  return over[0] != 0;
}

DirectionResult summarise(Communicator& group, const CallTimes& times,
                          const std::vector<PatternTraffic>& traffic, int repeats, bool backward) {
  double sent = 0, received = 0, collectives = 0;
  for (const PatternTraffic& t : traffic) {
    sent += static_cast<double>(t.gather_sent + (backward ? t.scatter_sent : 0));
    received += static_cast<double>(t.gather_received + (backward ? t.scatter_received : 0));
    collectives += static_cast<double>(t.gather_calls + (backward ? t.scatter_calls : 0));
  }
  std::vector<double> mine{median(times.wall), median(times.compute), median(times.communication),
                           sent / repeats,     received / repeats,    collectives / repeats};
  group.all_reduce_in_place<double>(mine, ReduceOp::max, "scaling summary");
  return {mine[0], mine[1], mine[2], mine[3], mine[4], mine[5]};
}

GroupResult measure(MpiCommunicator& group, DilatedAttentionOp& kernels,
                    const DilatedAttentionConfig& config, const AttentionShape& shape,
                    const Options& opt) {
  GroupResult result;
  result.oversubscribed = oversubscribes(group);
  SequenceParallelAttention sp(group, config, shape, kernels);
  const SpInputs in = make_sp_inputs_and_check(group, sp, config, shape, opt.check, result.check);
  if (!result.check.passed(opt.check.tolerance)) return result;

  const SpTimedCalls calls = time_sp_forward_backward(group, sp, in, opt.warmup, opt.repeats);
  result.fwd = summarise(group, calls.forward, calls.forward_traffic, opt.repeats,
                         /*backward=*/false);
  result.bwd = summarise(group, calls.backward, calls.backward_traffic, opt.repeats,
                         /*backward=*/true);
  return result;
}

// Every rank of the job meets here after a group's measurement; the ranks outside the
// group sleep between polls instead of spinning inside MPI.
void rejoin(Communicator& world, bool member) {
  std::vector<int32_t> token{0};
  auto pending = world.start_all_reduce_in_place<int32_t>(token, ReduceOp::max, "rejoin");
  if (member) {
    pending->wait();
    return;
  }
  while (!pending->test()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

std::vector<int> default_ranks(int world) {
  std::vector<int> ranks;
  for (int p = 1; p <= world; p *= 2) ranks.push_back(p);
  if (ranks.back() != world) ranks.push_back(world);
  return ranks;
}

void check_options(const Options& opt, int world) {
  LONGNET_CHECK(opt.problem.tokens.size() == 1,
                "--tokens takes one value here (the strong-scaling sequence length), got {}",
                opt.problem.tokens.size());
  LONGNET_CHECK(
      opt.repeats >= 1 && opt.warmup >= 0 && opt.tokens_per_rank >= 1 && opt.check.rows >= 1,
      "--repeats {}, --tokens-per-rank {} and --check-rows {} must be >= 1, --warmup "
      "{} >= 0",
      opt.repeats, opt.tokens_per_rank, opt.check.rows, opt.warmup);
  for (const int p : opt.ranks) {
    LONGNET_CHECK(p >= 1, "--ranks {}: a rank count must be at least 1", fmt::join(opt.ranks, ","));
    LONGNET_CHECK(p <= world,
                  "--ranks {}: {} ranks asked, but the job has {} (start it with more ranks, "
                  "e.g. mpirun -np {}, or measure fewer)",
                  fmt::join(opt.ranks, ","), p, world, p);
    LONGNET_CHECK(p <= opt.problem.tokens.front(),
                  "--ranks {}: {} ranks cannot split {} tokens (strong scaling)", p, p,
                  opt.problem.tokens.front());
  }
  validate_config(opt.problem.config());
}

void print_header(const Options& opt, const DilatedAttentionOp& kernels, int world) {
  const DilatedAttentionConfig config = opt.problem.config();
  fmt::print(
      "# longnet bench scaling: sequence-parallel attention, weak and strong scaling, dilated "
      "and dense (definitions: bench/README.md)\n");
  fmt::print("# job: {} MPI ranks, {}; kernels {} on {} per rank; {}\n", world, utc_now(),
             kernels.name(), machine_description(), affinity_note(0));
  fmt::print("# dilated: {}; dense: one pattern w=N r=1 ({}); B={} H={} D={}\n", config.describe(),
             config.causal ? "causal" : "non-causal", opt.problem.batch, opt.problem.heads,
             opt.problem.head_dim);
  fmt::print(
      "# weak: {} tokens per rank; strong: {} tokens; per call: median of {} after {} warm-up "
      "pair(s), each after a barrier; time = slowest rank, comp/comm = largest per-rank "
      "median; eff = tokens/s / (p x tokens/s at p=1); MB per rank per call (10^6 B)\n",
      opt.tokens_per_rank, opt.problem.tokens.front(), opt.repeats, opt.warmup);
  fmt::print(
      "# {:>6} {:>7} {:>3} {:>5} {:>9} {:>10} {:>10} {:>10} {:>12} {:>6} {:>9} {:>9} {:>5}\n",
      "mode", "attn", "dir", "ranks", "N", "time_ms", "comp_ms", "comm_ms", "tokens/s", "eff",
      "sent_MB", "recv_MB", "over");
  std::fflush(stdout);
}

void run(const Options& opt) {
  auto world = MpiCommunicator::world("scaling");
  Options run_opt = opt;
  if (run_opt.ranks.empty()) run_opt.ranks = default_ranks(world->size());
  try {
    check_options(run_opt, world->size());
  } catch (const Error& e) {
    throw AgreedError(e.what());  // every rank read the same command line
  }
  auto kernels = make_dilated_attention(Device::cpu, DType::float32, parse_cpu_isa_option(opt.isa));
  const bool printer = world->rank() == 0;
  if (printer) print_header(run_opt, *kernels, world->size());

  ResultTable table{.benchmark = "longnet bench scaling",
                    .info = {{"date", utc_now()},
                             {"job_ranks", std::to_string(world->size())},
                             {"kernels", std::string(kernels->name())},
                             {"machine", machine_description()},
                             {"dilated", run_opt.problem.config().describe()},
                             {"repeats", std::to_string(run_opt.repeats)},
                             {"warmup", std::to_string(run_opt.warmup)}},
                    .columns = {"mode",
                                "attention",
                                "direction",
                                "ranks",
                                "tokens",
                                "tokens_per_rank",
                                "batch",
                                "heads",
                                "head_dim",
                                "segments",
                                "rates",
                                "causal",
                                "head_offsets",
                                "time_ms",
                                "compute_ms",
                                "comm_ms",
                                "tokens_per_s",
                                "efficiency",
                                "flops",
                                "sent_bytes_per_rank",
                                "recv_bytes_per_rank",
                                "collectives_per_rank",
                                "oversubscribed",
                                "checked",
                                "check_error"},
                    .text_columns = {"segments", "rates", "segment_lengths", "dilation_rates"}};
  std::vector<std::string> modes;
  if (run_opt.mode != "strong") modes.push_back("weak");
  if (run_opt.mode != "weak") modes.push_back("strong");

  // tokens/s at p = 1, per (mode, attention, direction), for the efficiency column.
  std::map<std::tuple<std::string, std::string, std::string>, double> one_rank_rate;
  for (const std::string& mode : modes) {
    for (const std::string& attention : run_opt.attention) {
      for (const int p : run_opt.ranks) {
        const int64_t tokens =
            mode == "weak" ? p * run_opt.tokens_per_rank : run_opt.problem.tokens.front();
        const DilatedAttentionConfig config = config_for(run_opt, attention, tokens);
        const AttentionShape shape = run_opt.problem.shape(tokens);
        const bool member = world->rank() < p;
        auto group = world->split_mpi(member ? std::optional<int>(0) : Communicator::kNoColor,
                                      world->rank(), fmt::format("scaling p={}", p));
        GroupResult result;
        if (member) result = measure(*group, *kernels, config, shape, run_opt);
        rejoin(*world, member);
        // Rank 0 is in every group, so it alone holds every result; it also decides
        // whether the check failed, and tells the others so that all stop alike.
        std::vector<int32_t> failed{printer && !result.check.passed(run_opt.check.tolerance)};
        world->broadcast<int32_t>(failed, 0, "scaling check");
        if (failed[0] != 0) {
          throw CheckFailed(
              fmt::format("{} {} attention at p={} N={}: the check against float64 failed (o "
                          "{:.2e}, lse {:.2e}, dq {:.2e}, {} coverage mismatches; tolerance "
                          "{:.0e}); nothing more was timed",
                          mode, attention, p, tokens, result.check.o, result.check.lse,
                          result.check.dq, result.check.coverage_mismatches,
                          run_opt.check.tolerance),
              /*agreed=*/true);
        }
        if (!printer) continue;
        for (const auto& [direction, d] :
             {std::pair<std::string, const DirectionResult&>{"fwd", result.fwd},
              {"bwd", result.bwd}}) {
          const double flops =
              direction == "fwd" ? forward_flops(config, shape) : backward_flops(config, shape);
          const double rate = static_cast<double>(shape.batch * tokens) / d.time;
          const auto key = std::make_tuple(mode, attention, direction);
          if (p == 1) one_rank_rate[key] = rate;
          const auto base = one_rank_rate.find(key);
          const std::string efficiency =
              base == one_rank_rate.end() ? "" : fmt::format("{:.3f}", rate / (p * base->second));
          fmt::print(
              "  {:>6} {:>7} {:>3} {:>5} {:>9} {:>10.2f} {:>10.2f} {:>10.2f} {:>12.0f} {:>6} "
              "{:>9.3f} {:>9.3f} {:>5}\n",
              mode, attention, direction, p, tokens, 1e3 * d.time, 1e3 * d.compute, 1e3 * d.comm,
              rate, efficiency.empty() ? "-" : efficiency, d.sent / 1e6, d.received / 1e6,
              result.oversubscribed ? "yes" : "no");
          std::fflush(stdout);
          table.add_row({mode,
                         attention,
                         direction,
                         std::to_string(p),
                         std::to_string(tokens),
                         std::to_string(tokens / p),
                         std::to_string(shape.batch),
                         std::to_string(shape.heads),
                         std::to_string(shape.head_dim),
                         pattern_list(config, &DilationPattern::segment_length),
                         pattern_list(config, &DilationPattern::dilation_rate),
                         config.causal ? "1" : "0",
                         std::string(head_offsets_name(config.head_offsets)),
                         fmt::format("{:.4f}", 1e3 * d.time),
                         fmt::format("{:.4f}", 1e3 * d.compute),
                         fmt::format("{:.4f}", 1e3 * d.comm),
                         fmt::format("{:.1f}", rate),
                         efficiency,
                         fmt::format("{:.6e}", flops),
                         fmt::format("{:.0f}", d.sent),
                         fmt::format("{:.0f}", d.received),
                         fmt::format("{:.0f}", d.collectives),
                         result.oversubscribed ? "1" : "0",
                         result.check.ran ? "1" : "0",
                         fmt::format("{:.3e}", std::max({result.check.o, result.check.lse,
                                                         result.check.dq}))});
        }
      }
    }
  }
  if (printer) {
    fmt::print(
        "# over = yes: the group runs more threads on a node than it has CPUs, so those rows "
        "measure time-slicing, not scaling\n");
    write_outputs(table, run_opt.csv, run_opt.json);
  }
}

}  // namespace

void add_scaling_bench(CLI::App& bench) {
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = bench.add_subcommand(
      "scaling",
      "Weak and strong scaling of sequence-parallel attention, dilated and dense side by side "
      "(under mpirun; measures groups of 1, 2, 4, ... of the job's ranks)");
  add_problem_options(*cmd, opt->problem);
  cmd->get_option("--tokens")->description("strong scaling: the sequence length N (one value)");
  cmd->add_option("--mode", opt->mode, "weak, strong or both")
      ->check(CLI::IsMember({"weak", "strong", "both"}))
      ->capture_default_str();
  cmd->add_option("--tokens-per-rank", opt->tokens_per_rank,
                  "weak scaling: tokens per rank (N = ranks x this)")
      ->capture_default_str();
  cmd->add_option("--ranks", opt->ranks,
                  "rank counts to measure (default 1,2,4,... up to the job's size)")
      ->delimiter(',');
  cmd->add_option("--attention", opt->attention,
                  "dilated, dense (one pattern w=N r=1), or both as dilated,dense")
      ->delimiter(',')
      ->check(CLI::IsMember({"dilated", "dense"}));
  add_measurement_options(*cmd, opt->isa, opt->repeats, opt->warmup, opt->check);
  add_output_options(*cmd, opt->csv, opt->json);
  cmd->callback([opt] { run(*opt); });
}

}  // namespace longnet::bench
