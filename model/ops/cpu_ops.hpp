// The CPU backend's loops, below the ModelOps entry points of cpu_model_ops.cpp.
//
// Every function takes raw row-major pointers and dimensions that the entry point has
// already validated (model_ops_checks.hpp); they are instantiated for float and double.
// Arithmetic is in T except the reductions (means, variances, column sums, log-sum-exp,
// squared norms), which accumulate in double.
//
// Determinism: a reduction over rows (db, dgamma, dbeta) or elements (sum of squares)
// sums fixed-size chunks and then the chunk results in order, so the result does not depend
// on the number of OpenMP threads; nothing uses atomics.
#pragma once

#include <cstdint>
#include <span>

#include "model/ops/model_ops.hpp"
#include "model/ops/token_groups.hpp"

namespace longnet::cpu_ops {

// cpu_linear.cpp
template <typename T>
void linear_forward(const T* x, const T* w, const T* b, T* y, int64_t m, int64_t k, int64_t n);
template <typename T>
void linear_backward(const T* x, const T* w, const T* dy, T* dx, T* dw, T* db, int64_t m, int64_t k,
                     int64_t n);
// out[c] += sum over rows r of a[r, c] (double accumulation, deterministic).
template <typename T>
void add_column_sums(const T* a, int64_t rows, int64_t cols, T* out);

// cpu_norm_activation.cpp
template <typename T>
void layer_norm_forward(const T* x, const T* gamma, const T* beta, double eps, T* y, T* mean,
                        T* rstd, int64_t rows, int64_t cols);
template <typename T>
void layer_norm_backward(const T* x, const T* gamma, const T* mean, const T* rstd, const T* dy,
                         T* dx, T* dgamma, T* dbeta, int64_t rows, int64_t cols);
template <typename T>
void gelu_forward(const T* x, T* y, int64_t n);
template <typename T>
void gelu_backward(const T* x, const T* dy, T* dx, int64_t n);

// cpu_embedding_loss.cpp
template <typename T>
void embedding_forward(std::span<const int32_t> tokens, const T* table, T* out, int64_t channels);
template <typename T>
void embedding_backward(const TokenGroups& groups, const T* dout, T* dtable, int64_t channels);
template <typename T>
double cross_entropy(const T* logits, std::span<const int32_t> targets, int64_t vocab,
                     double grad_scale, T* dlogits, std::span<double> per_token_loss);
template <typename T>
void argmax_rows(const T* logits, int64_t rows, int64_t vocab, std::span<int32_t> out);

// cpu_elementwise.cpp
template <typename T>
void add(const T* a, const T* b, T* out, int64_t n);
template <typename T>
double sum_of_squares(const T* a, int64_t n);
template <typename T>
void scale(T* a, double factor, int64_t n);
template <typename T>
void adamw_step(T* param, const T* grad, T* m, T* v, int64_t n, int64_t step,
                const AdamWSettings& s, bool decay);

}  // namespace longnet::cpu_ops
