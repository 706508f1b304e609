// Sequence-parallel dilated attention: the sequence split across the ranks of a
// communicator, with a result equal to the single-rank op.
//
// Each rank holds the balanced shard [begin, end) of tokens of every batch element
// (model/sequence_parallel_plan.hpp). Per pattern (w, r):
//   - a segment inside the shard is computed locally, with no communication;
//   - a segment spanning several ranks is handled by exactly those ranks: each packs
//     its own rows of that segment that each head's offset selects (the sparsified
//     keys and values, about (w / r) * H * D elements in all), the group all-gathers
//     them, and each rank's local queries attend the gathered keys at their global
//     dilated positions (so the causal mask and head offsets are the single-rank ones).
//     Queries never move.
// Patterns merge through the log-sum-exp exactly as on one rank (the kernels do it in
// place, pattern by pattern). Backward: the key and value gradients of gathered rows
// are reduce-scattered back to the ranks that own them; dq stays local. The backward
// gathers the keys and values again rather than keeping the forward's copies, so
// forward and backward are independent calls (the counters show both).
//
// The group communicators are created once, in the constructor (collective over the
// world), and reused by every call.
//
// Grouped-query attention (global_shape.kv_heads < heads): k and v have Hkv heads. Today
// each rank copies its k, v out to one copy per query head and runs the multi-head
// algorithm, then sums the copies' gradients per kv head: the result is exact, but a
// spanning segment gathers H / Hkv times the bytes it needs (each query head's rows, not
// each kv head's rows once over the union of its query heads' offsets).
//
// This lives in model/ rather than kernels/ because it composes two layers: the
// communicator (comm/) and the attention ops (kernels/), through their interfaces.
#pragma once

#include "comm/communicator.hpp"
#include "kernels/dilated_attention.hpp"
#include "model/pattern_operands.hpp"
#include "model/sequence_parallel_plan.hpp"

#include <memory>
#include <span>
#include <string>
#include <vector>

namespace longnet {

// Bytes one rank moved for one pattern, by collective, accumulated over calls (the
// convention of comm/comm_counters.hpp; read from the group communicators' counters).
struct PatternTraffic {
  std::string pattern;                             // "w=2048 r=1"
  int64_t gather_sent = 0, gather_received = 0;    // forward and backward k, v all-gathers
  int64_t scatter_sent = 0, scatter_received = 0;  // backward dk, dv reduce-scatters
  int64_t gather_calls = 0, scatter_calls = 0;     // collectives this rank took part in
};

struct SequenceParallelTiming {
  double compute_seconds = 0;        // kernels, packing and unpacking
  double communication_seconds = 0;  // inside collectives
};

class SequenceParallelAttention {
 public:
  // Collective over `world`: every rank passes the same config and global shape
  // (batch, total tokens, heads, head dim). `kernels` runs the local compute.
  SequenceParallelAttention(Communicator& world, DilatedAttentionConfig config,
                            AttentionShape global_shape, DilatedAttentionOp& kernels);
  ~SequenceParallelAttention();

  const Shard& shard() const { return shard_; }
  const AttentionShape& global_shape() const { return global_; }
  // This rank's [B, shard size, H, D] (and kv_heads, as in the global shape).
  const AttentionShape& local_shape() const { return local_; }

  // q, o: this rank's [B, shard, H, D]; k, v [B, shard, Hkv, D]; lse [B, shard, H].
  // Collective.
  void forward(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& o, Tensor& lse);
  // The exact gradient of forward(); o and lse from forward(). Collective.
  void backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& o,
                const Tensor& lse, const Tensor& dout, Tensor& dq, Tensor& dk, Tensor& dv);

  // The same with one q and k per pattern (model/pattern_operands.hpp; one entry per
  // pattern of the config, in order). The backward adds into each pattern's dq, dk
  // (zeroed by the caller; they may alias) and overwrites dv.
  void forward(std::span<const PatternOperands> patterns, const Tensor& v, Tensor& o, Tensor& lse);
  void backward(std::span<const PatternOperands> patterns, const Tensor& v, const Tensor& o,
                const Tensor& lse, const Tensor& dout, Tensor& dv);

  std::vector<PatternTraffic> traffic() const;
  const SequenceParallelTiming& timing() const { return timing_; }
  void reset_counters();

 private:
  struct Group;    // one spanning segment this rank belongs to, with its communicator
  struct Pattern;  // one pattern's groups

  // The multi-head algorithm, on operands with H heads throughout (heads_ shape).
  void forward_heads(std::span<const PatternOperands> patterns, const Tensor& v, Tensor& o,
                     Tensor& lse);
  void backward_heads(std::span<const PatternOperands> patterns, const Tensor& v, const Tensor& o,
                      const Tensor& lse, const Tensor& dout, Tensor& dv);
  PatternTasks local_tasks(const Pattern& pattern, const void* k, const void* v, float* dk,
                           float* dv, const TaskExtras& extras) const;
  void append_spanning_tasks(Pattern& pattern, bool with_gradients, const TaskExtras& extras,
                             std::vector<SegmentTask>& tasks) const;
  void gather_keys(Pattern& pattern, const Tensor& k, const Tensor& v);
  AttentionParams base_params() const;
  void check_patterns(std::span<const PatternOperands> patterns, bool backward) const;

  Communicator& world_;
  DilatedAttentionConfig config_;
  AttentionShape global_;
  AttentionShape local_;
  AttentionShape heads_;  // local_ with as many kv heads as heads: the algorithm's shape
  Shard shard_;
  DilatedAttentionOp& kernels_;
  std::vector<Pattern> patterns_;
  SequenceParallelTiming timing_;
};

}  // namespace longnet
