// MultiModalDilatedAttention: one DilatedAttention per modality, their outputs
// concatenated along features, then a cross-modality DilatedAttention over the
// concatenation (as the LongNet documents describe it):
//   y_m = DilatedAttention_m(x_m)            x_m [B, T, dim], one per modality
//   c   = concat_features(y_1, ..., y_M)     [B, T, M dim]
//   out = DilatedAttention_cross(c)          [B, T, M dim]
// A missing modality (a null input) is allowed: its slot of c is zeros and its
// attention is neither run nor differentiated (its parameters get no gradient).
#pragma once

#include "model/dilated_attention_layer.hpp"

#include <vector>

namespace longnet {

struct MultiModalConfig {
  int64_t modalities = 2;
  DilatedAttentionLayerConfig modality;  // each modality's layer (dim = a modality's width)
  DilatedAttentionLayerConfig cross;     // over the concatenation: dim = modalities x modality.dim
};

struct MultiModalSaved {
  std::vector<bool> present;
  std::vector<DilatedAttentionSaved> modality;
  DilatedAttentionSaved cross;
};

class MultiModalDilatedAttention {
 public:
  MultiModalDilatedAttention(std::string prefix, MultiModalConfig config, DType dtype,
                             uint64_t seed);

  const MultiModalConfig& config() const { return config_; }
  std::vector<Parameter*> parameters();

  // inputs: one pointer per modality ([B, T, dim]) or nullptr when that modality is
  // missing. modality_core runs the per-modality attention, cross_core the cross one
  // (their local shapes: [B, T, H, D] of each layer's heads).
  Tensor forward(const std::vector<const Tensor*>& inputs, AttentionCore& modality_core,
                 AttentionCore& cross_core, ModelOps& ops, MultiModalSaved& saved) const;
  // Returns dL/dx_m per modality (an undefined Tensor for a missing one).
  std::vector<Tensor> backward(const Tensor& dy, const MultiModalSaved& saved,
                               AttentionCore& modality_core, AttentionCore& cross_core,
                               ModelOps& ops);

 private:
  MultiModalConfig config_;
  DType dtype_;
  std::vector<DilatedAttention> modality_;
  DilatedAttention cross_;
};

}  // namespace longnet
