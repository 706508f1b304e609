// DilatedAttention: the LongNet attention layer, x [B, T, dim] -> [B, T, dim].
//
//   q, k, v = x Wq^T + bq, x Wk^T + bk, x Wv^T + bv      (viewed as [B, T, H, D])
//   per pattern p: q_p, k_p = xPos(q), xPos(k) anchored at p's segment centres
//                  (model/xpos.hpp), or q, k themselves without xPos
//   o, lse = dilated attention over every pattern, merged by log-sum-exp
//            (an AttentionCore: this rank alone, or the sequence split across ranks)
//   y = o Wo^T + bo
// The backward recomputes nothing the forward saved (q_p, k_p, v, o, lse) and returns dx,
// accumulating every parameter's gradient. The same class runs in float32 (production)
// or float64 (finite-difference tests), following the dtype of its parameters.
#pragma once

#include "kernels/dilated_attention_config.hpp"
#include "model/attention_core.hpp"
#include "model/ops/model_ops.hpp"
#include "model/parameter.hpp"
#include "model/xpos.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace longnet {

struct DilatedAttentionLayerConfig {
  int64_t dim = 0;
  int64_t heads = 0;
  // Grouped-query attention: k and v get kv_heads heads (dividing heads; wk and wv are
  // [kv_heads * head_dim, dim]); 0 means as many as heads (multi-head attention).
  int64_t kv_heads = 0;
  std::vector<int64_t> segment_lengths;  // w per pattern
  std::vector<int64_t> dilation_rates;   // r per pattern
  bool causal = false;
  HeadOffsets head_offsets = HeadOffsets::grouped;
  bool use_xpos = false;
  double xpos_scale_base = 512.0;
  // T5-style relative position bias: a learned [heads, buckets] table indexed by the
  // bucket of the REAL token distance (dilated distance x r), added to the scores inside
  // the kernels. Bidirectional buckets unless causal.
  bool use_rel_pos_bias = false;
  int64_t rel_pos_buckets = 32;
  int64_t rel_pos_max_distance = 128;
  // Attention dropout probability (training only); masks from Philox keyed by
  // (seed, step, layer, head, pattern, batch row, global token positions).
  double dropout = 0.0;
  double init_std = 0.02;

  // The documents' single-pattern form: DilatedAttention(dim, heads, dilation_rate, segment_size).
  static DilatedAttentionLayerConfig single(int64_t dim, int64_t heads, int64_t segment_size,
                                            int64_t dilation_rate);
  int64_t head_dim() const { return heads > 0 ? dim / heads : 0; }
  int64_t key_heads() const { return kv_heads > 0 ? kv_heads : heads; }
  int64_t key_dim() const { return key_heads() * head_dim(); }  // width of k and v
  // The attention core's shape for `batch` sequences of `tokens` tokens.
  AttentionShape attention_shape(int64_t batch, int64_t tokens) const {
    return {batch, tokens, heads, head_dim(), kv_heads};
  }
  // The attention op's config (throws with the reason when this one is invalid).
  DilatedAttentionConfig attention_config() const;
};

// The T5 bucket of a key at `relative` = key token - query token.
int64_t relative_position_bucket(int64_t relative, bool bidirectional, int64_t buckets,
                                 int64_t max_distance);

// Where dropout's randomness comes from in one call: training turns it on.
struct AttentionRandomness {
  bool training = false;
  uint64_t seed = 0;
  uint64_t step = 0;
};

// What forward() keeps for backward().
struct DilatedAttentionSaved {
  std::vector<Tensor> bias;  // per pattern [H, 2L-1] (relative position bias only)
  AttentionRandomness randomness;
  Tensor x;                  // [B*T, dim]
  std::vector<Tensor> q, k;  // one per pattern (one shared entry without xPos)
  Tensor v, o, lse;          // [B, T, H, D], [B, T, H, D], [B, T, H]
};

class DilatedAttention {
 public:
  // Parameters are named prefix + ".wq" etc.
  DilatedAttention(std::string prefix, DilatedAttentionLayerConfig config, DType dtype,
                   uint64_t seed, uint32_t layer_index = 0);

  const DilatedAttentionLayerConfig& config() const { return config_; }
  std::vector<Parameter*> parameters();

  // x [B, T, dim] holds this rank's tokens, T = core.local_shape().tokens.
  Tensor forward(const Tensor& x, AttentionCore& core, ModelOps& ops, DilatedAttentionSaved& saved,
                 const AttentionRandomness& randomness = {}) const;
  // Returns dx [B, T, dim]; adds into every parameter's grad.
  Tensor backward(const Tensor& dy, const DilatedAttentionSaved& saved, AttentionCore& core,
                  ModelOps& ops);

 private:
  // Per pattern, the bias row of every head by dilated distance, from the bucket table.
  std::vector<Tensor> bias_rows() const;
  std::vector<PatternOperands> operands(const DilatedAttentionSaved& saved) const;
  // Pattern p's xPos coefficients for this rank's tokens (shared_xpos_table).
  std::shared_ptr<const XposTable> xpos_table(std::size_t p, const AttentionCore& core) const;

  DilatedAttentionLayerConfig config_;
  DType dtype_;
  uint32_t layer_index_;
  Parameter wq_, wk_, wv_, wo_, bq_, bk_, bv_, bo_;
  Parameter rel_bias_;  // [heads, buckets], only with use_rel_pos_bias
  // Per pattern, the bucket of each dilated distance d at [L - 1 + d] (the same for every
  // head; fixed by the config, so computed once).
  std::vector<std::vector<int64_t>> distance_buckets_;
};

}  // namespace longnet
