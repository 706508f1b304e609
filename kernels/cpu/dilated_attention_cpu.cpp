// The CPU backend: the op's hooks (the front end has checked their arguments) and dispatch
// to the ISA copy of the tile code (dilated_attention_tiles.inc documents the algorithm).
#include "kernels/cpu/dilated_attention_cpu.hpp"

#include "kernels/cpu/isa_entry_points.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <optional>
#include <string>

namespace longnet {
namespace {

using PatternFn = void (*)(const AttentionParams&, const PatternTasks&);

class CpuDilatedAttention final : public DilatedAttentionOp {
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
  Device device() const override { return Device::cpu; }

 protected:
  std::optional<std::string> unsupported_dtype(DType dtype) const override {
    if (dtype == DType::float32) return std::nullopt;
    return fmt::format(
        "q is {}, but the CPU kernels take float32 inputs; convert them with "
        "Tensor::cast",
        dtype_name(dtype));
  }
  std::optional<std::string> unsupported_head_dim(int64_t) const override { return std::nullopt; }

  void do_forward(const ForwardCall& call) override {
    call.o.fill(0.0);
    call.lse.fill(-std::numeric_limits<double>::infinity());
    AttentionParams params = call.params;
    params.o = call.o.data<float>();
    params.lse = call.lse.data<float>();
    for (std::size_t p = 0; p < call.config.patterns.size(); ++p) {
      forward_(params,
               whole_sequence_tasks(call.config, call.shape, call.extras, p, call.k.data<float>(),
                                    call.v.data<float>(), sizeof(float), nullptr, nullptr,
                                    bias(call.extras, p), nullptr));
    }
  }

  void do_backward(const BackwardCall& call) override {
    Tensor delta(lse_shape(call.shape), DType::float32);
    do_output_gradient_dot(call.o, call.dout, delta);

    call.dq.fill(0.0);
    // Grouped heads: one accumulator per member of a group, summed at the end
    // (segment_tasks); else dk and dv themselves.
    const int64_t group = call.shape.group_size();
    Tensor dk_acc =
        group > 1 ? Tensor::zeros({group, call.shape.key_elements()}, DType::float32) : call.dk;
    Tensor dv_acc =
        group > 1 ? Tensor::zeros({group, call.shape.key_elements()}, DType::float32) : call.dv;
    if (group == 1) {
      call.dk.fill(0.0);
      call.dv.fill(0.0);
    }
    for (Tensor& t : call.dbias) t.fill(0.0);
    AttentionParams params = call.params;
    params.saved_lse = call.lse.data<float>();
    params.dout = call.dout.data<float>();
    params.delta = delta.data<float>();
    params.dq = call.dq.data<float>();
    for (std::size_t p = 0; p < call.config.patterns.size(); ++p) {
      backward_(params,
                whole_sequence_tasks(call.config, call.shape, call.extras, p, call.k.data<float>(),
                                     call.v.data<float>(), sizeof(float), dk_acc.data<float>(),
                                     dv_acc.data<float>(), bias(call.extras, p),
                                     call.dbias.empty() ? nullptr : call.dbias[p].data<float>()));
    }
    if (group > 1) {
      const int64_t n = call.shape.key_elements();
      sum_group_accumulators(dk_acc.data<float>(), group, call.dk.data<float>(), n, false);
      sum_group_accumulators(dv_acc.data<float>(), group, call.dv.data<float>(), n, false);
    }
  }

  void do_forward_tasks(const AttentionParams& params, const PatternTasks& pattern) override {
    forward_(params, pattern);
  }
  void do_backward_tasks(const AttentionParams& params, const PatternTasks& pattern) override {
    backward_(params, pattern);
  }

  // Accumulated in double: delta is the subtrahend of dP - delta, where cancellation
  // would magnify its rounding error.
  void do_output_gradient_dot(const Tensor& o, const Tensor& dout, Tensor& delta) override {
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
  static const float* bias(const AttentionExtras& extras, std::size_t p) {
    return extras.bias.empty() ? nullptr : extras.bias[p].data<float>();
  }

  CpuIsa isa_;
  PatternFn forward_ = nullptr;
  PatternFn backward_ = nullptr;
};

}  // namespace

std::unique_ptr<DilatedAttentionOp> make_cpu_dilated_attention() {
  return make_cpu_dilated_attention(default_cpu_isa());
}

std::unique_ptr<DilatedAttentionOp> make_cpu_dilated_attention(CpuIsa isa) {
  return std::make_unique<CpuDilatedAttention>(isa);
}

}  // namespace longnet
