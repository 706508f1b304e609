// The attention step of the DilatedAttention layer, on one rank or across ranks.
//
// The layer projects x to q, k, v, applies xPos per pattern, and hands the per-pattern
// operands (model/pattern_operands.hpp) to an AttentionCore: the local one runs the
// kernels on this rank's whole sequence; the sequence-parallel one
// (model/sequence_parallel_attention.hpp) splits it across a communicator. Tests plug a
// float64 dense core in their own files to check the layer by finite differences.
#pragma once

#include "kernels/dilated_attention.hpp"
#include "model/pattern_operands.hpp"

#include <memory>
#include <span>

namespace longnet {

class Communicator;

class AttentionCore {
 public:
  virtual ~AttentionCore() = default;
  // This rank's tokens are [first_token(), first_token() + local tokens) of the sequence.
  virtual int64_t first_token() const = 0;
  virtual const AttentionShape& local_shape() const = 0;
  // o [B, T, H, D] and lse [B, T, H] are overwritten.
  virtual void forward(std::span<const PatternOperands> patterns, const Tensor& v, Tensor& o,
                       Tensor& lse) = 0;
  // Adds into every pattern's dq, dk; overwrites dv.
  virtual void backward(std::span<const PatternOperands> patterns, const Tensor& v, const Tensor& o,
                        const Tensor& lse, const Tensor& dout, Tensor& dv) = 0;
};

// The whole sequence on this rank: shape.tokens tokens starting at token 0.
std::unique_ptr<AttentionCore> make_local_attention_core(const DilatedAttentionConfig& config,
                                                         const AttentionShape& shape,
                                                         DilatedAttentionOp& kernels);

// The sequence split across `group` (collective; see SequenceParallelAttention).
std::unique_ptr<AttentionCore> make_sequence_parallel_core(Communicator& group,
                                                           const DilatedAttentionConfig& config,
                                                           const AttentionShape& global_shape,
                                                           DilatedAttentionOp& kernels);

}  // namespace longnet
