// The LongNet decoder language model:
//   h = embed[tokens]
//   per block: h += DilatedAttention(LN1(h));  h += W2 GELU(W1 LN2(h) + b1) + b2
//   logits = LN_f(h) embed^T   (the output head is tied to the embedding)
//   loss = softmax cross-entropy against the next tokens
// Pre-LayerNorm blocks with residuals. Every position-wise op runs on this rank's tokens
// alone; only attention sees other ranks' tokens (through its AttentionCore), so the
// same model runs on one rank or with the sequence split across several.
#pragma once

#include "model/dilated_attention_layer.hpp"
#include "model/ops/model_ops.hpp"
#include "model/parameter.hpp"

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace longnet {

struct DecoderConfig {
  int64_t vocab_size = 256;
  int64_t layers = 2;
  int64_t ffn_dim = 512;
  double layer_norm_eps = 1e-5;
  DilatedAttentionLayerConfig attention;  // dim, heads, patterns, xPos, init_std
  int64_t dim() const { return attention.dim; }
};

// One forward's activations, kept for the backward.
struct DecoderActivations {
  struct Block {
    Tensor h_in, ln1, ln1_mean, ln1_rstd;
    DilatedAttentionSaved attention;
    Tensor h_mid, ln2, ln2_mean, ln2_rstd, fc1, gelu;
  };
  std::vector<int32_t> tokens, targets;
  std::vector<Block> blocks;
  Tensor h_out, final_ln, final_mean, final_rstd;
};

class LongNetDecoder {
 public:
  LongNetDecoder(DecoderConfig config, DType dtype, uint64_t seed);

  const DecoderConfig& config() const { return config_; }
  // Every parameter, in a fixed order (the checkpoint's and the all-reduce's).
  std::vector<Parameter*> parameters();
  void zero_grads();

  // tokens, targets: this rank's [B, T] (T = core.local_shape().tokens), row-major.
  // Returns the SUM of the token losses; per_token_loss (size B*T, optional) gets each.
  // randomness: training turns attention dropout on (model/dilated_attention_layer.hpp).
  // predicted (size B*T, optional) gets each position's most likely next token (the
  // greedy choice), for evaluations that score exact answers.
  double forward(std::span<const int32_t> tokens, std::span<const int32_t> targets,
                 AttentionCore& core, ModelOps& ops, DecoderActivations& saved,
                 std::span<double> per_token_loss = {}, const AttentionRandomness& randomness = {},
                 std::span<int32_t> predicted = {});
  // Adds d(grad_scale * loss_sum)/d(parameter) into every parameter's grad. When given,
  // gradients_ready is called as soon as a group of parameters has its final gradient
  // (each block, last to first, then the embedding and final norm), so their all-reduce
  // can start while the backward goes on.
  using GradientsReady = std::function<void(std::span<Parameter* const>)>;
  void backward(const DecoderActivations& saved, double grad_scale, AttentionCore& core,
                ModelOps& ops, const GradientsReady& gradients_ready = {});

 private:
  struct Block {
    Parameter ln1_g, ln1_b, ln2_g, ln2_b, w1, b1, w2, b2;
    DilatedAttention attention;
  };
  DecoderConfig config_;
  DType dtype_;
  Parameter embed_, final_g_, final_b_;
  std::vector<Block> blocks_;
};

}  // namespace longnet
