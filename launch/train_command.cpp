#include "launch/train_command.hpp"

#include "comm/collective_step.hpp"
#include "comm/communicator_factory.hpp"
#include "model/training/train_config.hpp"
#include "model/training/trainer.hpp"

#include <fmt/format.h>

#include <memory>
#include <string>
#include <vector>

namespace longnet {
namespace {

struct TrainCommandOptions {
  std::string config;  // empty: the built-in defaults (those of configs/tiny.toml)
  std::vector<std::string> overrides;
  TrainOptions train;
};

void run_train(const TrainCommandOptions& options) {
  auto world = make_world_communicator();
  const TrainConfig config = agreed_train_config(options.config, options.overrides);
  train(config, *world, options.train);
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto options = std::make_shared<TrainCommandOptions>();
  CLI::App* cmd = app.add_subcommand(
      "train",
      "Train the LongNet decoder (byte-level language model) on token shards from `longnet "
      "data prepare`; under mpirun the ranks split into data-parallel groups of "
      "parallel.sp sequence-parallel ranks");
  cmd->add_option("--config", options->config,
                  "TOML config (default: the built-in tiny config, as in configs/tiny.toml)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--set", options->overrides,
                  "override one setting, e.g. --set optimizer.max_steps=50 (repeatable)");
  cmd->add_option("--resume", options->train.resume,
                  "'auto' (continue from the newest complete checkpoint in checkpoint.dir, if "
                  "any) or a checkpoint file");
  cmd->add_option("--log-json", options->train.log_json,
                  "also write every record (steps, validation) as JSON lines to this file");
  cmd->add_option("--stop-at", options->train.stop_at,
                  "stop after this step, writing a checkpoint (for split runs and tests)");
  cmd->callback([options] { run_train(*options); });
}

}  // namespace longnet
