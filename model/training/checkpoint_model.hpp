// A trained decoder rebuilt from a checkpoint, for evaluation and inference: the model the
// checkpoint's own config describes, with the checkpoint's parameters (the optimizer
// state is not kept).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "model/longnet_decoder.hpp"
#include "model/training/train_config.hpp"

namespace longnet {

struct CheckpointModel {
  std::string config_toml;  // as the checkpoint carries it
  TrainConfig config;       // parsed from it
  int64_t step = 0;         // optimizer steps the checkpoint had completed
  std::unique_ptr<LongNetDecoder> model;
};

// Reads and checks the file (read_checkpoint), builds the decoder of its config and loads
// every parameter by name. Errors name the file and what does not match.
CheckpointModel load_checkpoint_model(const std::filesystem::path& file);

// `path` itself if it is a file; the newest complete checkpoint if it is a directory
// (an error naming the directory when it holds none).
std::filesystem::path resolve_checkpoint(const std::filesystem::path& path);

}  // namespace longnet
