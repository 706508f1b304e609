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

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace longnet {

// Optional additions to dilated attention; a default-constructed value adds nothing, and
// the results are then bit-identical to a call without it.
struct AttentionExtras {
  // Relative position bias: empty (none), or one float32 tensor per pattern of shape
  // [H, 2L - 1], L = relative_bias_rows(pattern), in the backend's memory. Element
  // [h][L - 1 + d] is added to the score of query i and key j of head h at dilated
  // distance d = i - j (real token distance d * r): S_ij = scale q_i . k_j + bias.
  std::vector<Tensor> bias;
  // Attention dropout on the softmax weights, probability in [0, 1) (0 = off). The mask of
  // pattern p, head h, batch b is drawn with the key dropout_task_key(dropout_stream_key(
  // dropout_seed, dropout_step, dropout_layer, h, p), b) (kernels/philox.hpp).
  float dropout_p = 0;
  uint64_t dropout_seed = 0;
  uint64_t dropout_step = 0;
  uint32_t dropout_layer = 0;
};

class DilatedAttentionKernels {
 public:
  virtual ~DilatedAttentionKernels() = default;

  // A short name for logs and benchmark tables, e.g. "cpu-avx512".
  virtual std::string name() const = 0;

  // q, k, v: [B, N, H, D]. Writes every element of o [B, N, H, D] and lse [B, N, H]
  // (natural log; -inf and o = 0 for rows no pattern selects). lse is that of the scores
  // before dropout (with the bias).
  virtual void forward(const DilatedAttentionConfig& config, const Tensor& q, const Tensor& k,
                       const Tensor& v, Tensor& o, Tensor& lse,
                       const AttentionExtras& extras = {}) = 0;

  // The exact gradient of forward(): given o and lse from forward() (same extras) and
  // dout = dL/do, writes every element of dq, dk, dv [B, N, H, D], and of dbias when it is
  // not empty: one float32 tensor per pattern, shaped like extras.bias (extras.bias must
  // then be given).
  virtual void backward(const DilatedAttentionConfig& config, const Tensor& q, const Tensor& k,
                        const Tensor& v, const Tensor& o, const Tensor& lse, const Tensor& dout,
                        Tensor& dq, Tensor& dk, Tensor& dv, const AttentionExtras& extras = {},
                        std::span<Tensor> dbias = {}) = 0;

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

// Checks extras against the configuration and shape: bias empty or one [H, 2L - 1]
// float32 tensor per pattern on `device`, dbias empty or shaped like bias, dropout_p in
// [0, 1). Errors name the pattern and both shapes.
void check_extras(const DilatedAttentionConfig& config, const AttentionShape& shape,
                  const AttentionExtras& extras, std::span<const Tensor> dbias, Device device);
// The per-head task additions of pattern `p` (segment_tasks' TaskExtras): bias pointers at
// distance 0, dbias pointers, dropout stream keys. extras and dbias already checked.
TaskExtras pattern_task_extras(const DilatedAttentionConfig& config, const AttentionShape& shape,
                               const AttentionExtras& extras, std::span<Tensor> dbias,
                               std::size_t p);

Shape qkv_shape(const AttentionShape& shape);  // {B, N, H, D}
Shape lse_shape(const AttentionShape& shape);  // {B, N, H}

// Allocating conveniences over the interface.
struct AttentionOutputs {
  Tensor o, lse;
};
struct AttentionGradients {
  Tensor dq, dk, dv;
  std::vector<Tensor> dbias;  // one per pattern when extras.bias was given, else empty
};
AttentionOutputs run_forward(DilatedAttentionKernels& kernels, const DilatedAttentionConfig& config,
                             const Tensor& q, const Tensor& k, const Tensor& v,
                             const AttentionExtras& extras = {});
AttentionGradients run_backward(DilatedAttentionKernels& kernels,
                                const DilatedAttentionConfig& config, const Tensor& q,
                                const Tensor& k, const Tensor& v, const AttentionOutputs& outputs,
                                const Tensor& dout, const AttentionExtras& extras = {});

}  // namespace longnet
