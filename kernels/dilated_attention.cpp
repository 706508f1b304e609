#include "kernels/dilated_attention.hpp"

#include "kernels/philox.hpp"

#include <fmt/format.h>

#include <string>

namespace longnet {

Shape qkv_shape(const AttentionShape& s) { return {s.batch, s.tokens, s.heads, s.head_dim}; }
Shape lse_shape(const AttentionShape& s) { return {s.batch, s.tokens, s.heads}; }
Shape kv_shape(const AttentionShape& s) { return {s.batch, s.tokens, s.key_heads(), s.head_dim}; }

void check_tensor(const Tensor& t, const Shape& expected, const char* what) {
  LONGNET_CHECK(t.defined(), "{} is missing (an empty tensor)", what);
  LONGNET_CHECK(t.dtype() == DType::float32, "{} must be float32, got {}", what,
                dtype_name(t.dtype()));
  LONGNET_CHECK(t.shape() == expected, "{} has shape {}, expected {}", what,
                shape_string(t.shape()), shape_string(expected));
}

AttentionShape query_shape(const Tensor& q) {
  LONGNET_CHECK(q.defined() && q.rank() == 4,
                "q must have rank 4 [batch, tokens, heads, head_dim], got shape {}",
                q.defined() ? shape_string(q.shape()) : "(empty)");
  const AttentionShape shape{q.dim(0), q.dim(1), q.dim(2), q.dim(3)};
  validate_shape(shape);
  return shape;
}

AttentionShape check_qkv(const Tensor& q, const Tensor& k, const Tensor& v) {
  const AttentionShape shape = query_shape(q);
  check_tensor(q, q.shape(), "q");
  check_tensor(k, q.shape(), "k (must match q)");
  check_tensor(v, q.shape(), "v (must match q)");
  return shape;
}

void check_extras(const DilatedAttentionConfig& config, const AttentionShape& shape,
                  const AttentionExtras& extras, std::span<const Tensor> dbias, Device device) {
  check_dropout_probability(extras.dropout_p);
  if (!extras.document_lengths.empty()) check_document_lengths(extras.document_lengths, shape);
  const std::size_t patterns = config.patterns.size();
  LONGNET_CHECK(extras.bias.empty() || extras.bias.size() == patterns,
                "extras.bias must be empty or hold one tensor per pattern ({}), got {}", patterns,
                extras.bias.size());
  LONGNET_CHECK(dbias.empty() || !extras.bias.empty(),
                "dbias was requested but extras.bias is empty; pass the forward's bias tensors");
  LONGNET_CHECK(dbias.empty() || dbias.size() == patterns,
                "dbias must be empty or hold one tensor per pattern ({}), got {}", patterns,
                dbias.size());
  for (std::size_t i = 0; i < extras.bias.size(); ++i) {
    const Shape expected{shape.heads, 2 * relative_bias_rows(config.patterns[i]) - 1};
    const std::string what =
        fmt::format("bias of pattern {} (w={}, r={}; [heads, 2 ceil(w/r) - 1])", i,
                    config.patterns[i].segment_length, config.patterns[i].dilation_rate);
    check_tensor(extras.bias[i], expected, what.c_str());
    LONGNET_CHECK(extras.bias[i].device() == device, "{} is in {} memory, expected {}", what,
                  device_name(extras.bias[i].device()), device_name(device));
    if (!dbias.empty()) {
      const std::string dwhat = fmt::format("dbias of pattern {}", i);
      check_tensor(dbias[i], expected, dwhat.c_str());
      LONGNET_CHECK(dbias[i].device() == device, "{} is in {} memory, expected {}", dwhat,
                    device_name(dbias[i].device()), device_name(device));
    }
  }
}

namespace {

// Pattern p's TaskExtras: head h's bias and dbias pointers at distance 0 of the rows
// [H, 2L - 1] at `bias` and `dbias` (either may be null), and the dropout stream keys.
TaskExtras task_extras(const DilatedAttentionConfig& config, const AttentionShape& shape,
                       const AttentionExtras& extras, std::size_t p, const float* bias,
                       float* dbias) {
  TaskExtras out;
  const int64_t center = relative_bias_rows(config.patterns[p]) - 1;  // element of d = 0
  const int64_t row = 2 * center + 1;
  for (int64_t h = 0; h < shape.heads; ++h) {
    if (bias != nullptr) out.bias.push_back(bias + h * row + center);
    if (dbias != nullptr) out.dbias.push_back(dbias + h * row + center);
    if (extras.dropout_p > 0.0f) {
      out.dropout_keys.push_back(dropout_stream_key(extras.dropout_seed, extras.dropout_step,
                                                    extras.dropout_layer, static_cast<uint32_t>(h),
                                                    static_cast<uint32_t>(p)));
    }
  }
  return out;
}

}  // namespace

TaskExtras pattern_task_extras(const DilatedAttentionConfig& config, const AttentionShape& shape,
                               const AttentionExtras& extras, std::span<Tensor> dbias,
                               std::size_t p) {
  return task_extras(config, shape, extras, p,
                     extras.bias.empty() ? nullptr : extras.bias[p].data<float>(),
                     dbias.empty() ? nullptr : dbias[p].data<float>());
}

PatternTasks DilatedAttentionOp::whole_sequence_tasks(const DilatedAttentionConfig& config,
                                                      const AttentionShape& shape,
                                                      const AttentionExtras& extras, std::size_t p,
                                                      const void* k, const void* v,
                                                      std::size_t element_bytes, float* dk,
                                                      float* dv, const float* bias, float* dbias) {
  const TaskExtras task = task_extras(config, shape, extras, p, bias, dbias);
  if (!extras.document_lengths.empty()) {
    return document_tasks(config.patterns[p], config.head_offsets, shape, extras.document_lengths,
                          k, v, element_bytes, dk, dv, task);
  }
  return segment_tasks(config.patterns[p], config.head_offsets, shape, 0, shape.tokens, k, v,
                       element_bytes, dk, dv, task);
}

AttentionOutputs run_forward(DilatedAttentionOp& op, const DilatedAttentionConfig& config,
                             const Tensor& q, const Tensor& k, const Tensor& v,
                             const AttentionExtras& extras) {
  const AttentionShape shape = query_shape(q);
  AttentionOutputs out{Tensor(qkv_shape(shape), q.dtype(), op.device()),
                       Tensor(lse_shape(shape), DType::float32, op.device())};
  op.forward(config, q, k, v, out.o, out.lse, extras);
  return out;
}

AttentionGradients run_backward(DilatedAttentionOp& op, const DilatedAttentionConfig& config,
                                const Tensor& q, const Tensor& k, const Tensor& v,
                                const AttentionOutputs& outputs, const Tensor& dout,
                                const AttentionExtras& extras) {
  AttentionShape shape = query_shape(q);
  if (k.defined() && k.rank() == 4) shape.kv_heads = k.dim(2);  // the op checks the rest
  AttentionGradients grads{Tensor(qkv_shape(shape), q.dtype(), op.device()),
                           Tensor(kv_shape(shape), q.dtype(), op.device()),
                           Tensor(kv_shape(shape), q.dtype(), op.device()),
                           {}};
  for (const Tensor& bias : extras.bias) {
    grads.dbias.emplace_back(bias.shape(), DType::float32, bias.device());
  }
  op.backward(config, q, k, v, outputs.o, outputs.lse, dout, grads.dq, grads.dk, grads.dv, extras,
              grads.dbias);
  return grads;
}

}  // namespace longnet
