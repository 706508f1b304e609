// The dilated-attention op: one checked front end, one set of hooks per backend.
#pragma once

#include "kernels/attention_tasks.hpp"
#include "kernels/dilated_attention_config.hpp"
#include "runtime/tensor.hpp"

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
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
  // Packed variable-length documents (kernels/attention_tasks.hpp): empty, one document
  // per batch row; else per row the lengths of its documents, summing to N. Each
  // document is attended as if it were its own sequence.
  DocumentLengths document_lengths;
};

// One backend's arguments to a whole-sequence call, checked by the front end: every tensor
// has its shape and dtype, lives in the backend's memory (bias/dbias: there or all in
// host memory, which a device backend copies), and the backend supports (config, shape,
// dtype). `params` holds the scalars and q; the backend points o/lse (dq ...) at its
// accumulators.
struct ForwardCall {
  const DilatedAttentionConfig& config;
  AttentionShape shape;
  AttentionParams params;
  const Tensor& q;
  const Tensor& k;
  const Tensor& v;
  Tensor& o;
  Tensor& lse;
  const AttentionExtras& extras;
};
struct BackwardCall {
  const DilatedAttentionConfig& config;
  AttentionShape shape;
  AttentionParams params;
  const Tensor& q;
  const Tensor& k;
  const Tensor& v;
  const Tensor& o;
  const Tensor& lse;
  const Tensor& dout;
  Tensor& dq;
  Tensor& dk;
  Tensor& dv;
  const AttentionExtras& extras;
  std::span<Tensor> dbias;
};

// The op. Like the Communicator (comm/communicator.hpp): a checked, typed front end of
// non-virtual calls that validate their arguments once (shape, dtype, device, extras,
// what the backend supports) and then call the backend's protected do_* hooks, which
// may assume valid arguments. A backend (kernels/cpu, kernels/cuda) implements the hooks
// with the exact semantics of kernels/dilated_attention_config.hpp; callers (the model,
// `longnet attend`, the benchmarks) hold it through this class and never reach the
// kernels below it.
class DilatedAttentionOp {
 public:
  virtual ~DilatedAttentionOp() = default;

  // A short name for logs and benchmark tables, e.g. "cpu-avx512".
  virtual std::string name() const = 0;
  // The memory every tensor and pointer of a call lives in.
  virtual Device device() const = 0;

  // Why this backend cannot run `config` on `shape` with inputs of `dtype`, or nothing
  // when it can. Callers and tests ask this instead of catching errors; the calls below
  // throw an Error carrying the same reason.
  std::optional<std::string> supports(const DilatedAttentionConfig& config,
                                      const AttentionShape& shape, DType dtype) const;
  // The same for inputs of `dtype` whatever the configuration and shape.
  std::optional<std::string> supports_dtype(DType dtype) const { return unsupported_dtype(dtype); }

  // q: [B, N, H, D]; k, v: [B, N, Hkv, D] of q's dtype, Hkv dividing H (Hkv = H:
  // multi-head; fewer: grouped-query attention, AttentionShape). Writes every element of
  // o [B, N, H, D] (q's
  // dtype) and lse [B, N, H] (float32; natural log; -inf and o = 0 for rows no pattern
  // selects). lse is that of the scores before dropout (with the bias).
  void forward(const DilatedAttentionConfig& config, const Tensor& q, const Tensor& k,
               const Tensor& v, Tensor& o, Tensor& lse, const AttentionExtras& extras = {});

  // The exact gradient of forward(): given o and lse from forward() (same extras) and
  // dout = dL/do, writes every element of dq [B, N, H, D] and dk, dv [B, N, Hkv, D] (the
  // sum over each kv head's query heads), and of dbias when it is
  // not empty: one float32 tensor per pattern, shaped like extras.bias (extras.bias must
  // then be given).
  void backward(const DilatedAttentionConfig& config, const Tensor& q, const Tensor& k,
                const Tensor& v, const Tensor& o, const Tensor& lse, const Tensor& dout, Tensor& dq,
                Tensor& dk, Tensor& dv, const AttentionExtras& extras = {},
                std::span<Tensor> dbias = {});

  // Task-level entry points (kernels/attention_tasks.hpp) for callers that place the keys
  // themselves, like the sequence-parallel layer. forward_tasks merges one pattern into
  // the running (o, lse) that params point at (o = 0, lse = -inf before the first
  // pattern); backward_tasks adds one pattern's contribution to dq and to every task's
  // dk, dv. Patterns run one after another; pointers are in this backend's memory.
  void forward_tasks(const AttentionParams& params, const PatternTasks& pattern);
  void backward_tasks(const AttentionParams& params, const PatternTasks& pattern);

  // delta [B, N, H] (float32) = rowsum(dout * o): the per-row term of the backward's
  // dS = P (dP - delta). o and dout: [B, N, H, D] of one input dtype.
  void output_gradient_dot(const Tensor& o, const Tensor& dout, Tensor& delta);

  // Waits until every call issued so far has completed: a GPU backend queues work on its
  // stream; on the CPU a call has finished when it returns.
  virtual void synchronize() {}

 protected:
  // Why inputs of `dtype` / head dim `head_dim` cannot run here (nothing: they can).
  virtual std::optional<std::string> unsupported_dtype(DType dtype) const = 0;
  virtual std::optional<std::string> unsupported_head_dim(int64_t head_dim) const = 0;

  // The hooks, called with checked arguments.
  virtual void do_forward(const ForwardCall& call) = 0;
  virtual void do_backward(const BackwardCall& call) = 0;
  virtual void do_forward_tasks(const AttentionParams& params, const PatternTasks& pattern) = 0;
  virtual void do_backward_tasks(const AttentionParams& params, const PatternTasks& pattern) = 0;
  virtual void do_output_gradient_dot(const Tensor& o, const Tensor& dout, Tensor& delta) = 0;

  // Pattern p's tasks over the whole sequence, held on this rank: keys at k, v (elements
  // of `element_bytes` bytes, the call's input dtype), key gradients into dk, dv (float32; null for
  // a forward; with grouped heads, shape.group_size() accumulators, segment_tasks), the pattern's
  // bias and dbias rows [H, 2L - 1] at `bias` and `dbias` (either may be null; in the backend's
  // memory), and the dropout keys of the call's extras.
  static PatternTasks whole_sequence_tasks(const DilatedAttentionConfig& config,
                                           const AttentionShape& shape,
                                           const AttentionExtras& extras, std::size_t p,
                                           const void* k, const void* v, std::size_t element_bytes,
                                           float* dk, float* dv, const float* bias, float* dbias);

 private:
  // Throws the supports() reason, if any.
  void require_supported(const DilatedAttentionConfig& config, const AttentionShape& shape,
                         DType dtype) const;
  // q's shape after the checks common to forward and backward.
  AttentionShape check_inputs(const DilatedAttentionConfig& config, const Tensor& q,
                              const Tensor& k, const Tensor& v) const;
  void check_on_device(std::initializer_list<std::pair<const Tensor*, const char*>> tensors) const;
  void check_task_call(const AttentionParams& params, const PatternTasks& pattern,
                       bool backward) const;
  // Where bias and dbias must be: host memory if the first bias is there, else device().
  Device extras_device(const AttentionExtras& extras) const;
};

// q's shape [B, N, H, D] after checking its rank and sizes.
AttentionShape query_shape(const Tensor& q);
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
Shape kv_shape(const AttentionShape& shape);   // {B, N, Hkv, D}: k, v, dk, dv

// Allocating conveniences over the interface.
struct AttentionOutputs {
  Tensor o, lse;
};
struct AttentionGradients {
  Tensor dq, dk, dv;
  std::vector<Tensor> dbias;  // one per pattern when extras.bias was given, else empty
};
AttentionOutputs run_forward(DilatedAttentionOp& op, const DilatedAttentionConfig& config,
                             const Tensor& q, const Tensor& k, const Tensor& v,
                             const AttentionExtras& extras = {});
AttentionGradients run_backward(DilatedAttentionOp& op, const DilatedAttentionConfig& config,
                                const Tensor& q, const Tensor& k, const Tensor& v,
                                const AttentionOutputs& outputs, const Tensor& dout,
                                const AttentionExtras& extras = {});

}  // namespace longnet
