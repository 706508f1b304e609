// The dilated-attention op: one interface, one implementation per backend.
//
// Every backend (the CPU kernels here, the CUDA kernels later) implements
// DilatedAttentionKernels with the exact semantics of kernels/dilated_attention_config.hpp.
// Callers (the model, `longnet attend`, the benchmarks) hold a backend through this
// interface and never reach the kernels below it.
#pragma once

#include "kernels/attention_tasks.hpp"
#include "kernels/dilated_attention_config.hpp"
#include "runtime/tensor.hpp"

#include <memory>
#include <string>

namespace longnet {

class DilatedAttentionKernels {
 public:
  virtual ~DilatedAttentionKernels() = default;

  // A short name for logs and benchmark tables, e.g. "cpu-avx512".
  virtual std::string name() const = 0;

  // q, k, v: [B, N, H, D]. Writes every element of o [B, N, H, D] and lse [B, N, H]
  // (natural log; -inf and o = 0 for rows no pattern selects).
  virtual void forward(const DilatedAttentionConfig& config, const Tensor& q, const Tensor& k,
                       const Tensor& v, Tensor& o, Tensor& lse) = 0;

  // The exact gradient of forward(): given o and lse from forward() and dout = dL/do,
  // writes every element of dq, dk, dv [B, N, H, D].
  virtual void backward(const DilatedAttentionConfig& config, const Tensor& q, const Tensor& k,
                        const Tensor& v, const Tensor& o, const Tensor& lse, const Tensor& dout,
                        Tensor& dq, Tensor& dk, Tensor& dv) = 0;

  // Task-level entry points (kernels/attention_tasks.hpp) for callers that place the keys
  // themselves, like the sequence-parallel layer. forward_tasks merges one pattern into
  // the running (o, lse) that params point at (o = 0, lse = -inf before the first
  // pattern); backward_tasks adds one pattern's contribution to dq and to every task's
  // dk, dv. Patterns run one after another; pointers are in this backend's memory.
  virtual void forward_tasks(const AttentionParams& params, const PatternTasks& pattern) = 0;
  virtual void backward_tasks(const AttentionParams& params, const PatternTasks& pattern) = 0;

  // delta [B, N, H] = rowsum(dout * o): the per-row term of the backward's dS = P (dP - delta).
  virtual void output_gradient_dot(const Tensor& o, const Tensor& dout, Tensor& delta) = 0;

  // Waits until every call issued so far has completed: a GPU backend queues work on its
  // stream; on the CPU a call has finished when it returns.
  virtual void synchronize() {}
};

// Checks that q, k, v are float32 [B, N, H, D] tensors of one shape and returns it;
// errors name the offending tensor and both shapes.
AttentionShape check_qkv(const Tensor& q, const Tensor& k, const Tensor& v);
// Checks that `t` is a float32 tensor of `expected` shape; `what` names it in the error.
void check_tensor(const Tensor& t, const Shape& expected, const char* what);

Shape qkv_shape(const AttentionShape& shape);  // {B, N, H, D}
Shape lse_shape(const AttentionShape& shape);  // {B, N, H}

// Allocating conveniences over the interface.
struct AttentionOutputs {
  Tensor o, lse;
};
struct AttentionGradients {
  Tensor dq, dk, dv;
};
AttentionOutputs run_forward(DilatedAttentionKernels& kernels, const DilatedAttentionConfig& config,
                             const Tensor& q, const Tensor& k, const Tensor& v);
AttentionGradients run_backward(DilatedAttentionKernels& kernels,
                                const DilatedAttentionConfig& config, const Tensor& q,
                                const Tensor& k, const Tensor& v, const AttentionOutputs& outputs,
                                const Tensor& dout);

}  // namespace longnet
