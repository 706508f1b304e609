// What differs between two training configs, for a resume under another config.
//
// A checkpoint records the config it was written with (its `config` attribute). A run
// resumed under a changed config prints every difference as field, old value, new value,
// and refuses those that would make the continued run meaningless:
//   refused  model.* (the parameters' shapes and meaning), data.seq_len (the positions
//            the model was trained on), seed (the data order and dropout masks of the
//            remaining steps would not be those of the run being continued)
//   allowed  everything else: optimizer.* (lr, schedule, max_steps: a longer or
//            re-tuned run), data.batch_size / grad_accum / dir, parallel.sp (resume on
//            another rank count), checkpoint.*, eval.*, log.*
// There is one optimizer (AdamW), so no optimizer type to compare.
#pragma once

#include <string>
#include <vector>

#include "model/training/train_config.hpp"

namespace longnet {

struct ConfigChange {
  std::string field;                 // "optimizer.lr", "seed"
  std::string old_value, new_value;  // as TOML writes them
  bool refused = false;              // a resume with this change is an error
};

// The fields of `now` that differ from `saved`, in to_toml's order.
std::vector<ConfigChange> config_changes(const TrainConfig& saved, const TrainConfig& now);

// Whether a resume may not change `field` (see above).
bool change_refused_on_resume(const std::string& field);

}  // namespace longnet
