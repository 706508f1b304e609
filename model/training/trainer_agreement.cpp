#include "model/training/trainer_agreement.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <array>
#include <cstdio>
#include <vector>

#include "model/training/checkpoint.hpp"
#include "model/training/config_diff.hpp"
#include "model/training/trainer.hpp"

namespace longnet {
namespace {

namespace fs = std::filesystem;

// FNV-1a, 64 bits: equal texts give equal values on every rank and machine.
int64_t fingerprint(std::string_view text) {
  uint64_t h = 1469598103934665603ULL;
  for (const char c : text) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  return static_cast<int64_t>(h);
}

// Every rank's `values` (the same count on each), rank-major.
std::vector<int64_t> gather(Communicator& world, const std::vector<int64_t>& values,
                            std::string_view tag) {
  std::vector<int64_t> all(values.size() * static_cast<std::size_t>(world.size()));
  world.all_gather<int64_t>(values, all, tag);
  return all;
}

// "rank 1 has data.seq_len = 128 (rank 0: 64)" for each differing (rank, field); empty
// when every rank equals rank 0.
std::vector<std::string> differences(const std::vector<int64_t>& all,
                                     std::span<const char* const> names, int ranks) {
  const std::size_t n = names.size();
  std::vector<std::string> out;
  for (int r = 1; r < ranks; ++r) {
    for (std::size_t i = 0; i < n; ++i) {
      const int64_t mine = all[static_cast<std::size_t>(r) * n + i], root = all[i];
      if (mine != root)
        out.push_back(fmt::format("rank {} has {} = {} (rank 0: {})", r, names[i], mine, root));
    }
  }
  return out;
}

}  // namespace

void agree_on_config(Communicator& world, const TrainConfig& config, const TrainOptions& options) {
  static constexpr std::array<const char*, 13> kNames = {"data.seq_len",
                                                         "data.batch_size",
                                                         "data.grad_accum",
                                                         "model.dim",
                                                         "model.layers",
                                                         "model.heads",
                                                         "model.ffn_dim",
                                                         "parallel.sp",
                                                         "optimizer.max_steps",
                                                         "seed",
                                                         "--stop-at",
                                                         "--resume (fingerprint)",
                                                         "config (fingerprint of every field)"};
  const std::vector<int64_t> mine = {
      config.data.seq_len,          config.data.batch_size,
      config.data.grad_accum,       config.model.dim,
      config.model.layers,          config.model.heads,
      config.model.ffn_dim,         config.parallel.sp,
      config.optimizer.max_steps,   static_cast<int64_t>(config.seed),
      options.stop_at.value_or(-1), fingerprint(options.resume),
      fingerprint(to_toml(config))};
  const auto found = differences(gather(world, mine, "config agreement"), kNames, world.size());
  if (found.empty()) return;
  throw AgreedError(fmt::format(
      "the ranks disagree on the training config: {}; every rank must read the same config "
      "file with the same --set, --resume and --stop-at (a fingerprint alone differs when "
      "another field does, e.g. data.dir or optimizer.lr)",
      fmt::join(found, "; ")));
}

void agree_on_data(Communicator& world, int64_t train_tokens, int64_t val_tokens) {
  static constexpr std::array<const char*, 2> kNames = {"train tokens", "val tokens"};
  const auto found = differences(gather(world, {train_tokens, val_tokens}, "data agreement"),
                                 kNames, world.size());
  if (found.empty()) return;
  throw AgreedError(fmt::format(
      "the ranks read different token data: {}; data.dir must hold the same train.h5 and "
      "val.h5 on every node",
      fmt::join(found, "; ")));
}

std::optional<fs::path> agree_on_resume_file(Communicator& world, const std::string& resume,
                                             const fs::path& dir) {
  if (resume != "auto") {
    run_collectively(world, [&] {
      LONGNET_CHECK(fs::exists(resume), "cannot resume: checkpoint '{}' does not exist", resume);
    });
    return fs::path(resume);
  }
  const std::optional<fs::path> own = latest_checkpoint(dir);
  std::string chosen = world.rank() == 0 && own ? own->string() : std::string();
  std::vector<int64_t> length{static_cast<int64_t>(chosen.size())};
  world.broadcast<int64_t>(length, 0, "resume choice");
  std::vector<uint8_t> bytes(chosen.begin(), chosen.end());
  bytes.resize(static_cast<std::size_t>(length[0]));
  world.broadcast<uint8_t>(bytes, 0, "resume choice");
  chosen.assign(bytes.begin(), bytes.end());
  if (chosen.empty()) {
    run_collectively(world, [&] {
      LONGNET_CHECK(!own,
                    "rank 0 finds no checkpoint in '{}' but this rank finds '{}': the "
                    "checkpoint directory differs between nodes (node-local, or a stale "
                    "network file system); resume from a directory every rank sees alike",
                    dir.string(), own ? own->string() : "");
    });
    return std::nullopt;
  }
  if (own && own->string() != chosen) {
    fmt::print(stderr,
               "note: rank {} sees '{}' as the newest checkpoint, rank 0 chose '{}': every rank "
               "loads rank 0's choice\n",
               world.rank(), own->string(), chosen);
  }
  run_collectively(world, [&] {
    LONGNET_CHECK(fs::exists(chosen),
                  "cannot see checkpoint '{}', which rank 0 chose to resume from: the "
                  "checkpoint directory differs between nodes (node-local, or a stale network "
                  "file system); resume from a directory every rank sees alike",
                  chosen);
  });
  return fs::path(chosen);
}

void agree_on_resumed_step(Communicator& world, int64_t step, const fs::path& file) {
  static constexpr std::array<const char*, 1> kNames = {"step"};
  const auto found = differences(gather(world, {step}, "resume agreement"), kNames, world.size());
  if (found.empty()) return;
  throw AgreedError(fmt::format(
      "the ranks' copies of checkpoint '{}' differ: {}; resume from a directory every rank "
      "sees alike",
      file.string(), fmt::join(found, "; ")));
}

void check_resume_config(const TrainConfig& saved, const TrainConfig& now, const fs::path& file,
                         const std::function<void(const std::string&)>& say) {
  const std::vector<ConfigChange> changes = config_changes(saved, now);
  std::vector<std::string> refused;
  for (const ConfigChange& c : changes) {
    say(fmt::format("resume: {} changed from {} to {}{}", c.field, c.old_value, c.new_value,
                    c.refused ? " (not allowed)" : ""));
    if (c.refused)
      refused.push_back(fmt::format("{} ({} -> {})", c.field, c.old_value, c.new_value));
  }
  if (refused.empty()) return;
  throw AgreedError(fmt::format(
      "checkpoint {} was trained with another {}: {}; a resumed run must keep the model, "
      "data.seq_len and seed (they fix the parameters' meaning and the data order); resume "
      "with the config it was trained with, or start a new run in another checkpoint.dir",
      file.string(), refused.size() == 1 ? "setting" : "settings", fmt::join(refused, ", ")));
}

}  // namespace longnet
