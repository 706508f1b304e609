// Argument validation shared by every ModelOps backend.
//
// Each backend's entry point calls the check of its op first and works only on the
// dimensions it returns, so the CPU and CUDA backends accept and reject exactly the same
// calls with the same messages. A message names the op, the tensor, the expected and the
// actual shape or dtype, and what to change.
//
// Shapes. Row-wise ops (linear, layer norm, embedding output, cross-entropy logits) take
// tensors of rank >= 2 and treat every leading dim as rows: x [..., K] is x [M, K] with M the
// product of the leading dims (Tensor has no reshape, so a [B, N, C] activation is passed as
// is). Per-row outputs (mean, rstd) have the leading dims of x as their shape.
//
// Token ids and targets are host spans on every backend (they come from the data loader);
// their range is checked here, on the host, before any work is queued.
#pragma once

#include <cstdint>
#include <span>

#include "model/ops/model_ops.hpp"

namespace longnet::model_ops_checks {

// A row-major [rows, cols] view of a tensor whose leading dims are flattened.
struct RowDims {
  int64_t rows = 0;
  int64_t cols = 0;
  DType dtype = DType::float32;
};

struct LinearDims {
  int64_t m = 0;  // rows of x and y
  int64_t k = 0;  // input features: x [M, K], w [N, K]
  int64_t n = 0;  // output features: y [M, N]
  DType dtype = DType::float32;
};

struct EmbeddingDims {
  int64_t tokens = 0;    // T
  int64_t vocab = 0;     // V
  int64_t channels = 0;  // C
  DType dtype = DType::float32;
};

struct ElementDims {
  int64_t n = 0;
  DType dtype = DType::float32;
};

LinearDims check_linear_forward(const Tensor& x, const Tensor& w, const Tensor* b, const Tensor& y,
                                Device device);
LinearDims check_linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy,
                                 const Tensor* dx, const Tensor& dw, const Tensor* db,
                                 Device device);
RowDims check_layer_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                 double eps, const Tensor& y, const Tensor& mean,
                                 const Tensor& rstd, Device device);
RowDims check_layer_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean,
                                  const Tensor& rstd, const Tensor& dy, const Tensor& dx,
                                  const Tensor& dgamma, const Tensor& dbeta, Device device);
// x and y (gelu_forward), x, dy and dx (gelu_backward), a, b and out (add): one shape.
ElementDims check_same_shape(const char* op, std::span<const Tensor* const> tensors,
                             std::span<const char* const> names, Device device);
ElementDims check_single(const char* op, const Tensor& t, const char* name, Device device);
EmbeddingDims check_embedding_forward(std::span<const int32_t> tokens, const Tensor& table,
                                      const Tensor& out, Device device);
EmbeddingDims check_embedding_backward(std::span<const int32_t> tokens, const Tensor& dout,
                                       const Tensor& dtable, Device device);
// rows = T, cols = V.
RowDims check_cross_entropy(const Tensor& logits, std::span<const int32_t> targets,
                            const Tensor* dlogits, std::span<const double> per_token_loss,
                            Device device);
// rows = T, cols = V.
RowDims check_argmax_rows(const Tensor& logits, std::span<const int32_t> out, Device device);
ElementDims check_adamw(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v,
                        int64_t step, const AdamWSettings& s, Device device);

}  // namespace longnet::model_ops_checks
