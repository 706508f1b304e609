// Host launchers of the CUDA ops' kernels, below the entry points of cuda_model_ops.cpp.
//
// Every launcher takes device pointers and dimensions already validated
// (model_ops_checks.hpp), queues its kernel(s) on `stream`, checks the launch and returns;
// each is instantiated for float and double. As on the CPU (model/ops/cpu_ops.hpp), the
// reductions accumulate in double and sum fixed-size partials in a fixed order, so results
// are deterministic. Scratch memory (device, `double`) is passed in by the caller, sized
// by column_partial_doubles. Plain CUDA C++: no fmt, no runtime headers, so nvcc sees
// only what it needs.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace longnet::cuda_ops {

// Column sums over rows are computed as partials over fixed chunks of rows, then added in
// chunk order. Scratch: column_partial_doubles(rows, cols) doubles (two sets for layer norm).
int64_t column_partial_doubles(int64_t rows, int64_t cols);

// y[r, :] = row, for every r (the bias before a GEMM with beta = 1).
template <typename T>
void broadcast_rows(const T* row, T* y, int64_t rows, int64_t cols, cudaStream_t stream);
// out[c] += sum over r of a[r, c].
template <typename T>
void add_column_sums(const T* a, int64_t rows, int64_t cols, T* out, double* scratch,
                     cudaStream_t stream);

template <typename T>
void layer_norm_forward(const T* x, const T* gamma, const T* beta, double eps, T* y, T* mean,
                        T* rstd, int64_t rows, int64_t cols, cudaStream_t stream);
// scratch: 2 * column_partial_doubles(rows, cols) doubles.
template <typename T>
void layer_norm_backward(const T* x, const T* gamma, const T* mean, const T* rstd, const T* dy,
                         T* dx, T* dgamma, T* dbeta, int64_t rows, int64_t cols, double* scratch,
                         cudaStream_t stream);
template <typename T>
void gelu_forward(const T* x, T* y, int64_t n, cudaStream_t stream);
template <typename T>
void gelu_backward(const T* x, const T* dy, T* dx, int64_t n, cudaStream_t stream);

template <typename T>
void embedding_forward(const int32_t* tokens, int64_t count, const T* table, T* out,
                       int64_t channels, cudaStream_t stream);
// Positions grouped by id (model/ops/token_groups.hpp), already on the device.
template <typename T>
void embedding_backward(const int32_t* group_ids, const int64_t* group_offsets,
                        const int64_t* positions, int64_t groups, const T* dout, T* dtable,
                        int64_t channels, cudaStream_t stream);
// losses[r] = lse(logits[r]) - logits[r, targets[r]]; dlogits (may be null) as in ModelOps.
template <typename T>
void cross_entropy(const T* logits, const int32_t* targets, int64_t rows, int64_t vocab,
                   double grad_scale, T* dlogits, double* losses, cudaStream_t stream);
// out[r] = the index of the first largest value of logits[r].
template <typename T>
void argmax_rows(const T* logits, int64_t rows, int64_t vocab, int32_t* out, cudaStream_t stream);

template <typename T>
void add(const T* a, const T* b, T* out, int64_t n, cudaStream_t stream);
template <typename T>
void scale(T* a, double factor, int64_t n, cudaStream_t stream);
// partials[i] for i < kSumOfSquaresPartials: sums of squares of a fixed split of the
// elements; the caller adds them in order.
constexpr int kSumOfSquaresPartials = 1024;
template <typename T>
void sum_of_squares_partials(const T* a, int64_t n, double* partials, cudaStream_t stream);

// The per-call scalars of an AdamW step, computed once on the host in double.
struct AdamWScalars {
  double beta1, beta2;
  double inv_bias_correction1;  // 1 / (1 - beta1^step)
  double inv_bias_correction2;  // 1 / (1 - beta2^step)
  double lr, eps;
  double weight_decay;  // 0 when the parameter is not decayed
};
template <typename T>
void adamw_step(T* param, const T* grad, T* m, T* v, int64_t n, const AdamWScalars& s,
                cudaStream_t stream);

}  // namespace longnet::cuda_ops
