// A trainable tensor with its gradient, named for checkpoints ("layers.0.attn.wq").
#pragma once

#include "runtime/tensor.hpp"

#include <string>
#include <vector>

namespace longnet {

struct Parameter {
  std::string name;
  Tensor value;
  Tensor grad;                // same shape and dtype; accumulated by backward, zeroed per step
  bool weight_decay = false;  // AdamW decays matrices, not biases, norms or embeddings' bias
};

// value ~ normal(0, std) (std 0: all zeros); grad = 0.
Parameter make_parameter(std::string name, Shape shape, DType dtype, double std, uint64_t seed,
                         bool weight_decay);

}  // namespace longnet
