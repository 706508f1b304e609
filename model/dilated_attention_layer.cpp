#include "model/dilated_attention_layer.hpp"

#include "kernels/philox.hpp"
#include "model/xpos.hpp"
#include "runtime/error.hpp"

#include <algorithm>
#include <cmath>

namespace longnet {

DilatedAttentionLayerConfig DilatedAttentionLayerConfig::single(int64_t dim, int64_t heads,
                                                                int64_t segment_size,
                                                                int64_t dilation_rate) {
  DilatedAttentionLayerConfig c;
  c.dim = dim;
  c.heads = heads;
  c.segment_lengths = {segment_size};
  c.dilation_rates = {dilation_rate};
  return c;
}

int64_t relative_position_bucket(int64_t relative, bool bidirectional, int64_t buckets,
                                 int64_t max_distance) {
  int64_t bucket = 0;
  int64_t n = -relative;  // how far back the key is
  if (bidirectional) {
    buckets /= 2;
    if (n < 0) bucket += buckets;  // keys ahead get the upper half
    n = std::abs(n);
  } else {
    n = std::max<int64_t>(n, 0);
  }
  // Half the buckets are exact distances; the rest grow logarithmically to max_distance.
  const int64_t exact = buckets / 2;
  if (n < exact) return bucket + n;
  const double scaled = std::log(static_cast<double>(n) / static_cast<double>(exact)) /
                        std::log(static_cast<double>(max_distance) / static_cast<double>(exact)) *
                        static_cast<double>(buckets - exact);
  return bucket + std::min<int64_t>(exact + static_cast<int64_t>(scaled), buckets - 1);
}

DilatedAttentionConfig DilatedAttentionLayerConfig::attention_config() const {
  LONGNET_CHECK(dim > 0 && heads > 0 && dim % heads == 0,
                "DilatedAttention: dim {} must be a positive multiple of heads {}", dim, heads);
  LONGNET_CHECK(kv_heads >= 0 && heads % key_heads() == 0,
                "DilatedAttention: kv_heads {} must divide heads {} (each kv head serves "
                "heads / kv_heads query heads; 0 means as many as heads)",
                kv_heads, heads);
  LONGNET_CHECK(!use_xpos || head_dim() % 2 == 0,
                "DilatedAttention: xPos rotates pairs of elements, so dim / heads = {} must be "
                "even (or turn use_xpos off)",
                head_dim());
  LONGNET_CHECK(
      !use_rel_pos_bias || (rel_pos_buckets >= 4 && rel_pos_max_distance > rel_pos_buckets / 2),
      "DilatedAttention: relative position bias needs at least 4 buckets and a max "
      "distance above half of them (got {} buckets, max distance {})",
      rel_pos_buckets, rel_pos_max_distance);
  LONGNET_CHECK(dropout >= 0 && dropout < 1, "DilatedAttention: dropout {} must be in [0, 1)",
                dropout);
  return DilatedAttentionConfig::from_lists(segment_lengths, dilation_rates, causal, head_offsets);
}

DilatedAttention::DilatedAttention(std::string prefix, DilatedAttentionLayerConfig config,
                                   DType dtype, uint64_t seed, uint32_t layer_index)
    : config_(std::move(config)), dtype_(dtype), layer_index_(layer_index) {
  (void)config_.attention_config();  // validates
  const int64_t d = config_.dim, kv = config_.key_dim();
  const double std = config_.init_std;
  wq_ = make_parameter(prefix + ".wq", {d, d}, dtype, std, seed + 1, true);
  wk_ = make_parameter(prefix + ".wk", {kv, d}, dtype, std, seed + 2, true);
  wv_ = make_parameter(prefix + ".wv", {kv, d}, dtype, std, seed + 3, true);
  wo_ = make_parameter(prefix + ".wo", {d, d}, dtype, std, seed + 4, true);
  bq_ = make_parameter(prefix + ".bq", {d}, dtype, 0.0, 0, false);
  bk_ = make_parameter(prefix + ".bk", {kv}, dtype, 0.0, 0, false);
  bv_ = make_parameter(prefix + ".bv", {kv}, dtype, 0.0, 0, false);
  bo_ = make_parameter(prefix + ".bo", {d}, dtype, 0.0, 0, false);
  if (config_.use_rel_pos_bias) {
    rel_bias_ = make_parameter(prefix + ".rel_pos_bias", {config_.heads, config_.rel_pos_buckets},
                               dtype, std, seed + 5, false);
    for (const DilationPattern& pattern : config_.attention_config().patterns) {
      const int64_t l = relative_bias_rows(pattern);
      std::vector<int64_t>& bucket = distance_buckets_.emplace_back(2 * l - 1);
      for (int64_t dist = -(l - 1); dist <= l - 1; ++dist) {
        // Dilated distance i - j is the real distance (i - j) r: key - query = -dist r.
        bucket[l - 1 + dist] =
            relative_position_bucket(-dist * pattern.dilation_rate, !config_.causal,
                                     config_.rel_pos_buckets, config_.rel_pos_max_distance);
      }
    }
  }
}

std::vector<Parameter*> DilatedAttention::parameters() {
  std::vector<Parameter*> all{&wq_, &bq_, &wk_, &bk_, &wv_, &bv_, &wo_, &bo_};
  if (config_.use_rel_pos_bias) all.push_back(&rel_bias_);
  return all;
}

std::vector<Tensor> DilatedAttention::bias_rows() const {
  std::vector<Tensor> rows;
  if (!config_.use_rel_pos_bias) return rows;
  const int64_t heads = config_.heads, buckets = config_.rel_pos_buckets;
  const Tensor table = rel_bias_.value.cast(DType::float64);
  for (const std::vector<int64_t>& bucket : distance_buckets_) {
    const auto width = static_cast<int64_t>(bucket.size());
    Tensor row({heads, width}, DType::float64);
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t c = 0; c < width; ++c) {
        row.data<double>()[h * width + c] = table.data<double>()[h * buckets + bucket[c]];
      }
    }
    rows.push_back(row.cast(dtype_));
  }
  return rows;
}

std::shared_ptr<const XposTable> DilatedAttention::xpos_table(std::size_t p,
                                                              const AttentionCore& core) const {
  const XposSpan span{core.first_token(), config_.segment_lengths[p], config_.xpos_scale_base};
  return shared_xpos_table(span, core.local_shape().tokens, config_.head_dim());
}

std::vector<PatternOperands> DilatedAttention::operands(const DilatedAttentionSaved& saved) const {
  const DilatedAttentionConfig attention = config_.attention_config();
  const std::size_t patterns = attention.patterns.size();
  std::vector<PatternOperands> out(patterns);
  for (std::size_t p = 0; p < patterns; ++p) {
    const std::size_t i = config_.use_xpos ? p : 0;
    out[p].q = &saved.q[i];
    out[p].k = &saved.k[i];
    if (!saved.bias.empty()) out[p].bias = &saved.bias[p];
    if (saved.randomness.training && config_.dropout > 0) {
      out[p].dropout_p = static_cast<float>(config_.dropout);
      for (int64_t h = 0; h < config_.heads; ++h) {
        out[p].dropout_keys.push_back(
            dropout_stream_key(saved.randomness.seed, saved.randomness.step, layer_index_,
                               static_cast<uint32_t>(h), static_cast<uint32_t>(p)));
      }
    }
  }
  return out;
}

Tensor DilatedAttention::forward(const Tensor& x, AttentionCore& core, ModelOps& ops,
                                 DilatedAttentionSaved& saved,
                                 const AttentionRandomness& randomness) const {
  const AttentionShape& shape = core.local_shape();
  const int64_t tokens = shape.batch * shape.tokens, d = config_.dim;
  LONGNET_CHECK(x.shape() == Shape({shape.batch, shape.tokens, d}),
                "DilatedAttention: x is {}, expected [B, T, dim] = [{}, {}, {}]",
                shape_string(x.shape()), shape.batch, shape.tokens, d);
  LONGNET_CHECK(shape.heads == config_.heads && shape.head_dim == config_.head_dim() &&
                    shape.key_heads() == config_.key_heads(),
                "DilatedAttention: the attention core is set up for H={} D={} Hkv={}, the layer "
                "has H={} D={} Hkv={}",
                shape.heads, shape.head_dim, shape.key_heads(), config_.heads, config_.head_dim(),
                config_.key_heads());
  const Shape heads_shape = qkv_shape(shape), key_shape = kv_shape(shape);
  const int64_t kv = config_.key_dim();
  saved.x = x.view({tokens, d});
  Tensor q({tokens, d}, dtype_), k({tokens, kv}, dtype_), v({tokens, kv}, dtype_);
  ops.linear_forward(saved.x, wq_.value, &bq_.value, q);
  ops.linear_forward(saved.x, wk_.value, &bk_.value, k);
  ops.linear_forward(saved.x, wv_.value, &bv_.value, v);
  q = q.view(heads_shape);
  k = k.view(key_shape);
  saved.v = v.view(key_shape);

  const std::size_t patterns = config_.segment_lengths.size();
  saved.q.clear();
  saved.k.clear();
  if (config_.use_xpos) {
    for (std::size_t p = 0; p < patterns; ++p) {
      const auto table = xpos_table(p, core);
      Tensor qp(heads_shape, dtype_), kp(key_shape, dtype_);
      xpos_forward(q, qp, XposRole::query, *table);
      xpos_forward(k, kp, XposRole::key, *table);
      saved.q.push_back(std::move(qp));
      saved.k.push_back(std::move(kp));
    }
  } else {
    saved.q.push_back(q);
    saved.k.push_back(k);
  }
  saved.bias = bias_rows();
  saved.randomness = randomness;
  saved.o = Tensor(heads_shape, dtype_);
  saved.lse = Tensor(lse_shape(shape), dtype_);
  core.forward(operands(saved), saved.v, saved.o, saved.lse);

  Tensor y({tokens, d}, dtype_);
  ops.linear_forward(saved.o.view({tokens, d}), wo_.value, &bo_.value, y);
  return y.view({shape.batch, shape.tokens, d});
}

Tensor DilatedAttention::backward(const Tensor& dy, const DilatedAttentionSaved& saved,
                                  AttentionCore& core, ModelOps& ops) {
  const AttentionShape& shape = core.local_shape();
  const int64_t tokens = shape.batch * shape.tokens, d = config_.dim;
  LONGNET_CHECK(dy.numel() == tokens * d,
                "DilatedAttention backward: dy is {}, expected [{}, {}, {}]",
                shape_string(dy.shape()), shape.batch, shape.tokens, d);
  const Shape heads_shape = qkv_shape(shape), key_shape = kv_shape(shape);
  const int64_t kv = config_.key_dim();
  const Tensor dy2 = dy.view({tokens, d});

  Tensor dout({tokens, d}, dtype_);
  ops.linear_backward(saved.o.view({tokens, d}), wo_.value, dy2, &dout, wo_.grad, &bo_.grad);

  // Gradients w.r.t. each pattern's q and k (one shared pair without xPos).
  const std::size_t patterns = config_.segment_lengths.size();
  const std::size_t copies = saved.q.size();
  std::vector<Tensor> dq(copies), dk(copies);
  for (std::size_t i = 0; i < copies; ++i) {
    dq[i] = Tensor::zeros(heads_shape, dtype_);
    dk[i] = Tensor::zeros(key_shape, dtype_);
  }
  std::vector<PatternOperands> ops_in = operands(saved);
  std::vector<Tensor> dbias;
  for (std::size_t p = 0; p < patterns; ++p) {
    const std::size_t i = config_.use_xpos ? p : 0;
    ops_in[p].dq = &dq[i];
    ops_in[p].dk = &dk[i];
    if (!saved.bias.empty()) dbias.push_back(Tensor::zeros(saved.bias[p].shape(), dtype_));
  }
  for (std::size_t p = 0; p < dbias.size(); ++p) ops_in[p].dbias = &dbias[p];
  Tensor dv(key_shape, dtype_);
  core.backward(ops_in, saved.v, saved.o, saved.lse, dout.view(heads_shape), dv);

  // The bias rows' gradients, folded back into the bucket table.
  if (!dbias.empty()) {
    const int64_t heads = config_.heads, buckets = config_.rel_pos_buckets;
    Tensor table = rel_bias_.grad.cast(DType::float64);
    for (std::size_t p = 0; p < patterns; ++p) {
      const std::vector<int64_t>& bucket = distance_buckets_[p];
      const auto width = static_cast<int64_t>(bucket.size());
      const Tensor row = dbias[p].cast(DType::float64);
      for (int64_t h = 0; h < heads; ++h) {
        for (int64_t c = 0; c < width; ++c) {
          table.data<double>()[h * buckets + bucket[c]] += row.data<double>()[h * width + c];
        }
      }
    }
    const Tensor folded = table.cast(dtype_);
    std::copy_n(static_cast<const std::byte*>(folded.raw()), folded.nbytes(),
                static_cast<std::byte*>(rel_bias_.grad.raw()));
  }

  Tensor dq_total = dq[0], dk_total = dk[0];
  if (config_.use_xpos) {
    dq_total = Tensor::zeros(heads_shape, dtype_);
    dk_total = Tensor::zeros(key_shape, dtype_);
    for (std::size_t p = 0; p < patterns; ++p) {
      const auto table = xpos_table(p, core);
      xpos_backward_accumulate(dq[p], dq_total, XposRole::query, *table);
      xpos_backward_accumulate(dk[p], dk_total, XposRole::key, *table);
    }
  }

  Tensor dx({tokens, d}, dtype_), partial({tokens, d}, dtype_);
  ops.linear_backward(saved.x, wq_.value, dq_total.view({tokens, d}), &dx, wq_.grad, &bq_.grad);
  ops.linear_backward(saved.x, wk_.value, dk_total.view({tokens, kv}), &partial, wk_.grad,
                      &bk_.grad);
  ops.add_in_place(dx, partial);
  ops.linear_backward(saved.x, wv_.value, dv.view({tokens, kv}), &partial, wv_.grad, &bv_.grad);
  ops.add_in_place(dx, partial);
  return dx.view({shape.batch, shape.tokens, d});
}

}  // namespace longnet
