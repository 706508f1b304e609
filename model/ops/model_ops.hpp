// The model's non-attention ops: one interface, one implementation per backend.
//
// Projections (linear), layer norm, GELU, token embedding, softmax cross-entropy,
// elementwise add, the squared norm and scaling used by global-norm clipping, and the
// AdamW step. Like kernels/dilated_attention.hpp, the CPU backend (model/ops/cpu_*) and
// the CUDA backend (model/ops/cuda/) implement ModelOps with the same semantics; the
// model holds a backend through this interface and never reaches the code below it.
//
// Conventions: every tensor is dense and row-major; all tensors of one call share one
// dtype, float32 or float64 (float64 exists so layers can be checked against finite
// differences in double); the tensors live in the backend's memory (host for the CPU,
// device for CUDA). Outputs called "overwritten" get every element written; gradients
// called "accumulated" are added to (+=), so a parameter used twice sums its gradients
// and the caller zeroes them once per step. Shapes and dtypes are checked; a mismatch is
// an Error naming the tensor, the expected and the actual shape.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "runtime/tensor.hpp"

namespace longnet {

struct AdamWSettings {
  double lr;            // learning rate
  double beta1;         // decay of the first moment (mean of g)
  double beta2;         // decay of the second moment (mean of g^2)
  double eps;           // added to sqrt(vhat), outside the square root
  double weight_decay;  // decoupled: p -= lr * weight_decay * p (only when asked)
};

class ModelOps {
 public:
  virtual ~ModelOps() = default;
  // A short name for logs, e.g. "cpu" or "cuda:0".
  virtual std::string name() const = 0;
  // All tensors of one call share one dtype: float32 or float64 (float64 exists so layers can be
  // checked against finite differences in double); row-major.
  // y[M,N] = x[M,K] w[N,K]^T (+ b[N] when b is non-null). Overwrites y.
  virtual void linear_forward(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& y) = 0;
  // dx = dy w (overwrites dx when non-null); dw += dy^T x; db += column sums of dy (when non-null).
  virtual void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx,
                               Tensor& dw, Tensor* db) = 0;
  // LayerNorm over the last dim C of x[M,C]: y = (x-mean)*rstd*gamma + beta; saves mean[M],
  // rstd[M].
  virtual void layer_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                  double eps, Tensor& y, Tensor& mean, Tensor& rstd) = 0;
  // dx overwritten; dgamma, dbeta accumulated (+=).
  virtual void layer_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean,
                                   const Tensor& rstd, const Tensor& dy, Tensor& dx, Tensor& dgamma,
                                   Tensor& dbeta) = 0;
  // GELU, exact (erf) form. y and dx overwritten.
  virtual void gelu_forward(const Tensor& x, Tensor& y) = 0;
  virtual void gelu_backward(const Tensor& x, const Tensor& dy, Tensor& dx) = 0;
  // out[T,C] = table[tokens[t], :]; table [V,C]. Token ids out of [0,V) are an error naming the
  // id and position.
  virtual void embedding_forward(std::span<const int32_t> tokens, const Tensor& table,
                                 Tensor& out) = 0;
  virtual void embedding_backward(std::span<const int32_t> tokens, const Tensor& dout,
                                  Tensor& dtable) = 0;  // dtable +=
  // Softmax cross-entropy of logits[T,V] against targets[T]. Returns the SUM over t of
  // -log softmax(logits_t)[target_t] (accumulated in double). If dlogits is non-null writes
  // dlogits = (softmax - onehot) * grad_scale. If per_token_loss is non-empty (size T) writes
  // each token's loss there.
  virtual double cross_entropy(const Tensor& logits, std::span<const int32_t> targets,
                               double grad_scale, Tensor* dlogits,
                               std::span<double> per_token_loss) = 0;
  // out[t] = the index of the largest value in row t of logits[T,V] (the first of equal
  // values): the greedy next token. out has T elements (host memory).
  virtual void argmax_rows(const Tensor& logits, std::span<int32_t> out) = 0;
  // out = a + b elementwise (shapes equal); a += b.
  virtual void add(const Tensor& a, const Tensor& b, Tensor& out) = 0;
  virtual void add_in_place(Tensor& a, const Tensor& b) = 0;
  // Sum of squares (double) of a tensor — for global-norm clipping — and in-place scaling.
  virtual double sum_of_squares(const Tensor& t) = 0;
  virtual void scale(Tensor& t, double factor) = 0;
  // One AdamW step (decoupled weight decay, bias-corrected moments; step is 1-based):
  // m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; mhat = m/(1-b1^step); vhat = v/(1-b2^step);
  // p -= lr * (mhat/(sqrt(vhat)+eps) + (decay ? weight_decay * p : 0)).
  // param/grad/m/v float32 (float64 allowed too).
  virtual void adamw_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, int64_t step,
                          const AdamWSettings& s, bool decay) = 0;
  // Waits for queued work (CUDA); no-op on the CPU.
  virtual void synchronize() {}
};

std::unique_ptr<ModelOps> make_cpu_model_ops();

}  // namespace longnet
