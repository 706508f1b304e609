// Sequence-parallel dilated attention benchmark: time per rank, split into compute and
// communication, and the bytes each rank moves per pattern. Run under mpirun:
//
//   OMP_NUM_THREADS=1 mpirun -np 2 build/bench/longnet_bench_sp_attention --tokens 16384
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
#include <sched.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <limits>
#include <numeric>
#include <thread>

#include "bench/problem_options.hpp"
#include "bench/timing.hpp"
#include "comm/mpi_communicator.hpp"
#include "comm/mpi_session.hpp"
#include "kernels/cpu/dilated_attention_cpu.hpp"
#include "kernels/dilated_attention_spot_check.hpp"
#include "model/sequence_parallel_attention.hpp"
#include "runtime/random_fill.hpp"

namespace longnet::bench {
namespace {

constexpr int kExitCheckFailed = 1;
constexpr int kExitUsage = 2;
constexpr double kBytesPerMB = 1e6;
constexpr std::uint64_t kSeedQ = 1, kSeedK = 2, kSeedV = 3, kSeedDout = 4, kSeedRows = 7;

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
  int64_t check_rows = 16;                 // per rank
  int64_t check_limit = int64_t{1} << 24;  // elements of one full tensor (B*N*H*D)
  double tolerance = 1e-5;
  std::string csv, traffic_csv;
};

// Per-call times of one direction on one rank, in seconds.
struct CallTimes {
  std::vector<double> wall, compute, communication;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t mid = v.size() / 2;
  return v.size() % 2 ? v[mid] : 0.5 * (v[mid - 1] + v[mid]);
}
double mean(const std::vector<double>& v) {
  return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

template <typename Fn>
CallTimes time_calls(Communicator& world, const SequenceParallelAttention& sp, int repeats,
                     Fn&& fn) {
  CallTimes t;
  for (int i = 0; i < repeats; ++i) {
    world.barrier();
    const SequenceParallelTiming before = sp.timing();
    const auto start = std::chrono::steady_clock::now();
    fn();
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const SequenceParallelTiming after = sp.timing();
    t.wall.push_back(wall);
    t.compute.push_back(after.compute_seconds - before.compute_seconds);
    t.communication.push_back(after.communication_seconds - before.communication_seconds);
  }
  return t;
}

// Tokens [shard.begin, shard.end) of axis 1 of a [B, N, ...] tensor, and the inverse:
// a full-size tensor (NaN elsewhere) holding `part` at the shard's tokens.
Tensor token_slice(const Tensor& full, const Shard& shard) {
  Shape shape = full.shape();
  const int64_t inner = full.numel() / (shape[0] * shape[1]);
  shape[1] = shard.size();
  Tensor out(shape, DType::float32);
  for (int64_t b = 0; b < shape[0]; ++b) {
    std::memcpy(out.data<float>() + b * shard.size() * inner,
                full.data<float>() + (b * full.dim(1) + shard.begin) * inner,
                sizeof(float) * static_cast<std::size_t>(shard.size() * inner));
  }
  return out;
}
Tensor place_shard(const Tensor& part, const Shape& full_shape, const Shard& shard) {
  Tensor full = Tensor::filled(full_shape, std::nan(""));
  const int64_t inner = part.numel() / (part.dim(0) * part.dim(1));
  for (int64_t b = 0; b < part.dim(0); ++b) {
    std::memcpy(full.data<float>() + (b * full_shape[1] + shard.begin) * inner,
                part.data<float>() + b * shard.size() * inner,
                sizeof(float) * static_cast<std::size_t>(shard.size() * inner));
  }
  return full;
}

struct CheckResult {
  bool ran = false;
  double o = 0, lse = 0, dq = 0;              // worst over ranks
  int64_t rows = 0, coverage_mismatches = 0;  // summed over ranks
};

// The inputs of this rank's shard; with `check`, cut from full tensors every rank builds
// alike, and the untimed forward and backward spot-checked on sampled rows of the shard.
struct Inputs {
  Tensor q, k, v, dout;
};

Inputs make_inputs_and_check(Communicator& world, SequenceParallelAttention& sp,
                             const DilatedAttentionConfig& config, const AttentionShape& shape,
                             const Options& opt, CheckResult& check) {
  const Shard shard = sp.shard();
  const AttentionShape local = sp.local_shape();
  Inputs in;
  check.ran = shape.elements() <= opt.check_limit;
  if (!check.ran) {
    // Distinct per rank; the values do not matter for timing.
    const auto salt = static_cast<std::uint64_t>(world.rank() + 1) * 1000003u;
    for (auto [t, seed] :
         {std::pair{&in.q, kSeedQ}, {&in.k, kSeedK}, {&in.v, kSeedV}, {&in.dout, kSeedDout}})
      *t = random_tensor(qkv_shape(local), seed + salt);
    Tensor o(qkv_shape(local), DType::float32), lse(lse_shape(local), DType::float32);
    sp.forward(in.q, in.k, in.v, o, lse);
    Tensor dq(qkv_shape(local), DType::float32), dk = dq.clone(), dv = dq.clone();
    sp.backward(in.q, in.k, in.v, o, lse, in.dout, dq, dk, dv);
    return in;
  }

  const Shape full = qkv_shape(shape);
  const Tensor q = random_tensor(full, kSeedQ), k = random_tensor(full, kSeedK),
               v = random_tensor(full, kSeedV), dout = random_tensor(full, kSeedDout);
  in = {token_slice(q, shard), token_slice(k, shard), token_slice(v, shard),
        token_slice(dout, shard)};
  // Poisoned: an element the distributed op leaves unwritten fails the check.
  Tensor o = Tensor::filled(qkv_shape(local), std::nan(""));
  Tensor lse = Tensor::filled(lse_shape(local), std::nan(""));
  sp.forward(in.q, in.k, in.v, o, lse);
  Tensor dq = Tensor::filled(qkv_shape(local), std::nan("")), dk = dq.clone(), dv = dq.clone();
  sp.backward(in.q, in.k, in.v, o, lse, in.dout, dq, dk, dv);

  std::vector<RowIndex> rows =
      sample_rows(local, opt.check_rows, kSeedRows + static_cast<std::uint64_t>(world.rank()));
  for (RowIndex& row : rows) row.token += shard.begin;
  const SpotCheckError fwd = spot_check_forward(config, q, k, v, place_shard(o, full, shard),
                                                place_shard(lse, lse_shape(shape), shard), rows);
  const SpotCheckError bwd =
      spot_check_backward(config, q, k, v, dout, place_shard(dq, full, shard), rows);
  // NaN compares false: make a non-finite error count as the worst.
  auto worst = [](double e) { return std::isfinite(e) ? e : std::numeric_limits<double>::max(); };
  std::vector<double> errors{worst(fwd.o), worst(fwd.lse), worst(bwd.dq)};
  std::vector<int64_t> counts{fwd.rows, fwd.coverage_mismatches};
  world.all_reduce_in_place<double>(errors, ReduceOp::max, "check errors");
  world.all_reduce_in_place<int64_t>(counts, ReduceOp::sum, "check counts");
  check.o = errors[0];
  check.lse = errors[1];
  check.dq = errors[2];
  check.rows = counts[0];
  check.coverage_mismatches = counts[1];
  return in;
}

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

std::string utc_now() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

// "rank 0 may run on 1 of 2 CPUs": mpirun binds ranks to cores by default, which
// silently serialises a rank's OpenMP threads (use --bind-to none for one rank with
// several threads); the header says so.
std::string affinity_note(int rank) {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return "affinity unknown";
  return fmt::format("rank {} may run on {} of {} CPUs", rank, CPU_COUNT(&set),
                     std::thread::hardware_concurrency());
}

std::string pattern_label(const DilationPattern& p) {
  return fmt::format("w{}r{}", p.segment_length, p.dilation_rate);
}

struct CsvFiles {
  std::ofstream ranks, traffic;
};

// Returns false when the check failed (every rank alike).
bool run_one(Communicator& world, DilatedAttentionKernels& kernels,
             const DilatedAttentionConfig& config, int64_t tokens, const Options& opt,
             CsvFiles& csv) {
  const int size = world.size(), rank = world.rank();
  const bool printer = rank == 0;
  const AttentionShape shape = opt.problem.shape(tokens);
  SequenceParallelAttention sp(world, config, shape, kernels);
  const AttentionShape local = sp.local_shape();

  CheckResult check;
  const Inputs in = make_inputs_and_check(world, sp, config, shape, opt, check);
  const bool check_ok = !check.ran || (check.o <= opt.tolerance && check.lse <= opt.tolerance &&
                                       check.dq <= opt.tolerance && check.coverage_mismatches == 0);
  if (printer) {
    fmt::print("# N={}: ", tokens);
    if (check.ran)
      fmt::print(
          "check of {} sampled rows (o, lse, dq against float64 from the definition): "
          "o {:.2e}, lse {:.2e}, dq {:.2e} (max over ranks), {} coverage mismatches: {}\n",
          check.rows, check.o, check.lse, check.dq, check.coverage_mismatches,
          check_ok ? "OK" : fmt::format("FAILED (tolerance {:.0e}); not timing", opt.tolerance));
    else
      fmt::print(
          "check SKIPPED: B*N*H*D = {} elements per tensor > --check-limit {} (every rank "
          "would build the full inputs); inputs are per-rank random shards\n",
          shape.elements(), opt.check_limit);
    std::fflush(stdout);
  }
  if (!check_ok) return false;

  Tensor o(qkv_shape(local), DType::float32), lse(lse_shape(local), DType::float32);
  Tensor dq(qkv_shape(local), DType::float32), dk = dq.clone(), dv = dq.clone();
  auto forward = [&] { sp.forward(in.q, in.k, in.v, o, lse); };
  auto backward = [&] { sp.backward(in.q, in.k, in.v, o, lse, in.dout, dq, dk, dv); };
  for (int i = 0; i < opt.warmup; ++i) {
    forward();
    backward();
  }
  sp.reset_counters();
  const CallTimes fwd = time_calls(world, sp, opt.repeats, forward);
  const std::vector<PatternTraffic> fwd_traffic = sp.traffic();
  sp.reset_counters();
  const CallTimes bwd = time_calls(world, sp, opt.repeats, backward);
  const std::vector<PatternTraffic> bwd_traffic = sp.traffic();

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
      if (csv.traffic.is_open())
        csv.traffic << fmt::format("{},{},{},{},{},{},{},{},{},{}\n", tokens, size, r,
                                   pattern_label(config.patterns[p]), f[kFwdGatherSent],
                                   f[kFwdGatherReceived], f[kBwdGatherSent], f[kBwdGatherReceived],
                                   f[kBwdScatterSent], f[kBwdScatterReceived]);
    }
  }
  std::fflush(stdout);

  if (csv.ranks.is_open()) {
    for (int r = 0; r < size; ++r) {
      csv.ranks << fmt::format(
          "{},{},{},{},{},\"{}\",\"{}\",{},{},{},{},{:.4f},{:.4f},{:.4f},{:.4f},{:.4f},{:.4f},"
          "{:.4f},{:.4f},{:.4f},{:.4f},{:.4f},{:.4f},{},{},{},{},{:.4f},{:.1f},{:.3f},{:.4f},{:.1f}"
          ","
          "{:.3f},{},{:.3e},{:.3e}\n",
          tokens, opt.problem.batch, opt.problem.heads, opt.problem.head_dim, size,
          fmt::join(opt.problem.segments, " "), fmt::join(opt.problem.rates, " "),
          config.causal ? 1 : 0, head_offsets_name(config.head_offsets), r,
          static_cast<int64_t>(field(r, kShard)), 1e3 * field(r, kFwdWall),
          1e3 * field(r, kFwdCompute), 1e3 * field(r, kFwdComm), 1e3 * field(r, kBwdWall),
          1e3 * field(r, kBwdCompute), 1e3 * field(r, kBwdComm), 1e3 * field(r, kFwdWallMean),
          1e3 * field(r, kFwdComputeMean), 1e3 * field(r, kFwdCommMean),
          1e3 * field(r, kBwdWallMean), 1e3 * field(r, kBwdComputeMean),
          1e3 * field(r, kBwdCommMean), static_cast<int64_t>(field(r, kFwdSent)),
          static_cast<int64_t>(field(r, kFwdReceived)), static_cast<int64_t>(field(r, kBwdSent)),
          static_cast<int64_t>(field(r, kBwdReceived)), 1e3 * fwd_max, global_tokens / fwd_max,
          fwd_flops / fwd_max / 1e9, 1e3 * bwd_max, global_tokens / bwd_max,
          bwd_flops / bwd_max / 1e9, check.ran ? 1 : 0, check.o, check.dq);
    }
  }
  return true;
}

int run(const Options& opt, const MpiSession& session) {
  const auto config = opt.problem.config();
  validate_config(config);
  auto world = MpiCommunicator::world("sp bench");
  auto kernels =
      make_cpu_dilated_attention(opt.isa.empty() ? default_cpu_isa() : parse_cpu_isa(opt.isa));
  const bool printer = world->rank() == 0;

  CsvFiles csv;
  if (printer && !opt.csv.empty()) {
    csv.ranks.open(opt.csv);
    LONGNET_CHECK(csv.ranks.good(), "cannot write the CSV file '{}'", opt.csv);
    csv.ranks << "N,B,H,D,P,segment_lengths,dilation_rates,causal,head_offsets,rank,shard_tokens,"
                 "fwd_ms,fwd_compute_ms,fwd_comm_ms,bwd_ms,bwd_compute_ms,bwd_comm_ms,"
                 "fwd_mean_ms,fwd_compute_mean_ms,fwd_comm_mean_ms,bwd_mean_ms,"
                 "bwd_compute_mean_ms,bwd_comm_mean_ms,fwd_bytes_sent,fwd_bytes_received,"
                 "bwd_bytes_sent,bwd_bytes_received,fwd_max_ms,fwd_tokens_per_s,fwd_gflops,"
                 "bwd_max_ms,bwd_tokens_per_s,bwd_gflops,checked,check_o_err,check_dq_err\n";
  }
  if (printer && !opt.traffic_csv.empty()) {
    csv.traffic.open(opt.traffic_csv);
    LONGNET_CHECK(csv.traffic.good(), "cannot write the CSV file '{}'", opt.traffic_csv);
    csv.traffic << "N,P,rank,pattern,fwd_gather_sent,fwd_gather_received,bwd_gather_sent,"
                   "bwd_gather_received,bwd_scatter_sent,bwd_scatter_received\n";
  }

  if (printer) {
    fmt::print(
        "# longnet_bench_sp_attention: sequence-parallel dilated attention, time per rank "
        "split into compute and communication (definitions: bench/README.md)\n");
    fmt::print("# P={} ranks (MPI), host {}, {}; kernels {} on {} per rank; {}\n", world->size(),
               session.host(), utc_now(), kernels->name(), machine_description(),
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
    if (!run_one(*world, *kernels, config, n, opt, csv)) return kExitCheckFailed;
  }
  if (printer && !opt.csv.empty()) fmt::print("# wrote {}\n", opt.csv);
  if (printer && !opt.traffic_csv.empty()) fmt::print("# wrote {}\n", opt.traffic_csv);
  return 0;
}

}  // namespace
}  // namespace longnet::bench

int main(int argc, char** argv) {
  longnet::MpiSession session(&argc, &argv);
  longnet::bench::Options opt;
  CLI::App app{"Sequence-parallel dilated-attention benchmark (run under mpirun; bench/README.md)"};
  add_problem_options(app, opt.problem);
  app.add_option("--isa", opt.isa, "generic, avx2 or avx512 (default: best available)");
  app.add_option("--repeats", opt.repeats, "timed calls per direction (median reported)");
  app.add_option("--warmup", opt.warmup, "untimed forward+backward calls before timing");
  app.add_option("--check-rows", opt.check_rows, "rows spot-checked per rank before timing");
  app.add_option("--check-limit", opt.check_limit,
                 "largest B*N*H*D for which every rank builds the full inputs to check");
  app.add_option("--tolerance", opt.tolerance, "largest error the check accepts");
  app.add_option("--csv", opt.csv, "write one row per (N, rank) as CSV to this file");
  app.add_option("--traffic-csv", opt.traffic_csv,
                 "write the bytes per (N, rank, pattern) as CSV to this file");
  try {
    app.parse(argc, argv);
    LONGNET_CHECK(opt.repeats >= 1 && opt.warmup >= 0 && opt.check_rows >= 1,
                  "--repeats {} and --check-rows {} must be >= 1, --warmup {} >= 0", opt.repeats,
                  opt.check_rows, opt.warmup);
  } catch (const CLI::ParseError& e) {
    if (session.rank() == 0) app.exit(e);
    return e.get_exit_code() == 0 ? 0 : longnet::bench::kExitUsage;
  } catch (const longnet::Error& e) {
    if (session.rank() == 0)
      fmt::print(stderr, "longnet_bench_sp_attention: error: {}\n", e.what());
    return longnet::bench::kExitUsage;
  }
  try {
    return longnet::bench::run(opt, session);
  } catch (const std::exception& e) {
    session.abort_job(e.what());
  }
}
