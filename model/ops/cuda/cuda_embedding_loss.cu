// Token embedding and softmax cross-entropy on the GPU; the formulas are those of
// model/ops/cpu_embedding_loss.cpp.
//
// Embedding backward: one block per distinct id (positions grouped on the host,
// token_groups.hpp), threads over the channels, positions added in ascending order into
// the table row: no atomics, and the same additions in the same order as the CPU.
//
// Cross-entropy: one block per row; block reductions (in double) for the max and for
// sum exp(z - max). For float32 the exps are expf of the max-shifted logit (the shift is
// exact in float), the sum is in double; the row's loss is written to `losses` and the
// caller adds the rows in order on the host.
#include "model/ops/cuda/ops_common.cuh"
#include "model/ops/cuda/ops_launch.hpp"
#include "runtime/cublas_check.hpp"
#include "runtime/cuda_check.hpp"

namespace longnet::cuda_ops {
namespace {

__device__ inline float exp_t(float x) { return expf(x); }
__device__ inline double exp_t(double x) { return exp(x); }

// ---- CUDA kernels ------------------------------------------------------------------------
template <typename T>
__global__ void embedding_forward_kernel(const int32_t* tokens, int64_t count, const T* table,
                                         T* out, int64_t channels) {
  const int64_t n = count * channels;
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    const int64_t t = i / channels, c = i - t * channels;
    out[i] = table[static_cast<int64_t>(tokens[t]) * channels + c];
  }
}

template <typename T>
__global__ void embedding_backward_kernel(const int32_t* group_ids, const int64_t* group_offsets,
                                          const int64_t* positions, int64_t groups, const T* dout,
                                          T* dtable, int64_t channels) {
  for (int64_t g = blockIdx.x; g < groups; g += gridDim.x) {
    T* row = dtable + static_cast<int64_t>(group_ids[g]) * channels;
    for (int64_t c = threadIdx.x; c < channels; c += blockDim.x) {
      T acc = row[c];
      for (int64_t p = group_offsets[g]; p < group_offsets[g + 1]; ++p) {
        acc += dout[positions[p] * channels + c];
      }
      row[c] = acc;
    }
  }
}

template <typename T>
__global__ void cross_entropy_kernel(const T* logits, const int32_t* targets, int64_t rows,
                                     int64_t vocab, double grad_scale, T* dlogits, double* losses) {
  __shared__ double shared[kThreads / kWarp];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* z = logits + r * vocab;
    double zmax = -INFINITY;
    for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) {
      zmax = fmax(zmax, static_cast<double>(z[j]));
    }
    zmax = block_reduce<true>(zmax, shared);
    const T shift = static_cast<T>(zmax);  // exact: zmax is one of the row's values
    double sum = 0.0;
    for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) {
      sum += static_cast<double>(exp_t(z[j] - shift));
    }
    sum = block_reduce<false>(sum, shared);
    const double lse = zmax + log(sum);
    const int32_t target = targets[r];
    if (threadIdx.x == 0) losses[r] = lse - static_cast<double>(z[target]);
    if (dlogits != nullptr) {
      T* dz = dlogits + r * vocab;
      for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) {
        const double p =
            static_cast<double>(exp_t(static_cast<T>(static_cast<double>(z[j]) - lse)));
        dz[j] = static_cast<T>((p - (j == target ? 1.0 : 0.0)) * grad_scale);
      }
    }
  }
}

// One block per row: each thread keeps the first largest value of its stride, then the
// block keeps the largest of those, the lowest index among equals (as std::max_element).
template <typename T>
__global__ void argmax_rows_kernel(const T* logits, int64_t rows, int64_t vocab, int32_t* out) {
  __shared__ double best_value[kThreads];
  __shared__ int64_t best_index[kThreads];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* z = logits + r * vocab;
    double value = -INFINITY;
    int64_t index = vocab;  // none yet
    for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) {
      const double zj = static_cast<double>(z[j]);
      if (index == vocab || zj > value) {
        value = zj;
        index = j;
      }
    }
    __syncthreads();  // the previous row's reduction may still read the arrays
    best_value[threadIdx.x] = value;
    best_index[threadIdx.x] = index;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
      if (threadIdx.x < half) {
        const double v = best_value[threadIdx.x + half];
        const int64_t i = best_index[threadIdx.x + half];
        const bool better =
            i != vocab && (best_index[threadIdx.x] == vocab || v > best_value[threadIdx.x] ||
                           (v == best_value[threadIdx.x] && i < best_index[threadIdx.x]));
        if (better) {
          best_value[threadIdx.x] = v;
          best_index[threadIdx.x] = i;
        }
      }
      __syncthreads();
    }
    if (threadIdx.x == 0) out[r] = static_cast<int32_t>(best_index[0]);
  }
}

}  // namespace

// ---- kernel launchers --------------------------------------------------------------------
template <typename T>
void embedding_forward(const int32_t* tokens, int64_t count, const T* table, T* out,
                       int64_t channels, cudaStream_t stream) {
  embedding_forward_kernel<T>
      <<<blocks_for(count * channels), kThreads, 0, stream>>>(tokens, count, table, out, channels);
  LONGNET_CUDA_CHECK_LAUNCH("embedding_forward_kernel");
}

template <typename T>
void embedding_backward(const int32_t* group_ids, const int64_t* group_offsets,
                        const int64_t* positions, int64_t groups, const T* dout, T* dtable,
                        int64_t channels, cudaStream_t stream) {
  embedding_backward_kernel<T><<<blocks_for(groups, 1), kThreads, 0, stream>>>(
      group_ids, group_offsets, positions, groups, dout, dtable, channels);
  LONGNET_CUDA_CHECK_LAUNCH("embedding_backward_kernel");
}

template <typename T>
void cross_entropy(const T* logits, const int32_t* targets, int64_t rows, int64_t vocab,
                   double grad_scale, T* dlogits, double* losses, cudaStream_t stream) {
  cross_entropy_kernel<T><<<blocks_for(rows, 1), kThreads, 0, stream>>>(
      logits, targets, rows, vocab, grad_scale, dlogits, losses);
  LONGNET_CUDA_CHECK_LAUNCH("cross_entropy_kernel");
}

template <typename T>
void argmax_rows(const T* logits, int64_t rows, int64_t vocab, int32_t* out, cudaStream_t stream) {
  argmax_rows_kernel<T><<<blocks_for(rows, 1), kThreads, 0, stream>>>(logits, rows, vocab, out);
  LONGNET_CUDA_CHECK_LAUNCH("argmax_rows_kernel");
}

#define LONGNET_INSTANTIATE(T)                                                                    \
  template void embedding_forward<T>(const int32_t*, int64_t, const T*, T*, int64_t,              \
                                     cudaStream_t);                                               \
  template void embedding_backward<T>(const int32_t*, const int64_t*, const int64_t*, int64_t,    \
                                      const T*, T*, int64_t, cudaStream_t);                       \
  template void cross_entropy<T>(const T*, const int32_t*, int64_t, int64_t, double, T*, double*, \
                                 cudaStream_t);                                                   \
  template void argmax_rows<T>(const T*, int64_t, int64_t, int32_t*, cudaStream_t);
LONGNET_INSTANTIATE(float)
LONGNET_INSTANTIATE(double)
#undef LONGNET_INSTANTIATE

}  // namespace longnet::cuda_ops
