// The CPU backend of ModelOps: validates each call (model_ops_checks.hpp), picks float or
// double by the call's dtype, and runs the loops of cpu_ops.hpp. Host tensors only; every
// call has finished when it returns.
#include "model/ops/cpu_ops.hpp"
#include "model/ops/model_ops_checks.hpp"

namespace longnet {
namespace {

using namespace model_ops_checks;

// Calls f(T{}) with T = float or double, as `dtype` says (the checks admit only these).
template <typename F>
decltype(auto) with_type(DType dtype, F&& f) {
  if (dtype == DType::float64) return f(double{});
  return f(float{});
}

template <typename T>
T* data_or_null(Tensor* t) {
  return t != nullptr ? t->data<T>() : nullptr;
}
template <typename T>
const T* data_or_null(const Tensor* t) {
  return t != nullptr ? t->data<T>() : nullptr;
}

class CpuModelOps final : public ModelOps {
 public:
  std::string name() const override { return "cpu"; }

  void linear_forward(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& y) override {
    const LinearDims d = check_linear_forward(x, w, b, y, Device::cpu);
    with_type(d.dtype, [&](auto tag) {
      using T = decltype(tag);
      cpu_ops::linear_forward(x.data<T>(), w.data<T>(), data_or_null<T>(b), y.data<T>(), d.m, d.k,
                              d.n);
    });
  }

  void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor& dw,
                       Tensor* db) override {
    const LinearDims d = check_linear_backward(x, w, dy, dx, dw, db, Device::cpu);
    with_type(d.dtype, [&](auto tag) {
      using T = decltype(tag);
      cpu_ops::linear_backward(x.data<T>(), w.data<T>(), dy.data<T>(), data_or_null<T>(dx),
                               dw.data<T>(), data_or_null<T>(db), d.m, d.k, d.n);
    });
  }

  void layer_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps,
                          Tensor& y, Tensor& mean, Tensor& rstd) override {
    const RowDims d = check_layer_norm_forward(x, gamma, beta, eps, y, mean, rstd, Device::cpu);
    with_type(d.dtype, [&](auto tag) {
      using T = decltype(tag);
      cpu_ops::layer_norm_forward(x.data<T>(), gamma.data<T>(), beta.data<T>(), eps, y.data<T>(),
                                  mean.data<T>(), rstd.data<T>(), d.rows, d.cols);
    });
  }

  void layer_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean,
                           const Tensor& rstd, const Tensor& dy, Tensor& dx, Tensor& dgamma,
                           Tensor& dbeta) override {
    const RowDims d =
        check_layer_norm_backward(x, gamma, mean, rstd, dy, dx, dgamma, dbeta, Device::cpu);
    with_type(d.dtype, [&](auto tag) {
      using T = decltype(tag);
      cpu_ops::layer_norm_backward(x.data<T>(), gamma.data<T>(), mean.data<T>(), rstd.data<T>(),
                                   dy.data<T>(), dx.data<T>(), dgamma.data<T>(), dbeta.data<T>(),
                                   d.rows, d.cols);
    });
  }

  void gelu_forward(const Tensor& x, Tensor& y) override {
    const Tensor* tensors[] = {&x, &y};
    const char* names[] = {"x", "y"};
    const ElementDims d = check_same_shape("gelu_forward", tensors, names, Device::cpu);
    with_type(d.dtype, [&](auto tag) {
      using T = decltype(tag);
      cpu_ops::gelu_forward(x.data<T>(), y.data<T>(), d.n);
    });
  }

  void gelu_backward(const Tensor& x, const Tensor& dy, Tensor& dx) override {
    const Tensor* tensors[] = {&x, &dy, &dx};
    const char* names[] = {"x", "dy", "dx"};
    const ElementDims d = check_same_shape("gelu_backward", tensors, names, Device::cpu);
    with_type(d.dtype, [&](auto tag) {
      using T = decltype(tag);
      cpu_ops::gelu_backward(x.data<T>(), dy.data<T>(), dx.data<T>(), d.n);
    });
  }

  void embedding_forward(std::span<const int32_t> tokens, const Tensor& table,
                         Tensor& out) override {
    const EmbeddingDims d = check_embedding_forward(tokens, table, out, Device::cpu);
    with_type(d.dtype, [&](auto tag) {
      using T = decltype(tag);
      cpu_ops::embedding_forward(tokens, table.data<T>(), out.data<T>(), d.channels);
    });
  }

  void embedding_backward(std::span<const int32_t> tokens, const Tensor& dout,
                          Tensor& dtable) override {
    const EmbeddingDims d = check_embedding_backward(tokens, dout, dtable, Device::cpu);
    const TokenGroups groups = group_by_token(tokens, d.vocab);
    with_type(d.dtype, [&](auto tag) {
      using T = decltype(tag);
      cpu_ops::embedding_backward(groups, dout.data<T>(), dtable.data<T>(), d.channels);
    });
  }

  double cross_entropy(const Tensor& logits, std::span<const int32_t> targets, double grad_scale,
                       Tensor* dlogits, std::span<double> per_token_loss) override {
    const RowDims d = check_cross_entropy(logits, targets, dlogits, per_token_loss, Device::cpu);
    return with_type(d.dtype, [&](auto tag) {
      using T = decltype(tag);
      return cpu_ops::cross_entropy(logits.data<T>(), targets, d.cols, grad_scale,
                                    data_or_null<T>(dlogits), per_token_loss);
    });
  }

  void argmax_rows(const Tensor& logits, std::span<int32_t> out) override {
    const RowDims d = check_argmax_rows(logits, out, Device::cpu);
    with_type(d.dtype, [&](auto tag) {
      using T = decltype(tag);
      cpu_ops::argmax_rows(logits.data<T>(), d.rows, d.cols, out);
    });
  }

  void add(const Tensor& a, const Tensor& b, Tensor& out) override {
    const Tensor* tensors[] = {&a, &b, &out};
    const char* names[] = {"a", "b", "out"};
    const ElementDims d = check_same_shape("add", tensors, names, Device::cpu);
    with_type(d.dtype, [&](auto tag) {
      using T = decltype(tag);
      cpu_ops::add(a.data<T>(), b.data<T>(), out.data<T>(), d.n);
    });
  }

  void add_in_place(Tensor& a, const Tensor& b) override {
    const Tensor* tensors[] = {&a, &b};
    const char* names[] = {"a", "b"};
    const ElementDims d = check_same_shape("add_in_place", tensors, names, Device::cpu);
    with_type(d.dtype, [&](auto tag) {
      using T = decltype(tag);
      cpu_ops::add(a.data<T>(), b.data<T>(), a.data<T>(), d.n);
    });
  }

  double sum_of_squares(const Tensor& t) override {
    const ElementDims d = check_single("sum_of_squares", t, "t", Device::cpu);
    return with_type(d.dtype, [&](auto tag) {
      using T = decltype(tag);
      return cpu_ops::sum_of_squares(t.data<T>(), d.n);
    });
  }

  void scale(Tensor& t, double factor) override {
    const ElementDims d = check_single("scale", t, "t", Device::cpu);
    with_type(d.dtype, [&](auto tag) {
      using T = decltype(tag);
      cpu_ops::scale(t.data<T>(), factor, d.n);
    });
  }

  void adamw_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, int64_t step,
                  const AdamWSettings& s, bool decay) override {
    const ElementDims d = check_adamw(param, grad, m, v, step, s, Device::cpu);
    with_type(d.dtype, [&](auto tag) {
      using T = decltype(tag);
      cpu_ops::adamw_step(param.data<T>(), grad.data<T>(), m.data<T>(), v.data<T>(), d.n, step, s,
                          decay);
    });
  }
};

}  // namespace

std::unique_ptr<ModelOps> make_cpu_model_ops() { return std::make_unique<CpuModelOps>(); }

}  // namespace longnet
