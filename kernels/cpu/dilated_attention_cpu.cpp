// The CPU backend: validation, the per-pattern row sets, and dispatch to the ISA copy
// of the tile code (dilated_attention_tiles.inc, which documents the algorithm).
#include "kernels/cpu/dilated_attention_cpu.hpp"

#include "kernels/cpu/isa_entry_points.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

namespace longnet {
namespace {

// The whole sequence is local on one rank.
PatternTasks pattern_tasks(const DilationPattern& pattern, HeadOffsets scheme,
                           const AttentionShape& shape, const float* k, const float* v, float* dk,
                           float* dv, const TaskExtras& extras) {
  return segment_tasks(pattern, scheme, shape, 0, shape.tokens, k, v, sizeof(float), dk, dv,
                       extras);
}

void check_float32_inputs(const AttentionParams& params) {
  LONGNET_CHECK(params.input_dtype == DType::float32,
                "the CPU kernels take float32 inputs, not {}; convert them with Tensor::cast",
                dtype_name(params.input_dtype));
  check_dropout_probability(params.dropout_p);
}

AttentionParams base_params(const DilatedAttentionConfig& config, const AttentionShape& shape) {
  AttentionParams params;
  params.head_dim = shape.head_dim;
  params.scale = static_cast<float>(softmax_scale(config, shape.head_dim));
  params.causal = config.causal;
  return params;
}

using PatternFn = void (*)(const AttentionParams&, const PatternTasks&);

class CpuDilatedAttention final : public DilatedAttentionKernels {
 public:
  explicit CpuDilatedAttention(CpuIsa isa) : isa_(isa) {
    LONGNET_CHECK(cpu_isa_available(isa), "the {} CPU kernels cannot run on this processor",
                  cpu_isa_name(isa));
    switch (isa) {
      case CpuIsa::generic:
        forward_ = cpu::generic::forward_pattern;
        backward_ = cpu::generic::backward_pattern;
        break;
      case CpuIsa::avx2:
        forward_ = cpu::avx2::forward_pattern;
        backward_ = cpu::avx2::backward_pattern;
        break;
      case CpuIsa::avx512:
        forward_ = cpu::avx512::forward_pattern;
        backward_ = cpu::avx512::backward_pattern;
        break;
    }
  }

  std::string name() const override { return fmt::format("cpu-{}", cpu_isa_name(isa_)); }

  void forward(const DilatedAttentionConfig& config, const Tensor& q, const Tensor& k,
               const Tensor& v, Tensor& o, Tensor& lse, const AttentionExtras& extras) override {
    validate_config(config);
    const AttentionShape shape = check_qkv(q, k, v);
    check_tensor(o, qkv_shape(shape), "o");
    check_tensor(lse, lse_shape(shape), "lse");
    check_extras(config, shape, extras, {}, Device::cpu);

    o.fill(0.0);
    lse.fill(-std::numeric_limits<double>::infinity());
    AttentionParams params = base_params(config, shape);
    params.q = q.data<float>();
    params.o = o.data<float>();
    params.lse = lse.data<float>();
    params.dropout_p = extras.dropout_p;
    for (std::size_t p = 0; p < config.patterns.size(); ++p) {
      forward_(params, pattern_tasks(config.patterns[p], config.head_offsets, shape,
                                     k.data<float>(), v.data<float>(), nullptr, nullptr,
                                     pattern_task_extras(config, shape, extras, {}, p)));
    }
  }

  void backward(const DilatedAttentionConfig& config, const Tensor& q, const Tensor& k,
                const Tensor& v, const Tensor& o, const Tensor& lse, const Tensor& dout,
                Tensor& dq, Tensor& dk, Tensor& dv, const AttentionExtras& extras,
                std::span<Tensor> dbias) override {
    validate_config(config);
    const AttentionShape shape = check_qkv(q, k, v);
    check_tensor(o, qkv_shape(shape), "o");
    check_tensor(lse, lse_shape(shape), "lse");
    check_tensor(dout, qkv_shape(shape), "do (the output gradient)");
    check_tensor(dq, qkv_shape(shape), "dq");
    check_tensor(dk, qkv_shape(shape), "dk");
    check_tensor(dv, qkv_shape(shape), "dv");
    check_extras(config, shape, extras, dbias, Device::cpu);

    Tensor delta(lse_shape(shape), DType::float32);
    output_gradient_dot(o, dout, delta);

    dq.fill(0.0);
    dk.fill(0.0);
    dv.fill(0.0);
    for (Tensor& t : dbias) t.fill(0.0);
    AttentionParams params = base_params(config, shape);
    params.q = q.data<float>();
    params.saved_lse = lse.data<float>();
    params.dout = dout.data<float>();
    params.delta = delta.data<float>();
    params.dq = dq.data<float>();
    params.dropout_p = extras.dropout_p;
    for (std::size_t p = 0; p < config.patterns.size(); ++p) {
      backward_(params, pattern_tasks(config.patterns[p], config.head_offsets, shape,
                                      k.data<float>(), v.data<float>(), dk.data<float>(),
                                      dv.data<float>(),
                                      pattern_task_extras(config, shape, extras, dbias, p)));
    }
  }

  void forward_tasks(const AttentionParams& params, const PatternTasks& pattern) override {
    check_float32_inputs(params);
    forward_(params, pattern);
  }
  void backward_tasks(const AttentionParams& params, const PatternTasks& pattern) override {
    check_float32_inputs(params);
    backward_(params, pattern);
  }

  // Accumulated in double: delta is the subtrahend of dP - delta, where cancellation
  // would magnify its rounding error.
  void output_gradient_dot(const Tensor& o, const Tensor& dout, Tensor& delta) override {
    check_tensor(dout, o.shape(), "do (the output gradient, must match o)");
    LONGNET_CHECK(o.rank() == 4, "o must have rank 4, got shape {}", shape_string(o.shape()));
    check_tensor(delta, {o.dim(0), o.dim(1), o.dim(2)}, "delta");
    const float* o_data = o.data<float>();
    const float* do_data = dout.data<float>();
    float* delta_data = delta.data<float>();
    const int64_t rows = delta.numel();
    const int64_t d = o.dim(3);
#pragma omp parallel for schedule(static)
    for (int64_t row = 0; row < rows; ++row) {
      double sum = 0;
      for (int64_t j = 0; j < d; ++j) {
        sum += static_cast<double>(o_data[row * d + j]) * do_data[row * d + j];
      }
      delta_data[row] = static_cast<float>(sum);
    }
  }

 private:
  CpuIsa isa_;
  PatternFn forward_ = nullptr;
  PatternFn backward_ = nullptr;
};

}  // namespace

std::unique_ptr<DilatedAttentionKernels> make_cpu_dilated_attention() {
  return make_cpu_dilated_attention(default_cpu_isa());
}

std::unique_ptr<DilatedAttentionKernels> make_cpu_dilated_attention(CpuIsa isa) {
  return std::make_unique<CpuDilatedAttention>(isa);
}

}  // namespace longnet
