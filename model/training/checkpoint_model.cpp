#include "model/training/checkpoint_model.hpp"

#include <algorithm>

#include "model/training/checkpoint.hpp"
#include "model/training/decoder_config.hpp"
#include "runtime/error.hpp"

namespace longnet {

CheckpointModel load_checkpoint_model(const std::filesystem::path& file) {
  CheckpointState state = read_checkpoint(file);
  CheckpointModel loaded;
  loaded.config_toml = state.config_toml;
  loaded.config = parse_train_config_string(state.config_toml);
  loaded.step = state.step;
  // The seed only initialises values that are overwritten below.
  loaded.model = std::make_unique<LongNetDecoder>(decoder_config(loaded.config), DType::float32, 0);
  std::vector<NamedTensor> current;
  for (Parameter* p : loaded.model->parameters()) current.push_back({p->name, p->value});
  check_checkpoint_matches(state, current);  // same names, order and shapes
  for (Parameter* p : loaded.model->parameters()) {
    const auto found = std::ranges::find(state.params, p->name, &NamedTensor::name);
    std::ranges::copy(found->tensor.span<float>(), p->value.span<float>().begin());
  }
  return loaded;
}

std::filesystem::path resolve_checkpoint(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_directory(path, ec)) return path;
  const std::optional<std::filesystem::path> newest = latest_checkpoint(path);
  LONGNET_CHECK(newest.has_value(),
                "checkpoint directory '{}' holds no complete checkpoint (ckpt_<step>.h5): train "
                "first, or pass a checkpoint file",
                path.string());
  return *newest;
}

}  // namespace longnet
