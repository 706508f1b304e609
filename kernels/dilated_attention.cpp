#include "kernels/dilated_attention.hpp"

namespace longnet {

Shape qkv_shape(const AttentionShape& s) { return {s.batch, s.tokens, s.heads, s.head_dim}; }
Shape lse_shape(const AttentionShape& s) { return {s.batch, s.tokens, s.heads}; }

void check_tensor(const Tensor& t, const Shape& expected, const char* what) {
  LONGNET_CHECK(t.defined(), "{} is missing (an empty tensor)", what);
  LONGNET_CHECK(t.dtype() == DType::float32, "{} must be float32, got {}", what,
                dtype_name(t.dtype()));
  LONGNET_CHECK(t.shape() == expected, "{} has shape {}, expected {}", what,
                shape_string(t.shape()), shape_string(expected));
}

AttentionShape check_qkv(const Tensor& q, const Tensor& k, const Tensor& v) {
  LONGNET_CHECK(q.defined() && q.rank() == 4,
                "q must have rank 4 [batch, tokens, heads, head_dim], got shape {}",
                q.defined() ? shape_string(q.shape()) : "(empty)");
  const AttentionShape shape{q.dim(0), q.dim(1), q.dim(2), q.dim(3)};
  validate_shape(shape);
  check_tensor(q, q.shape(), "q");
  check_tensor(k, q.shape(), "k (must match q)");
  check_tensor(v, q.shape(), "v (must match q)");
  return shape;
}

AttentionOutputs run_forward(DilatedAttentionKernels& kernels, const DilatedAttentionConfig& config,
                             const Tensor& q, const Tensor& k, const Tensor& v) {
  const AttentionShape shape = check_qkv(q, k, v);
  AttentionOutputs out{Tensor(qkv_shape(shape), DType::float32),
                       Tensor(lse_shape(shape), DType::float32)};
  kernels.forward(config, q, k, v, out.o, out.lse);
  return out;
}

AttentionGradients run_backward(DilatedAttentionKernels& kernels,
                                const DilatedAttentionConfig& config, const Tensor& q,
                                const Tensor& k, const Tensor& v, const AttentionOutputs& outputs,
                                const Tensor& dout) {
  const AttentionShape shape = check_qkv(q, k, v);
  AttentionGradients grads{Tensor(qkv_shape(shape), DType::float32),
                           Tensor(qkv_shape(shape), DType::float32),
                           Tensor(qkv_shape(shape), DType::float32)};
  kernels.backward(config, q, k, v, outputs.o, outputs.lse, dout, grads.dq, grads.dk, grads.dv);
  return grads;
}

}  // namespace longnet
