// What the ranks of a training job must agree on before collectives depend on it.
//
// Ranks that read different configs (another file on one node, a different --set) or
// different data would call mismatched collectives and hang, or train on mixed state.
// Each check below is collective over `world` and throws the same AgreedError on every
// rank, naming the ranks and the values that differ.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "comm/collective_step.hpp"
#include "model/training/train_config.hpp"

namespace longnet {

struct TrainOptions;

// Before the first collective that depends on the config: every rank's config (its
// whole to_toml text, by a 64-bit fingerprint) and run options (--resume, --stop-at)
// equal rank 0's. The error names the differing ranks and, for the key fields (shapes,
// steps, seed, --stop-at), both values.
void agree_on_config(Communicator& world, const TrainConfig& config, const TrainOptions& options);

// Every rank read splits of the same sizes (tokens) as rank 0.
void agree_on_data(Communicator& world, int64_t train_tokens, int64_t val_tokens);

// The checkpoint to resume from, the same on every rank. `resume` is "auto" (rank 0
// picks the newest complete checkpoint in `dir` and broadcasts its path; a rank whose own
// newest differs says so and loads rank 0's) or a file. Every rank must see the chosen
// file, or the job stops naming the rank and the file. nullopt: "auto" found nothing.
std::optional<std::filesystem::path> agree_on_resume_file(Communicator& world,
                                                          const std::string& resume,
                                                          const std::filesystem::path& dir);

// Every rank resumed at the same step (copies of one checkpoint name can differ between
// node-local directories).
void agree_on_resumed_step(Communicator& world, int64_t step, const std::filesystem::path& file);

// Prints (through `say`) every field of `now` that differs from the checkpoint's
// `saved` config, and throws AgreedError when one of them may not change on resume
// (config_diff.hpp says which and why).
void check_resume_config(const TrainConfig& saved, const TrainConfig& now,
                         const std::filesystem::path& file,
                         const std::function<void(const std::string&)>& say);

}  // namespace longnet
