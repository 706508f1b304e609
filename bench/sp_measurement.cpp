#include "bench/sp_measurement.hpp"

#include "kernels/dilated_attention_spot_check.hpp"
#include "runtime/random_fill.hpp"

#include <fmt/format.h>
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <thread>

namespace longnet::bench {
namespace {

constexpr std::uint64_t kSeedQ = 1, kSeedK = 2, kSeedV = 3, kSeedDout = 4, kSeedRows = 7;

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

}  // namespace

CallTimes time_sp_calls(Communicator& group, const SequenceParallelAttention& sp, int repeats,
                        const std::function<void()>& fn) {
  CallTimes t;
  for (int i = 0; i < repeats; ++i) {
    group.barrier();
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

void add_measurement_options(CLI::App& command, std::string& isa, int& repeats, int& warmup,
                             SpCheckOptions& check) {
  command.add_option("--isa", isa, "generic, avx2 or avx512 (default: best available)");
  command.add_option("--repeats", repeats, "timed calls per direction (median reported)")
      ->capture_default_str();
  command.add_option("--warmup", warmup, "untimed forward+backward pairs before timing")
      ->capture_default_str();
  command.add_option("--check-rows", check.rows, "rows spot-checked per rank before timing");
  command.add_option("--check-limit", check.limit,
                     "largest B*N*H*D for which every rank builds the full inputs to check");
  command.add_option("--tolerance", check.tolerance, "largest error the check accepts");
}

SpTimedCalls time_sp_forward_backward(Communicator& group, SequenceParallelAttention& sp,
                                      const SpInputs& in, int warmup, int repeats) {
  const AttentionShape local = sp.local_shape();
  Tensor o(qkv_shape(local), DType::float32), lse(lse_shape(local), DType::float32);
  Tensor dq(qkv_shape(local), DType::float32), dk = dq.clone(), dv = dq.clone();
  auto forward = [&] { sp.forward(in.q, in.k, in.v, o, lse); };
  auto backward = [&] { sp.backward(in.q, in.k, in.v, o, lse, in.dout, dq, dk, dv); };
  for (int i = 0; i < warmup; ++i) {
    forward();
    backward();
  }
  SpTimedCalls calls;
  sp.reset_counters();
  calls.forward = time_sp_calls(group, sp, repeats, forward);
  calls.forward_traffic = sp.traffic();
  sp.reset_counters();
  calls.backward = time_sp_calls(group, sp, repeats, backward);
  calls.backward_traffic = sp.traffic();
  return calls;
}

SpInputs make_sp_inputs_and_check(Communicator& world, SequenceParallelAttention& sp,
                                  const DilatedAttentionConfig& config, const AttentionShape& shape,
                                  const SpCheckOptions& options, SpCheckResult& check) {
  const Shard shard = sp.shard();
  const AttentionShape local = sp.local_shape();
  SpInputs in;
  check.ran = shape.elements() <= options.limit;
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
      sample_rows(local, options.rows, kSeedRows + static_cast<std::uint64_t>(world.rank()));
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

std::string affinity_note(int rank) {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return "affinity unknown";
  return fmt::format("rank {} may run on {} of {} CPUs", rank, CPU_COUNT(&set),
                     std::thread::hardware_concurrency());
}

}  // namespace longnet::bench
