#include "model/longnet_decoder.hpp"

#include "runtime/error.hpp"

#include <fmt/format.h>

namespace longnet {

LongNetDecoder::LongNetDecoder(DecoderConfig config, DType dtype, uint64_t seed)
    : config_(std::move(config)), dtype_(dtype) {
  LONGNET_CHECK(config_.vocab_size > 0 && config_.layers > 0 && config_.ffn_dim > 0,
                "decoder: vocab_size {}, layers {} and ffn_dim {} must be positive",
                config_.vocab_size, config_.layers, config_.ffn_dim);
  const int64_t d = config_.dim(), f = config_.ffn_dim;
  const double std = config_.attention.init_std;
  embed_ = make_parameter("embed", {config_.vocab_size, d}, dtype, std, seed, false);
  final_g_ = make_parameter("final_norm.gamma", {d}, dtype, 0.0, 0, false);
  final_g_.value.fill(1.0);
  final_b_ = make_parameter("final_norm.beta", {d}, dtype, 0.0, 0, false);
  for (int64_t l = 0; l < config_.layers; ++l) {
    const std::string p = fmt::format("layers.{}", l);
    const uint64_t s = seed + 1000 * static_cast<uint64_t>(l + 1);
    Block block{
        make_parameter(p + ".norm1.gamma", {d}, dtype, 0.0, 0, false),
        make_parameter(p + ".norm1.beta", {d}, dtype, 0.0, 0, false),
        make_parameter(p + ".norm2.gamma", {d}, dtype, 0.0, 0, false),
        make_parameter(p + ".norm2.beta", {d}, dtype, 0.0, 0, false),
        make_parameter(p + ".ffn.w1", {f, d}, dtype, std, s + 11, true),
        make_parameter(p + ".ffn.b1", {f}, dtype, 0.0, 0, false),
        make_parameter(p + ".ffn.w2", {d, f}, dtype, std, s + 12, true),
        make_parameter(p + ".ffn.b2", {d}, dtype, 0.0, 0, false),
        DilatedAttention(p + ".attn", config_.attention, dtype, s, static_cast<uint32_t>(l))};
    block.ln1_g.value.fill(1.0);
    block.ln2_g.value.fill(1.0);
    blocks_.push_back(std::move(block));
  }
}

std::vector<Parameter*> LongNetDecoder::parameters() {
  std::vector<Parameter*> all{&embed_};
  for (Block& b : blocks_) {
    for (Parameter* p : {&b.ln1_g, &b.ln1_b}) all.push_back(p);
    for (Parameter* p : b.attention.parameters()) all.push_back(p);
    for (Parameter* p : {&b.ln2_g, &b.ln2_b, &b.w1, &b.b1, &b.w2, &b.b2}) all.push_back(p);
  }
  all.push_back(&final_g_);
  all.push_back(&final_b_);
  return all;
}

void LongNetDecoder::zero_grads() {
  for (Parameter* p : parameters()) p->grad.fill(0.0);
}

double LongNetDecoder::forward(std::span<const int32_t> tokens, std::span<const int32_t> targets,
                               AttentionCore& core, ModelOps& ops, DecoderActivations& saved,
                               std::span<double> per_token_loss,
                               const AttentionRandomness& randomness,
                               std::span<int32_t> predicted) {
  const AttentionShape& shape = core.local_shape();
  const int64_t n = shape.batch * shape.tokens, d = config_.dim(), f = config_.ffn_dim;
  LONGNET_CHECK(
      static_cast<int64_t>(tokens.size()) == n && static_cast<int64_t>(targets.size()) == n,
      "decoder: {} tokens and {} targets for a local batch of B={} x T={}", tokens.size(),
      targets.size(), shape.batch, shape.tokens);
  const double eps = config_.layer_norm_eps;
  saved.tokens.assign(tokens.begin(), tokens.end());
  saved.targets.assign(targets.begin(), targets.end());
  saved.blocks.resize(blocks_.size());

  Tensor h({n, d}, dtype_);
  ops.embedding_forward(tokens, embed_.value, h);
  for (std::size_t l = 0; l < blocks_.size(); ++l) {
    Block& block = blocks_[l];
    DecoderActivations::Block& a = saved.blocks[l];
    a.h_in = h;
    a.ln1 = Tensor({n, d}, dtype_);
    a.ln1_mean = Tensor({n}, dtype_);
    a.ln1_rstd = Tensor({n}, dtype_);
    ops.layer_norm_forward(h, block.ln1_g.value, block.ln1_b.value, eps, a.ln1, a.ln1_mean,
                           a.ln1_rstd);
    const Tensor attn = block.attention.forward(a.ln1.view({shape.batch, shape.tokens, d}), core,
                                                ops, a.attention, randomness);
    a.h_mid = Tensor({n, d}, dtype_);
    ops.add(h, attn.view({n, d}), a.h_mid);

    a.ln2 = Tensor({n, d}, dtype_);
    a.ln2_mean = Tensor({n}, dtype_);
    a.ln2_rstd = Tensor({n}, dtype_);
    ops.layer_norm_forward(a.h_mid, block.ln2_g.value, block.ln2_b.value, eps, a.ln2, a.ln2_mean,
                           a.ln2_rstd);
    a.fc1 = Tensor({n, f}, dtype_);
    ops.linear_forward(a.ln2, block.w1.value, &block.b1.value, a.fc1);
    a.gelu = Tensor({n, f}, dtype_);
    ops.gelu_forward(a.fc1, a.gelu);
    Tensor mlp({n, d}, dtype_);
    ops.linear_forward(a.gelu, block.w2.value, &block.b2.value, mlp);
    h = Tensor({n, d}, dtype_);
    ops.add(a.h_mid, mlp, h);
  }
  saved.h_out = h;
  saved.final_ln = Tensor({n, d}, dtype_);
  saved.final_mean = Tensor({n}, dtype_);
  saved.final_rstd = Tensor({n}, dtype_);
  ops.layer_norm_forward(h, final_g_.value, final_b_.value, eps, saved.final_ln, saved.final_mean,
                         saved.final_rstd);
  Tensor logits({n, config_.vocab_size}, dtype_);
  ops.linear_forward(saved.final_ln, embed_.value, nullptr, logits);
  if (!predicted.empty()) ops.argmax_rows(logits, predicted);
  return ops.cross_entropy(logits, targets, 0.0, nullptr, per_token_loss);
}

void LongNetDecoder::backward(const DecoderActivations& saved, double grad_scale,
                              AttentionCore& core, ModelOps& ops,
                              const GradientsReady& gradients_ready) {
  const AttentionShape& shape = core.local_shape();
  const int64_t n = shape.batch * shape.tokens, d = config_.dim(), f = config_.ffn_dim;

  // The logits are recomputed (one [n, V] product) rather than kept from the forward.
  Tensor logits({n, config_.vocab_size}, dtype_), dlogits({n, config_.vocab_size}, dtype_);
  ops.linear_forward(saved.final_ln, embed_.value, nullptr, logits);
  ops.cross_entropy(logits, saved.targets, grad_scale, &dlogits, {});
  Tensor dln({n, d}, dtype_);
  ops.linear_backward(saved.final_ln, embed_.value, dlogits, &dln, embed_.grad, nullptr);
  Tensor dh({n, d}, dtype_);
  ops.layer_norm_backward(saved.h_out, final_g_.value, saved.final_mean, saved.final_rstd, dln, dh,
                          final_g_.grad, final_b_.grad);

  Tensor dgelu({n, f}, dtype_), dfc1({n, f}, dtype_), dx({n, d}, dtype_);
  for (std::size_t l = blocks_.size(); l-- > 0;) {
    Block& block = blocks_[l];
    const DecoderActivations::Block& a = saved.blocks[l];
    // h_out = h_mid + W2 GELU(W1 LN2(h_mid) + b1) + b2
    ops.linear_backward(a.gelu, block.w2.value, dh, &dgelu, block.w2.grad, &block.b2.grad);
    ops.gelu_backward(a.fc1, dgelu, dfc1);
    ops.linear_backward(a.ln2, block.w1.value, dfc1, &dln, block.w1.grad, &block.b1.grad);
    ops.layer_norm_backward(a.h_mid, block.ln2_g.value, a.ln2_mean, a.ln2_rstd, dln, dx,
                            block.ln2_g.grad, block.ln2_b.grad);
    ops.add_in_place(dh, dx);
    // h_mid = h_in + attention(LN1(h_in))
    const Tensor dattn =
        block.attention.backward(dh.view({shape.batch, shape.tokens, d}), a.attention, core, ops);
    ops.layer_norm_backward(a.h_in, block.ln1_g.value, a.ln1_mean, a.ln1_rstd, dattn.view({n, d}),
                            dx, block.ln1_g.grad, block.ln1_b.grad);
    ops.add_in_place(dh, dx);
    if (gradients_ready) {
      std::vector<Parameter*> ready{&block.ln1_g, &block.ln1_b};
      for (Parameter* p : block.attention.parameters()) ready.push_back(p);
      for (Parameter* p :
           {&block.ln2_g, &block.ln2_b, &block.w1, &block.b1, &block.w2, &block.b2}) {
        ready.push_back(p);
      }
      gradients_ready(ready);
    }
  }
  ops.embedding_backward(saved.tokens, dh, embed_.grad);
  if (gradients_ready) {
    const std::vector<Parameter*> ready{&embed_, &final_g_, &final_b_};
    gradients_ready(ready);
  }
}

}  // namespace longnet
