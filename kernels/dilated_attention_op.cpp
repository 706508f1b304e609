// The op's front end: every argument check, written once for all backends, in the order
// configuration, q's rank and shape, what the backend supports (dtype, head dim), the
// other tensors' shapes and dtypes, extras, memory. No backend call happens before the
// checks pass, so argument errors are reported even where a backend's device is absent.
#include "kernels/dilated_attention.hpp"

#include "runtime/error.hpp"

#include <fmt/format.h>

#include <cmath>

namespace longnet {
namespace {

constexpr const char* kSameDtype = "q, k, v, o, do, dq, dk, dv share one dtype";
constexpr const char* kFloat32 = "log-sum-exp rows are always float32";

// t must exist, have `expected` shape and `dtype`; `what` names it.
void check_tensor_like(const Tensor& t, const Shape& expected, DType dtype, const char* what,
                       const char* dtype_reason) {
  LONGNET_CHECK(t.defined(), "{} is missing (an empty tensor)", what);
  LONGNET_CHECK(t.shape() == expected, "{} has shape {}, expected {}", what,
                shape_string(t.shape()), shape_string(expected));
  LONGNET_CHECK(t.dtype() == dtype, "{} is {} but must be {} ({})", what, dtype_name(t.dtype()),
                dtype_name(dtype), dtype_reason);
}

const char* memory_word(Device device) { return device == Device::cpu ? "host" : "device"; }

}  // namespace

std::optional<std::string> DilatedAttentionOp::supports(const DilatedAttentionConfig& config,
                                                        const AttentionShape& shape,
                                                        DType dtype) const {
  (void)config;  // every backend runs every valid configuration today
  if (auto reason = unsupported_dtype(dtype)) return reason;
  return unsupported_head_dim(shape.head_dim);
}

void DilatedAttentionOp::require_supported(const DilatedAttentionConfig& config,
                                           const AttentionShape& shape, DType dtype) const {
  const std::optional<std::string> reason = supports(config, shape, dtype);
  LONGNET_CHECK(!reason, "the {} backend cannot run this attention: {}", name(), *reason);
}

AttentionShape DilatedAttentionOp::check_inputs(const DilatedAttentionConfig& config,
                                                const Tensor& q, const Tensor& k,
                                                const Tensor& v) const {
  validate_config(config);
  AttentionShape shape = query_shape(q);
  require_supported(config, shape, q.dtype());
  LONGNET_CHECK(k.defined() && k.rank() == 4 && k.dim(0) == q.dim(0) && k.dim(1) == q.dim(1) &&
                    k.dim(3) == q.dim(3),
                "k has shape {} but q has {}: k and v must be [B, N, Hkv, D] with q's B, N and "
                "D, and Hkv dividing q's H",
                k.defined() ? shape_string(k.shape()) : "(empty)", shape_string(q.shape()));
  shape.kv_heads = k.dim(2);
  LONGNET_CHECK(shape.kv_heads > 0 && shape.heads % shape.kv_heads == 0,
                "k and v have {} heads, which must divide q's {} heads (grouped-query "
                "attention: each kv head serves H / Hkv query heads)",
                shape.kv_heads, shape.heads);
  check_tensor_like(k, kv_shape(shape), q.dtype(), "k", kSameDtype);
  check_tensor_like(v, kv_shape(shape), q.dtype(), "v (must match k)", kSameDtype);
  return shape;
}

void DilatedAttentionOp::check_on_device(
    std::initializer_list<std::pair<const Tensor*, const char*>> tensors) const {
  const Device here = device();
  for (const auto& [t, what] : tensors) {
    LONGNET_CHECK(t->device() == here,
                  "{} is a {} tensor (Device::{}); the {} backend takes Device::{} tensors: "
                  "copy it with Tensor::to(Device::{})",
                  what, memory_word(t->device()), device_name(t->device()), name(),
                  device_name(here), device_name(here));
  }
}

Device DilatedAttentionOp::extras_device(const AttentionExtras& extras) const {
  return !extras.bias.empty() && extras.bias.front().device() == Device::cpu ? Device::cpu
                                                                             : device();
}

namespace {

AttentionParams base_params(const DilatedAttentionConfig& config, const AttentionShape& shape,
                            const Tensor& q, float dropout_p) {
  AttentionParams params;
  params.input_dtype = q.dtype();
  params.q = q.raw();
  params.head_dim = shape.head_dim;
  params.scale = static_cast<float>(softmax_scale(config, shape.head_dim));
  params.causal = config.causal;
  params.dropout_p = dropout_p;
  return params;
}

}  // namespace

void DilatedAttentionOp::forward(const DilatedAttentionConfig& config, const Tensor& q,
                                 const Tensor& k, const Tensor& v, Tensor& o, Tensor& lse,
                                 const AttentionExtras& extras) {
  const AttentionShape shape = check_inputs(config, q, k, v);
  check_tensor_like(o, q.shape(), q.dtype(), "o", kSameDtype);
  check_tensor_like(lse, lse_shape(shape), DType::float32, "lse", kFloat32);
  check_extras(config, shape, extras, {}, extras_device(extras));
  check_on_device({{&q, "q"}, {&k, "k"}, {&v, "v"}, {&o, "o"}, {&lse, "lse"}});
  do_forward(ForwardCall{config, shape, base_params(config, shape, q, extras.dropout_p), q, k, v, o,
                         lse, extras});
}

void DilatedAttentionOp::backward(const DilatedAttentionConfig& config, const Tensor& q,
                                  const Tensor& k, const Tensor& v, const Tensor& o,
                                  const Tensor& lse, const Tensor& dout, Tensor& dq, Tensor& dk,
                                  Tensor& dv, const AttentionExtras& extras,
                                  std::span<Tensor> dbias) {
  const AttentionShape shape = check_inputs(config, q, k, v);
  check_tensor_like(o, q.shape(), q.dtype(), "o", kSameDtype);
  check_tensor_like(lse, lse_shape(shape), DType::float32, "lse", kFloat32);
  check_tensor_like(dout, q.shape(), q.dtype(), "do (the output gradient)", kSameDtype);
  check_tensor_like(dq, q.shape(), q.dtype(), "dq", kSameDtype);
  check_tensor_like(dk, kv_shape(shape), q.dtype(), "dk (shaped like k)", kSameDtype);
  check_tensor_like(dv, kv_shape(shape), q.dtype(), "dv (shaped like v)", kSameDtype);
  check_extras(config, shape, extras, dbias, extras_device(extras));
  check_on_device({{&q, "q"},
                   {&k, "k"},
                   {&v, "v"},
                   {&o, "o"},
                   {&lse, "lse"},
                   {&dout, "do"},
                   {&dq, "dq"},
                   {&dk, "dk"},
                   {&dv, "dv"}});
  do_backward(BackwardCall{config, shape, base_params(config, shape, q, extras.dropout_p), q, k, v,
                           o, lse, dout, dq, dk, dv, extras, dbias});
}

void DilatedAttentionOp::check_task_call(const AttentionParams& params, const PatternTasks& pattern,
                                         bool backward) const {
  check_dropout_probability(params.dropout_p);
  if (auto reason = unsupported_dtype(params.input_dtype)) {
    throw Error(fmt::format("AttentionParams::input_dtype is {}: the {} backend cannot run it: {}",
                            dtype_name(params.input_dtype), name(), *reason));
  }
  if (auto reason = unsupported_head_dim(params.head_dim)) {
    throw Error(fmt::format("the {} backend cannot run this attention: {}", name(), *reason));
  }
  LONGNET_CHECK(std::isfinite(params.scale) && params.scale > 0,
                "AttentionParams::scale must be positive and finite, got {}", params.scale);
  LONGNET_CHECK(params.q != nullptr, "AttentionParams::q is null");
  if (backward) {
    LONGNET_CHECK(params.dout && params.saved_lse && params.delta && params.dq,
                  "backward_tasks needs dout, saved_lse, delta and dq in AttentionParams");
  } else {
    LONGNET_CHECK(params.o && params.lse, "forward_tasks needs o and lse in AttentionParams");
  }
  for (const SegmentTask& task : pattern.tasks) {
    LONGNET_CHECK(task.queries.count >= 0 && task.keys.count >= 0 && task.queries.first_index >= 0,
                  "a task has negative counts or first_index");
    LONGNET_CHECK(task.keys.count == 0 || (task.keys.k && task.keys.v),
                  "a task with keys has null k or v");
    LONGNET_CHECK(!backward || task.keys.count == 0 || (task.keys.dk && task.keys.dv),
                  "backward_tasks needs every task's keys.dk and keys.dv");
  }
}

void DilatedAttentionOp::forward_tasks(const AttentionParams& params, const PatternTasks& pattern) {
  check_task_call(params, pattern, false);
  do_forward_tasks(params, pattern);
}

void DilatedAttentionOp::backward_tasks(const AttentionParams& params,
                                        const PatternTasks& pattern) {
  check_task_call(params, pattern, true);
  do_backward_tasks(params, pattern);
}

void DilatedAttentionOp::output_gradient_dot(const Tensor& o, const Tensor& dout, Tensor& delta) {
  LONGNET_CHECK(o.defined() && o.rank() == 4, "o must have rank 4, got shape {}",
                o.defined() ? shape_string(o.shape()) : "(empty)");
  if (auto reason = unsupported_dtype(o.dtype())) {
    throw Error(fmt::format("o is {}: the {} backend cannot run it: {}", dtype_name(o.dtype()),
                            name(), *reason));
  }
  check_tensor_like(dout, o.shape(), o.dtype(), "do (the output gradient, must match o)",
                    kSameDtype);
  check_tensor_like(delta, {o.dim(0), o.dim(1), o.dim(2)}, DType::float32, "delta", kFloat32);
  check_on_device({{&o, "o"}, {&dout, "do"}, {&delta, "delta"}});
  do_output_gradient_dot(o, dout, delta);
}

}  // namespace longnet
