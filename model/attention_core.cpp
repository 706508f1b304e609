#include "model/attention_core.hpp"

#include <algorithm>
#include <limits>

#include "model/sequence_parallel_attention.hpp"

namespace longnet {
namespace {

class LocalAttentionCore final : public AttentionCore {
 public:
  LocalAttentionCore(const DilatedAttentionConfig& config, const AttentionShape& shape,
                     DilatedAttentionOp& kernels)
      : config_(config), shape_(shape), kernels_(kernels) {}

  int64_t first_token() const override { return 0; }
  const AttentionShape& local_shape() const override { return shape_; }

  void forward(std::span<const PatternOperands> patterns, const Tensor& v, Tensor& o,
               Tensor& lse) override {
    check(patterns, false);
    check_tensor(v, kv_shape(shape_), "v");
    check_tensor(o, qkv_shape(shape_), "o");
    check_tensor(lse, lse_shape(shape_), "lse");
    o.fill(0.0);
    lse.fill(-std::numeric_limits<double>::infinity());
    AttentionParams params = base_params();
    params.o = o.data<float>();
    params.lse = lse.data<float>();
    for (std::size_t p = 0; p < patterns.size(); ++p) {
      params.q = patterns[p].q->raw();
      params.dropout_p = patterns[p].dropout_p;
      const PatternTasks work =
          segment_tasks(config_.patterns[p], config_.head_offsets, shape_, 0, shape_.tokens,
                        patterns[p].k->raw(), v.raw(), sizeof(float), nullptr, nullptr,
                        task_extras(patterns[p], config_.patterns[p], shape_.heads, false));
      kernels_.forward_tasks(params, work);
    }
  }

  void backward(std::span<const PatternOperands> patterns, const Tensor& v, const Tensor& o,
                const Tensor& lse, const Tensor& dout, Tensor& dv) override {
    check(patterns, true);
    for (auto [t, what] : {std::pair{&o, "o"}, {&dout, "do"}}) {
      check_tensor(*t, qkv_shape(shape_), what);
    }
    check_tensor(v, kv_shape(shape_), "v");
    check_tensor(dv, kv_shape(shape_), "dv");
    check_tensor(lse, lse_shape(shape_), "lse");
    Tensor delta(lse_shape(shape_), DType::float32);
    kernels_.output_gradient_dot(o, dout, delta);
    dv.fill(0.0);
    // Grouped-query heads: each group member adds into its own accumulator
    // (segment_tasks), one set per distinct dk tensor (patterns may share it) and one for
    // dv, summed into them at the end.
    const int64_t group = shape_.group_size(), key_elements = shape_.key_elements();
    std::vector<Tensor*> key_grads;
    std::vector<Tensor> key_accumulators;
    Tensor value_accumulator = group > 1 ? Tensor::zeros({group, key_elements}) : dv;
    const auto key_accumulator = [&](Tensor* dk) -> Tensor& {
      if (group == 1) return *dk;
      const auto at = std::find(key_grads.begin(), key_grads.end(), dk);
      if (at != key_grads.end()) return key_accumulators[at - key_grads.begin()];
      key_grads.push_back(dk);
      return key_accumulators.emplace_back(Tensor::zeros({group, key_elements}));
    };
    AttentionParams params = base_params();
    params.saved_lse = lse.data<float>();
    params.dout = dout.raw();
    params.delta = delta.data<float>();
    for (std::size_t p = 0; p < patterns.size(); ++p) {
      params.q = patterns[p].q->raw();
      params.dq = patterns[p].dq->data<float>();
      params.dropout_p = patterns[p].dropout_p;
      const PatternTasks work = segment_tasks(
          config_.patterns[p], config_.head_offsets, shape_, 0, shape_.tokens, patterns[p].k->raw(),
          v.raw(), sizeof(float), key_accumulator(patterns[p].dk).data<float>(),
          value_accumulator.data<float>(),
          task_extras(patterns[p], config_.patterns[p], shape_.heads, true));
      kernels_.backward_tasks(params, work);
    }
    if (group > 1) {
      for (std::size_t i = 0; i < key_grads.size(); ++i) {
        sum_group_accumulators(key_accumulators[i].data<float>(), group,
                               key_grads[i]->data<float>(), key_elements, true);
      }
      sum_group_accumulators(value_accumulator.data<float>(), group, dv.data<float>(), key_elements,
                             true);
    }
  }

 private:
  AttentionParams base_params() const {
    AttentionParams params;
    params.head_dim = shape_.head_dim;
    params.scale = static_cast<float>(softmax_scale(config_, shape_.head_dim));
    params.causal = config_.causal;
    return params;
  }

  void check(std::span<const PatternOperands> patterns, bool backward) const {
    LONGNET_CHECK(patterns.size() == config_.patterns.size(),
                  "attention: {} pattern operands for a config of {} patterns", patterns.size(),
                  config_.patterns.size());
    for (std::size_t p = 0; p < patterns.size(); ++p) {
      const PatternOperands& in = patterns[p];
      LONGNET_CHECK(in.q && in.k && (!backward || (in.dq && in.dk)),
                    "attention: pattern {} is missing q, k{}", p, backward ? ", dq or dk" : "");
      check_tensor(*in.q, qkv_shape(shape_), "q");
      check_tensor(*in.k, kv_shape(shape_), "k");
      if (backward) {
        check_tensor(*in.dq, qkv_shape(shape_), "dq");
        check_tensor(*in.dk, kv_shape(shape_), "dk");
      }
    }
  }

  DilatedAttentionConfig config_;
  AttentionShape shape_;
  DilatedAttentionOp& kernels_;
};

class SequenceParallelCore final : public AttentionCore {
 public:
  SequenceParallelCore(Communicator& group, const DilatedAttentionConfig& config,
                       const AttentionShape& global_shape, DilatedAttentionOp& kernels)
      : op_(group, config, global_shape, kernels) {}
  int64_t first_token() const override { return op_.shard().begin; }
  const AttentionShape& local_shape() const override { return op_.local_shape(); }
  void forward(std::span<const PatternOperands> patterns, const Tensor& v, Tensor& o,
               Tensor& lse) override {
    op_.forward(patterns, v, o, lse);
  }
  void backward(std::span<const PatternOperands> patterns, const Tensor& v, const Tensor& o,
                const Tensor& lse, const Tensor& dout, Tensor& dv) override {
    op_.backward(patterns, v, o, lse, dout, dv);
  }

 private:
  SequenceParallelAttention op_;
};

}  // namespace

std::unique_ptr<AttentionCore> make_local_attention_core(const DilatedAttentionConfig& config,
                                                         const AttentionShape& shape,
                                                         DilatedAttentionOp& kernels) {
  return std::make_unique<LocalAttentionCore>(config, shape, kernels);
}

std::unique_ptr<AttentionCore> make_sequence_parallel_core(Communicator& group,
                                                           const DilatedAttentionConfig& config,
                                                           const AttentionShape& global_shape,
                                                           DilatedAttentionOp& kernels) {
  return std::make_unique<SequenceParallelCore>(group, config, global_shape, kernels);
}

}  // namespace longnet
