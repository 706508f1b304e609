// The decoder a training config describes: the trainer builds its model from it, and the
// Python package rebuilds a checkpoint's model from the config the checkpoint carries.
#pragma once

#include "model/longnet_decoder.hpp"
#include "model/training/train_config.hpp"

namespace longnet {

DecoderConfig decoder_config(const TrainConfig& config);

}  // namespace longnet
