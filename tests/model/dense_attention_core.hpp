// A float64 AttentionCore for tests: dense masked attention over per-pattern q and k,
// written from the definition (one softmax over the union of every pattern's allowed
// keys, each pattern scoring with its own q_p, k_p), so the DilatedAttention layer can
// be run in double and checked by finite differences.
#pragma once

#include "model/attention_core.hpp"

namespace longnet::test {

class DenseAttentionCore final : public AttentionCore {
 public:
  DenseAttentionCore(DilatedAttentionConfig config, AttentionShape shape)
      : config_(std::move(config)), shape_(shape) {}
  int64_t first_token() const override { return 0; }
  const AttentionShape& local_shape() const override { return shape_; }
  void forward(std::span<const PatternOperands> patterns, const Tensor& v, Tensor& o,
               Tensor& lse) override;
  void backward(std::span<const PatternOperands> patterns, const Tensor& v, const Tensor& o,
                const Tensor& lse, const Tensor& dout, Tensor& dv) override;

 private:
  DilatedAttentionConfig config_;
  AttentionShape shape_;
};

}  // namespace longnet::test
