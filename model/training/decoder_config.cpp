#include "model/training/decoder_config.hpp"

namespace longnet {

DecoderConfig decoder_config(const TrainConfig& c) {
  DecoderConfig d;
  d.vocab_size = c.model.vocab_size;
  d.layers = c.model.layers;
  d.ffn_dim = c.model.ffn_dim;
  d.layer_norm_eps = c.model.layer_norm_eps;
  d.attention.dim = c.model.dim;
  d.attention.heads = c.model.heads;
  d.attention.kv_heads = c.model.kv_heads;
  d.attention.segment_lengths = c.model.segment_lengths;
  d.attention.dilation_rates = c.model.dilation_rates;
  d.attention.causal = c.model.causal;
  d.attention.head_offsets = parse_head_offsets(c.model.head_offsets);
  d.attention.use_xpos = c.model.use_xpos;
  d.attention.xpos_scale_base = c.model.xpos_scale_base;
  d.attention.use_rel_pos_bias = c.model.use_rel_pos_bias;
  d.attention.rel_pos_buckets = c.model.rel_pos_buckets;
  d.attention.rel_pos_max_distance = c.model.rel_pos_max_distance;
  d.attention.dropout = c.model.dropout;
  d.attention.init_std = c.model.init_std;
  return d;
}

}  // namespace longnet
