// CUDA-core (SIMT) forward of one dilated-attention pattern, for float32 inputs.
//
// Same algorithm, masking and merge as the tensor-core forward (flash_forward.cuh, which
// documents them): a block takes kBlockM query rows of one task, streams the task's
// dilated key/value rows through shared memory kBlockN at a time with an online softmax
// in base 2, and merges the pattern into the running fp32 (o, lse). Only the arithmetic
// differs: fp32 FMAs on CUDA cores (why not TF32: flash_traits.cuh), in three phases per
// key tile with the 16 x 16 thread grid of SimtTraits:
//   1. S = Q K^T: thread (tx, ty) computes S[ty + 16 i][tx + 16 j] (q pre-scaled by
//      scale log2(e)); masked entries -inf; written to shared memory.
//   2. softmax: 4 threads per row (fixed for the whole block, so m and l stay in their
//      registers): new max, alpha = 2^(m - m'), P = 2^(S - m') in place, partial sums.
//   3. O = alpha O + P V: thread (tx, ty) owns O[ty + 16 i][tx + 16 j] in registers.
// The score tile lives in shared memory only; nothing of size rows x keys reaches global
// memory. Padding rows of Q, K, V tiles are zeros; masked scores give P = 0 exactly.
// Extras (kExtras = true) as in flash_forward.cuh: the bias joins S in phase 1 (real rows
// and keys only), dropout zeroes P in phase 2 after the row sums, and the kept weights'
// 1 / (1 - p) goes into the merge weight.
#pragma once

#include "kernels/cuda/flash_forward.cuh"

namespace longnet::cuda_kernels {

// Rows [0, kRows) of a strided fp32 tile into shared memory (pitch kPitch), times `mul`;
// rows >= valid_rows become zeros. Consecutive threads read consecutive columns.
template <int kRows, int kCols, int kPitch, int kThreads>
__device__ __forceinline__ void load_rows_simt(float* dst, const float* src, int64_t row_stride,
                                               int valid_rows, float mul, int tid) {
  static_assert((kRows * kCols) % kThreads == 0, "every thread copies the same count");
#pragma unroll 4
  for (int i = tid; i < kRows * kCols; i += kThreads) {
    const int r = i / kCols, c = i % kCols;
    dst[r * kPitch + c] = r < valid_rows ? src[r * row_stride + c] * mul : 0.0f;
  }
}

template <int kHeadDim, bool kCausal, bool kExtras>
__global__ void __launch_bounds__(SimtTraits<kHeadDim>::kThreads)
    simt_forward_kernel(const FlashParams params) {
  using Tr = SimtTraits<kHeadDim>;
  constexpr int kD = kHeadDim;
  constexpr int kBM = Tr::kBlockM;
  constexpr int kBN = Tr::kBlockN;
  constexpr int kQP = Tr::kOddPitch;
  constexpr int kSP = kBN + 1;
  constexpr int kS = Tr::kSide;
  constexpr float kNegInf = -cuda::std::numeric_limits<float>::infinity();

  const int64_t task_index = block_task_index();
  if (task_index >= params.num_tasks) return;
  const SegmentTask task = params.tasks[task_index];
  const int block = kCausal ? static_cast<int>(gridDim.x - 1 - blockIdx.x) : blockIdx.x;
  const int64_t q0 = static_cast<int64_t>(block) * kBM;
  if (q0 >= task.queries.count) return;
  const int qn = static_cast<int>(min64(kBM, task.queries.count - q0));
  const int64_t q_index0 = task.queries.first_index + q0;
  const int64_t key_count = task.keys.count;
  const int64_t key_end = kCausal ? min64(key_count, q_index0 + qn) : key_count;
  if (key_end <= 0) return;
  const int n_tiles = static_cast<int>((key_end + kBN - 1) / kBN);
  [[maybe_unused]] const float* bias = kExtras ? task.bias : nullptr;
  [[maybe_unused]] const bool dropout = kExtras && params.dropout_threshold != 0;

  extern __shared__ __align__(16) unsigned char smem_raw[];
  float* sQ = reinterpret_cast<float*>(smem_raw);
  float* sK = sQ + kBM * kQP;
  float* sV = sK + kBN * kQP;  // pitch kD: read along rows
  float* sS = sV + kBN * kD;
  float* sAlpha = sS + kBM * kSP;
  float* sWold = sAlpha + kBM;
  float* sWp = sWold + kBM;

  const int tid = threadIdx.x;
  const int tx = tid % kS, ty = tid / kS;
  const int srow = tid / 4, spart = tid % 4;  // softmax role: row srow, columns spart + 4c
  const int64_t q_stride = params.query_row_stride;
  const int64_t k_stride = task.keys.row_stride;
  const float* k_src = static_cast<const float*>(task.keys.k);
  const float* v_src = static_cast<const float*>(task.keys.v);

  load_rows_simt<kBM, kD, kQP, Tr::kThreads>(
      sQ, static_cast<const float*>(params.q) + task.queries.base + q0 * q_stride, q_stride, qn,
      params.scale_log2, tid);

  float row_max = kNegInf, row_sum = 0.0f;  // of row srow; row_sum: this thread's columns
  float acc[kBM / kS][kD / kS];
#pragma unroll
  for (int i = 0; i < kBM / kS; ++i) {
#pragma unroll
    for (int j = 0; j < kD / kS; ++j) acc[i][j] = 0.0f;
  }

  for (int tile = 0; tile < n_tiles; ++tile) {
    const int64_t k0 = static_cast<int64_t>(tile) * kBN;
    const int kn = static_cast<int>(min64(kBN, key_count - k0));
    __syncthreads();  // everyone is done with the previous K, V and S (and Q is stored)
    load_rows_simt<kBN, kD, kQP, Tr::kThreads>(sK, k_src + k0 * k_stride, k_stride, kn, 1.0f, tid);
    load_rows_simt<kBN, kD, kD, Tr::kThreads>(sV, v_src + k0 * k_stride, k_stride, kn, 1.0f, tid);
    __syncthreads();

    // 1. S = Q K^T, masked.
    float s[kBM / kS][kBN / kS];
#pragma unroll
    for (int i = 0; i < kBM / kS; ++i) {
#pragma unroll
      for (int j = 0; j < kBN / kS; ++j) s[i][j] = 0.0f;
    }
#pragma unroll 4
    for (int d = 0; d < kD; ++d) {
      float qv[kBM / kS], kv[kBN / kS];
#pragma unroll
      for (int i = 0; i < kBM / kS; ++i) qv[i] = sQ[(ty + kS * i) * kQP + d];
#pragma unroll
      for (int j = 0; j < kBN / kS; ++j) kv[j] = sK[(tx + kS * j) * kQP + d];
#pragma unroll
      for (int i = 0; i < kBM / kS; ++i) {
#pragma unroll
        for (int j = 0; j < kBN / kS; ++j) s[i][j] = fmaf(qv[i], kv[j], s[i][j]);
      }
    }
    const bool need_mask = k0 + kBN > key_count || (kCausal && k0 + kBN - 1 > q_index0);
#pragma unroll
    for (int i = 0; i < kBM / kS; ++i) {
#pragma unroll
      for (int j = 0; j < kBN / kS; ++j) {
        const int64_t key = k0 + tx + kS * j;
        const int64_t query = q_index0 + ty + kS * i;
        const bool masked = need_mask && (key >= key_count || (kCausal && key > query));
        if constexpr (kExtras) {
          if (bias != nullptr && ty + kS * i < qn && key < key_count) {
            s[i][j] = fmaf(bias[query - key], kLog2e, s[i][j]);
          }
        }
        sS[(ty + kS * i) * kSP + tx + kS * j] = masked ? kNegInf : s[i][j];
      }
    }
    __syncthreads();

    // 2. Online softmax of row srow (its 4 threads are 4 consecutive lanes of one warp).
    {
      float* row = sS + srow * kSP;
      float tile_max = kNegInf;
#pragma unroll
      for (int c = spart; c < kBN; c += 4) tile_max = fmaxf(tile_max, row[c]);
      tile_max = quad_max(tile_max);
      const float m_new = fmaxf(row_max, tile_max);
      const float m_use = m_new == kNegInf ? 0.0f : m_new;
      const float alpha = exp2f(row_max - m_use);
      row_max = m_new;
      float sum = 0.0f;
#pragma unroll
      for (int c = spart; c < kBN; c += 4) {
        const float p = exp2f(row[c] - m_use);
        row[c] = p;
        sum += p;
      }
      row_sum = row_sum * alpha + sum;
      if (spart == 0) sAlpha[srow] = alpha;
      if constexpr (kExtras) {
        if (dropout) {  // after the sums: lse is that of the undropped weights
#pragma unroll 1
          for (int c = spart; c < kBN; c += 4) {
            if (!pair_kept(task, params.dropout_threshold, q_index0 + srow, k0 + c)) row[c] = 0.0f;
          }
        }
      }
    }
    __syncthreads();

    // 3. O = alpha O + P V.
#pragma unroll
    for (int i = 0; i < kBM / kS; ++i) {
      const float alpha = sAlpha[ty + kS * i];
#pragma unroll
      for (int j = 0; j < kD / kS; ++j) acc[i][j] *= alpha;
    }
#pragma unroll 4
    for (int kk = 0; kk < kBN; ++kk) {
      float pv[kBM / kS], vv[kD / kS];
#pragma unroll
      for (int i = 0; i < kBM / kS; ++i) pv[i] = sS[(ty + kS * i) * kSP + kk];
#pragma unroll
      for (int j = 0; j < kD / kS; ++j) vv[j] = sV[kk * kD + tx + kS * j];
#pragma unroll
      for (int i = 0; i < kBM / kS; ++i) {
#pragma unroll
        for (int j = 0; j < kD / kS; ++j) acc[i][j] = fmaf(pv[i], vv[j], acc[i][j]);
      }
    }
  }

  // Merge weights per row, computed by the row's softmax thread spart == 0, which alone
  // reads and writes that row's lse. w_old == 0 means "do not read o" (first pattern).
  const float sum = quad_sum(row_sum);
  if (spart == 0) {
    float w_old = 1.0f, w_p = 0.0f;  // rows that get nothing (padding): o unchanged
    if (srow < qn && sum > 0.0f) {
      float* lse = params.lse + task.queries.lse_base + (q0 + srow) * params.lse_row_stride;
      const float lse_p = (row_max + log2f(sum)) * kLn2;
      const float lse_old = *lse;
      float lse_new = lse_p;
      w_old = 0.0f;
      w_p = 1.0f / sum;
      if (lse_old != kNegInf) {
        lse_new = fmaxf(lse_old, lse_p) + log1pf(expf(-fabsf(lse_old - lse_p)));
        w_old = expf(lse_old - lse_new);
        w_p = expf(lse_p - lse_new) / sum;
      }
      if constexpr (kExtras) w_p *= params.dropout_scale;  // the kept weights' 1 / (1 - p)
      *lse = lse_new;
    }
    sWold[srow] = w_old;
    sWp[srow] = w_p;
  }
  __syncthreads();
#pragma unroll
  for (int i = 0; i < kBM / kS; ++i) {
    const int r = ty + kS * i;
    if (r >= qn) continue;
    const float w_old = sWold[r], w_p = sWp[r];
    float* o_row = params.o + task.queries.base + (q0 + r) * q_stride;
#pragma unroll
    for (int j = 0; j < kD / kS; ++j) {
      float* out = o_row + tx + kS * j;
      const float old = w_old != 0.0f ? *out * w_old : 0.0f;
      *out = old + acc[i][j] * w_p;
    }
  }
}

}  // namespace longnet::cuda_kernels
