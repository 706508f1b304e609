// `longnet bench train`: the training throughput of a config, as `longnet train` runs it.
//
// Runs the real training loop (model/training/trainer.hpp) for --warmup + --steps steps
// from the config's start (same data, schedule and seed as `longnet train`, so the losses
// are the training run's first losses), into a temporary checkpoint directory that is
// removed afterwards, and reports the median wall time of the timed steps on rank 0
// (data-parallel steps end in an all-reduce, so every rank's step takes as long). Under
// mpirun it runs on every rank, like `longnet train`.
//
// Columns (bench/README.md): tokens/s = global tokens per step / median step time; the
// matmul GFLOP/s counts 6 FLOPs per weight and token (forward 2, backward 4) over the
// projections, feed-forward and output head, not attention, so runs of any framework
// on the same model compare. bench/train_vs_torch.sh runs this beside
// bench/torch_longnet.py (the same model in PyTorch) and reports the ratio.
#include <fmt/format.h>
#include <omp.h>

#include <unistd.h>
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench_commands.hpp"
#include "bench/result_table.hpp"
#include "bench/stats.hpp"
#include "bench/timing.hpp"
#include "comm/collective_step.hpp"
#include "comm/communicator_factory.hpp"
#include "model/training/train_config.hpp"
#include "model/training/trainer.hpp"
#include "runtime/error.hpp"

namespace longnet::bench {
namespace {

struct TrainBenchOptions {
  std::string config;  // empty: the built-in defaults (configs/tiny.toml)
  std::vector<std::string> overrides;
  int64_t steps = 20, warmup = 3;
  std::string label = "longnet";
  std::string csv, json;
};

// FLOPs per token of the weight matmuls, forward and backward (2 + 4 per weight).
double matmul_flops_per_token(const ModelSection& m) {
  const double d = static_cast<double>(m.dim), ffn = static_cast<double>(m.ffn_dim);
  const double kv = m.kv_heads > 0
                        ? d / static_cast<double>(m.heads) * static_cast<double>(m.kv_heads)
                        : d;  // width of k and v (grouped-query attention)
  const double weights = static_cast<double>(m.layers) * (2 * d * d + 2 * kv * d + 2 * d * ffn) +
                         static_cast<double>(m.vocab_size) * d;
  return 6 * weights;
}

// A fresh directory for the run's checkpoints, named by rank 0 and shared with the others
// (they must agree on checkpoint.dir).
std::filesystem::path shared_temporary_directory(Communicator& world) {
  std::array<std::uint8_t, 512> name{};
  run_collectively(world, [&] {
    if (world.rank() != 0) return;
    std::error_code error;
    const std::filesystem::path base = std::filesystem::temp_directory_path(error);
    LONGNET_CHECK(!error,
                  "bench train: no directory for temporary files ({}); set TMPDIR to a writable "
                  "directory",
                  error.message());
    std::string pattern = (base / "longnet-bench-train-XXXXXX").string();
    LONGNET_CHECK(pattern.size() < name.size(),
                  "bench train: the temporary path {} is too long; set TMPDIR to a shorter one",
                  pattern);
    LONGNET_CHECK(mkdtemp(pattern.data()) != nullptr,
                  "bench train: cannot create a temporary directory from {} (set TMPDIR to a "
                  "writable directory)",
                  pattern);
    std::copy(pattern.begin(), pattern.end(), name.begin());
  });
  world.broadcast<std::uint8_t>(name, 0, "bench train directory");
  return std::filesystem::path(reinterpret_cast<const char*>(name.data()));
}

void run_train_bench(const TrainBenchOptions& o) {
  auto world = make_world_communicator();
  TrainConfig config = agreed_train_config(o.config, o.overrides);
  try {
    LONGNET_CHECK(o.steps >= 1 && o.warmup >= 0, "--steps must be >= 1 and --warmup >= 0");
    LONGNET_CHECK(o.warmup + o.steps <= config.optimizer.max_steps,
                  "--warmup {} + --steps {} exceeds optimizer.max_steps = {}: lower them or "
                  "--set optimizer.max_steps",
                  o.warmup, o.steps, config.optimizer.max_steps);
  } catch (const Error& e) {  // the same on every rank
    throw AgreedError(e.what());
  }
  const std::filesystem::path directory = shared_temporary_directory(*world);
  config.checkpoint.dir = (directory / "checkpoints").string();
  config.checkpoint.every = 0;
  config.eval.every = 0;
  const bool leader = world->rank() == 0;
  const int threads = omp_get_max_threads();
  const int64_t sp = config.parallel.sp, dp = world->size() / std::max<int64_t>(sp, 1);
  const double tokens_per_step = static_cast<double>(config.data.batch_size * config.data.seq_len *
                                                     config.data.grad_accum * dp);
  if (leader) {
    fmt::print("# longnet bench train: {} on {}\n", o.label, machine_description());
    fmt::print(
        "# model: dim {} layers {} heads {} (kv heads {}) ffn {} vocab {}; data: batch {} x {} "
        "tokens per group, grad_accum {}; {} ranks = {} data-parallel x {} sequence-parallel, "
        "{} OpenMP threads per rank\n",
        config.model.dim, config.model.layers, config.model.heads,
        config.model.kv_heads > 0 ? config.model.kv_heads : config.model.heads,
        config.model.ffn_dim, config.model.vocab_size, config.data.batch_size, config.data.seq_len,
        config.data.grad_accum, world->size(), dp, sp, threads);
    fmt::print("# {} warm-up steps, then {} timed steps (the config's schedule from step 1)\n",
               o.warmup, o.steps);
    std::fflush(stdout);
  }

  TrainOptions train_options;
  train_options.stop_at = o.warmup + o.steps;
  train_options.quiet = true;
  TrainResult result;
  try {
    result = train(config, *world, train_options);
  } catch (...) {
    std::error_code ignored;  // the training's error is the one to report
    if (leader) std::filesystem::remove_all(directory, ignored);
    throw;
  }
  world->barrier();
  if (leader) {
    std::error_code error;
    std::filesystem::remove_all(directory, error);
    LONGNET_CHECK(!error, "bench train: cannot remove the temporary directory {}: {}",
                  directory.string(), error.message());
  }
  if (!leader) return;

  LONGNET_CHECK(static_cast<int64_t>(result.steps.size()) == o.warmup + o.steps,
                "bench train: the run recorded {} steps, expected {}", result.steps.size(),
                o.warmup + o.steps);
  std::vector<double> seconds;
  for (std::size_t i = static_cast<std::size_t>(o.warmup); i < result.steps.size(); ++i)
    seconds.push_back(result.steps[i].seconds);
  const double step_s = median(seconds);
  const double tokens_per_s = tokens_per_step / step_s;
  const double gflops = matmul_flops_per_token(config.model) * tokens_per_s / 1e9;
  const TrainRecord& last = result.steps.back();

  ResultTable table{.benchmark = "longnet bench train",
                    .info = {{"machine", machine_description()},
                             {"date", utc_now()},
                             {"label", o.label},
                             {"warmup", std::to_string(o.warmup)},
                             {"steps", std::to_string(o.steps)}},
                    .columns = {"label", "ranks", "threads_per_rank", "dp", "sp", "tokens_per_step",
                                "median_step_s", "min_step_s", "max_step_s", "tokens_per_s",
                                "matmul_gflops", "last_step", "last_loss"},
                    .text_columns = {"label"}};
  table.add_row({o.label, std::to_string(world->size()), std::to_string(threads),
                 std::to_string(dp), std::to_string(sp), fmt::format("{:.0f}", tokens_per_step),
                 fmt::format("{:.6g}", step_s),
                 fmt::format("{:.6g}", *std::ranges::min_element(seconds)),
                 fmt::format("{:.6g}", *std::ranges::max_element(seconds)),
                 fmt::format("{:.1f}", tokens_per_s), fmt::format("{:.2f}", gflops),
                 std::to_string(last.step), fmt::format("{:.4f}", last.loss)});
  fmt::print("# {:>10} {:>5} {:>7} {:>10} {:>10} {:>10} {:>10} {:>10} {:>6} {:>9}\n", "label",
             "ranks", "threads", "median_s", "min_s", "max_s", "tok/s", "mm_GFLOP/s", "step",
             "loss");
  fmt::print(
      "  {:>10} {:>5} {:>7} {:>10.5f} {:>10.5f} {:>10.5f} {:>10.1f} {:>10.2f} {:>6} {:>9.4f}\n",
      o.label, world->size(), threads, step_s, *std::ranges::min_element(seconds),
      *std::ranges::max_element(seconds), tokens_per_s, gflops, last.step, last.loss);
  write_outputs(table, o.csv, o.json);
}

}  // namespace

void add_train_bench(CLI::App& bench) {
  auto o = std::make_shared<TrainBenchOptions>();
  CLI::App* cmd = bench.add_subcommand(
      "train",
      "Training throughput of a config as `longnet train` runs it (median step time, "
      "tokens/s); under mpirun on every rank");
  cmd->add_option("--config", o->config,
                  "TOML config (default: the built-in tiny config, as in configs/tiny.toml)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--set", o->overrides,
                  "override one setting, as for `longnet train` (repeatable)");
  cmd->add_option("--steps", o->steps, "timed steps")->capture_default_str();
  cmd->add_option("--warmup", o->warmup, "untimed steps first")->capture_default_str();
  cmd->add_option("--label", o->label, "the row's label (in the table and files)")
      ->capture_default_str();
  add_output_options(*cmd, o->csv, o->json);
  cmd->callback([o] { run_train_bench(*o); });
}

}  // namespace longnet::bench
