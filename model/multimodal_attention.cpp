#include "model/multimodal_attention.hpp"

#include "runtime/error.hpp"

#include <cstring>

namespace longnet {
namespace {

// Copies `part` [rows, width] into columns [slot * width, (slot + 1) * width) of
// `whole` [rows, M width], or the reverse; any dtype (bytes are moved).
void copy_slot(const Tensor& from, Tensor& to, int64_t rows, int64_t width, int64_t slot,
               int64_t slots, bool into_whole) {
  const std::size_t bytes = dtype_size(from.dtype()) * static_cast<std::size_t>(width);
  const auto* src = static_cast<const std::byte*>(from.raw());
  auto* dst = static_cast<std::byte*>(to.raw());
  for (int64_t r = 0; r < rows; ++r) {
    const std::size_t whole = (static_cast<std::size_t>(r * slots + slot)) * bytes;
    const std::size_t part = static_cast<std::size_t>(r) * bytes;
    if (into_whole) {
      std::memcpy(dst + whole, src + part, bytes);
    } else {
      std::memcpy(dst + part, src + whole, bytes);
    }
  }
}

}  // namespace

MultiModalDilatedAttention::MultiModalDilatedAttention(std::string prefix, MultiModalConfig config,
                                                       DType dtype, uint64_t seed)
    : config_(std::move(config)),
      dtype_(dtype),
      cross_(prefix + ".cross", config_.cross, dtype, seed + 977) {
  LONGNET_CHECK(config_.modalities >= 1, "multi-modal attention needs at least one modality");
  LONGNET_CHECK(config_.cross.dim == config_.modalities * config_.modality.dim,
                "multi-modal attention: the cross layer's dim {} must be modalities x modality "
                "dim = {} x {}",
                config_.cross.dim, config_.modalities, config_.modality.dim);
  for (int64_t m = 0; m < config_.modalities; ++m) {
    modality_.emplace_back(prefix + ".modality" + std::to_string(m), config_.modality, dtype,
                           seed + 101 * static_cast<uint64_t>(m + 1));
  }
}

std::vector<Parameter*> MultiModalDilatedAttention::parameters() {
  std::vector<Parameter*> all;
  for (DilatedAttention& layer : modality_) {
    for (Parameter* p : layer.parameters()) all.push_back(p);
  }
  for (Parameter* p : cross_.parameters()) all.push_back(p);
  return all;
}

Tensor MultiModalDilatedAttention::forward(const std::vector<const Tensor*>& inputs,
                                           AttentionCore& modality_core, AttentionCore& cross_core,
                                           ModelOps& ops, MultiModalSaved& saved) const {
  const int64_t slots = config_.modalities, width = config_.modality.dim;
  LONGNET_CHECK(static_cast<int64_t>(inputs.size()) == slots,
                "multi-modal attention: {} inputs for {} modalities (pass nullptr for a missing "
                "one)",
                inputs.size(), slots);
  const AttentionShape& shape = modality_core.local_shape();
  const int64_t rows = shape.batch * shape.tokens;
  Tensor concat = Tensor::zeros({shape.batch, shape.tokens, slots * width}, dtype_);
  saved.present.assign(static_cast<std::size_t>(slots), false);
  saved.modality.assign(static_cast<std::size_t>(slots), {});
  bool any = false;
  for (int64_t m = 0; m < slots; ++m) {
    const Tensor* x = inputs[static_cast<std::size_t>(m)];
    if (x == nullptr) continue;  // missing: its slot stays zero, nothing is computed
    any = true;
    saved.present[static_cast<std::size_t>(m)] = true;
    const Tensor y = modality_[static_cast<std::size_t>(m)].forward(
        *x, modality_core, ops, saved.modality[static_cast<std::size_t>(m)]);
    copy_slot(y, concat, rows, width, m, slots, true);
  }
  LONGNET_CHECK(any, "multi-modal attention: every modality is missing; pass at least one input");
  return cross_.forward(concat, cross_core, ops, saved.cross);
}

std::vector<Tensor> MultiModalDilatedAttention::backward(const Tensor& dy,
                                                         const MultiModalSaved& saved,
                                                         AttentionCore& modality_core,
                                                         AttentionCore& cross_core, ModelOps& ops) {
  const int64_t slots = config_.modalities, width = config_.modality.dim;
  const AttentionShape& shape = modality_core.local_shape();
  const int64_t rows = shape.batch * shape.tokens;
  const Tensor dconcat = cross_.backward(dy, saved.cross, cross_core, ops);
  std::vector<Tensor> dx(static_cast<std::size_t>(slots));
  for (int64_t m = 0; m < slots; ++m) {
    if (!saved.present[static_cast<std::size_t>(m)]) continue;
    Tensor dym({shape.batch, shape.tokens, width}, dtype_);
    copy_slot(dconcat, dym, rows, width, m, slots, false);
    dx[static_cast<std::size_t>(m)] = modality_[static_cast<std::size_t>(m)].backward(
        dym, saved.modality[static_cast<std::size_t>(m)], modality_core, ops);
  }
  return dx;
}

}  // namespace longnet
