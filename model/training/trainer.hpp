// `longnet train`: the training loop of the LongNet decoder across ranks.
//
// World = data-parallel groups x sequence-parallel ranks (config.parallel.sp ranks per
// group, consecutive in the world). Every rank holds the whole model (parameters are
// replicated); the ranks of a group split each sequence of the group's batch
// (SequenceParallelAttention), and groups draw different batches. A step:
//   grads = 0; for each micro-batch: forward, backward with scale 1 / (global tokens)
//   one all-reduce (sum) of every gradient over the world -> the mean gradient
//   clip by global norm; AdamW with warmup + cosine learning rate
// Every rank then applies the same update to the same values, so replicas stay equal.
// The all-reduce goes in buckets, one per decoder block, each started (non-blocking) as
// soon as the backward has finished that block's gradients.
// Data windows depend on (seed, step, group) only, and dropout (when on) on global token
// positions, so a resumed run continues exactly where it stopped.
#pragma once

#include "comm/communicator.hpp"
#include "model/training/train_config.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace longnet {

struct TrainOptions {
  std::string resume;    // "" (start fresh), "auto" (newest checkpoint, if any), or a file
  std::string log_json;  // JSON-lines log of every record (rank 0), or ""
  std::optional<int64_t> stop_at;  // stop (with a checkpoint) once this step is done; >= 1
  bool quiet = false;              // no progress lines (tests)
};

struct TrainRecord {
  int64_t step = 0;
  double loss = 0;  // mean training loss of the step (nats per token)
  double lr = 0;
  double seconds = 0;  // this rank's wall time of the step (data, forward, backward, update)
};

struct TrainResult {
  int64_t first_step = 0;     // the step training started from (after a resume)
  int64_t last_step = 0;      // steps completed
  bool interrupted = false;   // stopped by SIGTERM / SIGUSR1 (checkpoint written)
  int64_t skipped_steps = 0;  // steps skipped for a non-finite loss or gradient norm
  std::vector<TrainRecord> steps;
  double validation_loss = 0;                     // at the end (nats per token)
  std::vector<double> validation_by_position;     // mean loss per position bucket
  std::vector<int64_t> validation_bucket_starts;  // first position of each bucket
  double unigram_entropy_nats = 0;                // of the training split
};

// Collective over `world`. Throws AgreedError for problems every rank sees alike (a bad
// config, a missing corpus, a mismatched checkpoint, ranks that disagree on the config,
// data or checkpoint, a checkpoint directory locked by another run or not writable, a
// diverged run: a NaN or infinite loss or gradient norm with optimizer.on_nonfinite =
// "stop", or too many skipped steps, a JSON log that could not be written).
TrainResult train(const TrainConfig& config, Communicator& world, const TrainOptions& options);

// The config of `path` (empty: the built-in defaults, as in configs/tiny.toml) with the
// `--set` overrides applied, read by every rank alike: a problem is an AgreedError (one
// message, printed once), not one error per rank.
TrainConfig agreed_train_config(const std::string& path, std::span<const std::string> overrides);

// The learning rate at `step` (0-based): linear warmup to lr, then cosine to min_lr at
// max_steps.
double learning_rate(const OptimizerSection& opt, int64_t step);

}  // namespace longnet
