#include "model/pattern_operands.hpp"

#include "runtime/error.hpp"

namespace longnet {

TaskExtras task_extras(const PatternOperands& operands, const DilationPattern& pattern,
                       int64_t heads, bool backward) {
  TaskExtras extras;
  const int64_t rows = relative_bias_rows(pattern), width = 2 * rows - 1;
  if (operands.bias != nullptr) {
    LONGNET_CHECK(
        operands.bias->shape() == Shape({heads, width}) && operands.bias->dtype() == DType::float32,
        "relative position bias of pattern w={} r={}: expected float32 [{}, {}], got "
        "{} {}",
        pattern.segment_length, pattern.dilation_rate, heads, width,
        dtype_name(operands.bias->dtype()), shape_string(operands.bias->shape()));
    for (int64_t h = 0; h < heads; ++h) {
      extras.bias.push_back(operands.bias->data<float>() + h * width + rows - 1);
    }
    if (backward && operands.dbias != nullptr) {
      LONGNET_CHECK(operands.dbias->shape() == operands.bias->shape(),
                    "relative position bias gradient: shape {} differs from the bias's {}",
                    shape_string(operands.dbias->shape()), shape_string(operands.bias->shape()));
      for (int64_t h = 0; h < heads; ++h) {
        extras.dbias.push_back(operands.dbias->data<float>() + h * width + rows - 1);
      }
    }
  }
  if (operands.dropout_p > 0) {
    check_dropout_probability(operands.dropout_p);
    LONGNET_CHECK(static_cast<int64_t>(operands.dropout_keys.size()) == heads,
                  "dropout needs one key per head: {} keys for {} heads",
                  operands.dropout_keys.size(), heads);
    extras.dropout_keys = operands.dropout_keys;
  }
  return extras;
}

}  // namespace longnet
