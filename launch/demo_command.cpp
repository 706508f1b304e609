// `longnet demo`: 64K tokens (by default) through the default multi-pattern
// configuration on the CPU kernels. Prints the time, effective GFLOP/s, the peak
// memory against the bytes of q, k, v and o, and the error of a sample of rows
// against their exact double-precision values. Exits non-zero if that error is
// above the float32 bound, so the quick start cannot report a wrong kernel as a success.
#include "launch/demo_command.hpp"

#include "kernels/dilated_attention_factory.hpp"
#include "kernels/dilated_attention_spot_check.hpp"
#include "runtime/memory_usage.hpp"
#include "runtime/random_fill.hpp"

#include <fmt/format.h>
#include <omp.h>

#include <chrono>
#include <memory>

namespace longnet {
namespace {

struct DemoOptions {
  int64_t tokens = 65536, batch = 1, heads = 8, head_dim = 64;
  std::vector<int64_t> segments{2048, 4096, 8192, 16384};
  std::vector<int64_t> rates{1, 2, 4, 8};
  bool non_causal = false;
  std::string offsets = "interleaved";
  std::string isa;
  int threads = 0;
  int64_t check_rows = 64;
  double tolerance = 1e-5;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double mib(double bytes) { return bytes / (1024.0 * 1024.0); }

void run_demo(const DemoOptions& opt) {
  if (opt.threads > 0) omp_set_num_threads(opt.threads);
  const auto config = DilatedAttentionConfig::from_lists(opt.segments, opt.rates, !opt.non_causal,
                                                         parse_head_offsets(opt.offsets));
  const AttentionShape shape{opt.batch, opt.tokens, opt.heads, opt.head_dim};
  validate_shape(shape);
  auto kernels = make_dilated_attention(Device::cpu, DType::float32, parse_cpu_isa_option(opt.isa));

  fmt::print("longnet demo: dilated attention, {} | {}\n", shape.describe(), config.describe());
  fmt::print("  backend {} with {} threads\n", kernels->name(), omp_get_max_threads());

  auto start = std::chrono::steady_clock::now();
  const Shape full = qkv_shape(shape);
  const Tensor q = random_tensor(full, 1), k = random_tensor(full, 2), v = random_tensor(full, 3);
  Tensor o(full, DType::float32), lse(lse_shape(shape), DType::float32);
  fmt::print("  inputs: {:.1f} s to generate q, k, v ({:.0f} MiB each)\n", seconds_since(start),
             mib(static_cast<double>(q.nbytes())));

  start = std::chrono::steady_clock::now();
  kernels->forward(config, q, k, v, o, lse);
  const double forward_s = seconds_since(start);
  const double flops = forward_flops(config, shape);
  fmt::print("  forward: {:.3f} s, {:.1f} effective GFLOP/s ({:.3g} allowed query-key pairs)\n",
             forward_s, flops / forward_s / 1e9, allowed_pairs(config, shape));

  const double qkvo_bytes = 4.0 * static_cast<double>(q.nbytes());
  const double peak = static_cast<double>(peak_resident_bytes());
  fmt::print("  peak memory: {:.0f} MiB resident = {:.2f} x the {:.0f} MiB of q, k, v, o\n",
             mib(peak), peak / qkvo_bytes, mib(qkvo_bytes));

  start = std::chrono::steady_clock::now();
  const auto rows = sample_rows(shape, opt.check_rows, 42);
  const SpotCheckError error = spot_check_forward(config, q, k, v, o, lse, rows);
  fmt::print(
      "  check: {} sampled rows against their exact float64 values: relative L2 error "
      "{:.2e}, max |lse error| {:.2e} ({:.1f} s)\n",
      error.rows, error.o, error.lse, seconds_since(start));
  LONGNET_CHECK(error.o <= opt.tolerance && error.coverage_mismatches == 0,
                "the demo's output does not match the exact values (relative error {:.3g}, bound "
                "{:.1g}; {} rows covered in one and not the other): the kernels are wrong on this "
                "machine; please report it with this output",
                error.o, opt.tolerance, error.coverage_mismatches);
  fmt::print("  ok\n");
}

}  // namespace

void add_demo_command(CLI::App& app) {
  auto opt = std::make_shared<DemoOptions>();
  CLI::App* cmd = app.add_subcommand(
      "demo", "run dilated attention on random inputs (64K tokens by default) and check it");
  cmd->add_option("--tokens,-n", opt->tokens, "sequence length N")->capture_default_str();
  cmd->add_option("--batch,-b", opt->batch, "batch size B")->capture_default_str();
  cmd->add_option("--heads", opt->heads, "heads H")->capture_default_str();
  cmd->add_option("--head-dim,-d", opt->head_dim, "head dimension D")->capture_default_str();
  cmd->add_option("--segments,-w", opt->segments, "segment lengths")->delimiter(',');
  cmd->add_option("--rates,-r", opt->rates, "dilation rates, one per segment length")
      ->delimiter(',');
  cmd->add_flag("--non-causal", opt->non_causal, "non-causal attention (default causal)");
  cmd->add_option("--offsets", opt->offsets, "head offsets: interleaved or grouped");
  cmd->add_option("--isa", opt->isa, "CPU kernels: generic, avx2 or avx512 (default: best)");
  cmd->add_option("--threads", opt->threads, "OpenMP threads (default: OMP_NUM_THREADS or all)");
  cmd->add_option("--check-rows", opt->check_rows, "rows checked against exact values")
      ->capture_default_str();
  cmd->callback([opt] { run_demo(*opt); });
}

}  // namespace longnet
