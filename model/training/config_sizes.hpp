// The sizes a training config implies, checked before anything is allocated (part of
// validate()): a batch window above kMaxWindowTokens, or an activation whose byte count
// overflows int64, is refused naming the fields.
#pragma once

#include "model/training/train_config.hpp"

namespace longnet {

// Throws longnet::Error naming the fields and the limit.
void check_config_sizes(const TrainConfig& config);

}  // namespace longnet
