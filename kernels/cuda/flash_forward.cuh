// Tensor-core forward of one dilated-attention pattern (bf16 / fp16 inputs, fp32 math).
//
// Algorithm (FlashAttention-2). A block takes kBlockM consecutive query rows of one task
// (dilated rows of one (batch, head, segment): row t at q + base + t * query_row_stride,
// so dilation is strided addressing; nothing is gathered). It streams the task's key and
// value rows (row j at k + j * key row_stride) through shared memory in tiles of kBlockN,
// each warp owning 16 query rows:
//   S = Q K^T (mma.sync, fp32), x = S * scale * log2(e), masked -> -inf,
//   m' = max(m, rowmax x), p = 2^(x - m'), l = l 2^(m - m') + rowsum p,
//   O = O 2^(m - m') + P V (P rounded to the input type, as FlashAttention does).
// The score tile lives only in registers; nothing of size rows x keys reaches memory.
// Loads overlap math as in FlashAttention-2: V_j is fetched (cp.async) while S_j is
// computed, K_{j+1} while P_j V_j is.
// At the end the pattern's rows (o_p = O / l, lse_p = ln 2 (m + log2 l)) are merged into
// the running fp32 mixture: lse = logaddexp(lse, lse_p),
// o = e^(lse_old - lse) o + e^(lse_p - lse) o_p (see kernels/cpu/dilated_attention_tiles.inc).
//
// Masking. Key j is allowed for query row t when j < keys.count and, if causal,
// j <= queries.first_index + t (dilated indices of the segment). Query rows past
// queries.count and key rows past keys.count are zero-filled in shared memory (cp.async
// zero-fill), so padding holds zeros, never garbage, and is never written back.
//
// Invariant and trap. Tiles are walked from key 0 up, and key 0 is allowed for every real
// row (0 <= first_index + t), so after the first tile every real row has a finite max and
// l >= 1. A row whose keys are all masked so far keeps m = -inf; the exponent then uses 0
// in place of m, so p = 2^(-inf) = 0 exactly and no (-inf) - (-inf) = NaN appears. A task
// with no keys launches no tile and leaves its rows untouched.
//
// Races. Tasks never share query rows and blocks of a task take disjoint rows, so o and
// lse rows have one writer per launch; within a row, the four lanes of a quad read the
// old lse, then (after __syncwarp) one of them writes the new one.
//
// Extras (kExtras = true; extras_device.cuh). x += bias[i - j] log2(e) before masking;
// the online softmax (m, l, hence lse) sees the undropped weights, and P V gets P Z with
// the dropped elements zeroed; the factor 1 / (1 - p) of the kept ones is applied once,
// to the merge weight of the pattern's rows, instead of per element.
#pragma once

#include "kernels/cuda/extras_device.cuh"
#include "kernels/cuda/flash_params.hpp"
#include "kernels/cuda/flash_traits.cuh"

#include <cuda/std/limits>

namespace longnet::cuda_kernels {

// The task this block works on (grid y, z) and whether it exists: the grid is sized by
// the largest task, so blocks past a smaller task's end return at once.
__device__ __forceinline__ int64_t block_task_index() {
  return static_cast<int64_t>(blockIdx.z) * gridDim.y + blockIdx.y;
}

template <typename Traits, bool kCausal, bool kExtras>
__global__ void __launch_bounds__(Traits::kThreads) flash_forward_kernel(const FlashParams params) {
  using T = typename Traits::Element;
  constexpr int kD = Traits::kHeadDim;
  constexpr int kBM = Traits::kBlockM;
  constexpr int kBN = Traits::kBlockN;
  constexpr int kP = Traits::kPitch;
  constexpr float kNegInf = -cuda::std::numeric_limits<float>::infinity();

  const int64_t task_index = block_task_index();
  if (task_index >= params.num_tasks) return;
  const SegmentTask task = params.tasks[task_index];
  // Causal blocks further down a task see more keys: launch those first.
  const int block = kCausal ? static_cast<int>(gridDim.x - 1 - blockIdx.x) : blockIdx.x;
  const int64_t q0 = static_cast<int64_t>(block) * kBM;
  if (q0 >= task.queries.count) return;
  const int qn = static_cast<int>(min64(kBM, task.queries.count - q0));
  const int64_t q_index0 = task.queries.first_index + q0;  // dilated index of row q0
  const int64_t key_count = task.keys.count;
  const int64_t key_end = kCausal ? min64(key_count, q_index0 + qn) : key_count;
  if (key_end <= 0) return;  // no keys: this pattern adds nothing to these rows
  const int n_tiles = static_cast<int>((key_end + kBN - 1) / kBN);
  [[maybe_unused]] const float* bias = kExtras ? task.bias : nullptr;
  [[maybe_unused]] const bool dropout = kExtras && params.dropout_threshold != 0;

  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* sQ = reinterpret_cast<T*>(smem_raw);
  T* sK = sQ + kBM * kP;
  T* sV = sK + kBN * kP;

  const int tid = threadIdx.x;
  const int warp = tid / kWarpThreads;
  const int lane = tid % kWarpThreads;
  const int g = lane / 4;
  const int t = lane % 4;

  const int64_t q_stride = params.query_row_stride;
  const int64_t k_stride = task.keys.row_stride;
  const T* q_src = static_cast<const T*>(params.q) + task.queries.base + q0 * q_stride;
  const T* k_src = static_cast<const T*>(task.keys.k);
  const T* v_src = static_cast<const T*>(task.keys.v);

  load_tile_async<T, kBM, kD, kP, Traits::kThreads>(sQ, q_src, q_stride, qn, tid);
  load_tile_async<T, kBN, kD, kP, Traits::kThreads>(sK, k_src, k_stride,
                                                    static_cast<int>(min64(kBN, key_count)), tid);
  cp_async_commit();

  // Per thread: rows r0 = 16 warp + g and r0 + 8 of the block; index h in [0, 2).
  float row_max[2] = {kNegInf, kNegInf};
  float row_sum[2] = {0.0f, 0.0f};  // this thread's columns only; quad-summed at the end
  float acc_o[kD / 8][4];
#pragma unroll
  for (int n = 0; n < kD / 8; ++n) {
#pragma unroll
    for (int e = 0; e < 4; ++e) acc_o[n][e] = 0.0f;
  }

  // This lane's ldmatrix addresses (patterns in mma_primitives.cuh): A fragments of Q,
  // B = K^T fragments from rows of K, B fragments of V read transposed.
  const int a_row = lane % 8 + 8 * ((lane / 8) % 2), a_col = 8 * (lane / 16);
  const int bt_row = lane % 8 + 8 * (lane / 16), bt_col = 8 * ((lane / 8) % 2);
  const uint32_t q_a = smem_address(sQ + (warp * 16 + a_row) * kP + a_col);
  const uint32_t k_bt = smem_address(sK + bt_row * kP + bt_col);
  const uint32_t v_a = smem_address(sV + a_row * kP + a_col);

  for (int j = 0; j < n_tiles; ++j) {
    const int64_t k0 = static_cast<int64_t>(j) * kBN;
    const int kn = static_cast<int>(min64(kBN, key_count - k0));
    cp_async_wait_all();  // K_j (and Q) have landed
    __syncthreads();      // ... for every thread; and everyone is done with V_{j-1}
    load_tile_async<T, kBN, kD, kP, Traits::kThreads>(sV, v_src + k0 * k_stride, k_stride, kn, tid);
    cp_async_commit();

    // S = Q K_j^T for this warp's 16 rows: kBN / 8 n8 tiles.
    float s[kBN / 8][4];
#pragma unroll
    for (int n = 0; n < kBN / 8; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) s[n][e] = 0.0f;
    }
#pragma unroll
    for (int ks = 0; ks < kD / 16; ++ks) {
      uint32_t a[4];
      ldmatrix_x4(a, q_a + bytes_of<T>(ks * 16));
#pragma unroll
      for (int np = 0; np < kBN / 16; ++np) {
        uint32_t b[4];
        ldmatrix_x4(b, k_bt + bytes_of<T>(np * 16 * kP + ks * 16));
        Mma<T>::run(s[2 * np], a, b[0], b[1]);
        Mma<T>::run(s[2 * np + 1], a, b[2], b[3]);
      }
    }

    // Scale to base 2 and mask. Only tiles that reach past the keys or cross the causal
    // diagonal of this block's first row need the per-element test.
    const bool need_mask = k0 + kBN > key_count || (kCausal && k0 + kBN - 1 > q_index0);
#pragma unroll
    for (int n = 0; n < kBN / 8; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float x = s[n][e] * params.scale_log2;
        if constexpr (kExtras) {
          const int64_t key = k0 + n * 8 + 2 * t + (e & 1);
          const int row = warp * 16 + g + 8 * (e >> 1);
          if (bias != nullptr && row < qn && key < key_count) {
            x = fmaf(bias[q_index0 + row - key], kLog2e, x);
          }
        }
        if (need_mask) {
          const int64_t key = k0 + n * 8 + 2 * t + (e & 1);
          const int64_t query = q_index0 + warp * 16 + g + 8 * (e >> 1);
          if (key >= key_count || (kCausal && key > query)) x = kNegInf;
        }
        s[n][e] = x;
      }
    }

    // Online softmax for rows h = 0 (g) and h = 1 (g + 8).
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float tile_max = kNegInf;
#pragma unroll
      for (int n = 0; n < kBN / 8; ++n) {
        tile_max = fmaxf(tile_max, fmaxf(s[n][2 * h], s[n][2 * h + 1]));
      }
      tile_max = quad_max(tile_max);
      const float m_new = fmaxf(row_max[h], tile_max);
      const float m_use = m_new == kNegInf ? 0.0f : m_new;  // fully masked so far: p = 0
      const float alpha = exp2f(row_max[h] - m_use);        // 0 while row_max is -inf
      row_max[h] = m_new;
      float sum = 0.0f;
#pragma unroll
      for (int n = 0; n < kBN / 8; ++n) {
        s[n][2 * h] = exp2f(s[n][2 * h] - m_use);
        s[n][2 * h + 1] = exp2f(s[n][2 * h + 1] - m_use);
        sum += s[n][2 * h] + s[n][2 * h + 1];
      }
      row_sum[h] = row_sum[h] * alpha + sum;
#pragma unroll
      for (int n = 0; n < kD / 8; ++n) {
        acc_o[n][2 * h] *= alpha;
        acc_o[n][2 * h + 1] *= alpha;
      }
    }
    if constexpr (kExtras) {
      // Dropout after the row sums (lse is that of the undropped weights): element
      // s[n][e] is bit 4 n + e.
      if (dropout) {
        const uint64_t keep =
            dropout_keep_bits<kBN / 2>(task, params.dropout_threshold, [&](int x) {
              return DilatedPair{q_index0 + warp * 16 + g + 8 * ((x % 4) >> 1),
                                 k0 + (x / 4) * 8 + 2 * t + ((x % 4) & 1)};
            });
#pragma unroll
        for (int n = 0; n < kBN / 8; ++n) {
#pragma unroll
          for (int e = 0; e < 4; ++e) s[n][e] *= keep_factor(keep, 4 * n + e, 1.0f);
        }
      }
    }

    cp_async_wait_all();  // V_j has landed
    __syncthreads();      // ... for every thread; and everyone is done reading K_j
    if (j + 1 < n_tiles) {
      const int64_t k1 = k0 + kBN;
      load_tile_async<T, kBN, kD, kP, Traits::kThreads>(
          sK, k_src + k1 * k_stride, k_stride, static_cast<int>(min64(kBN, key_count - k1)), tid);
      cp_async_commit();
    }

    // O += P V_j: P's C fragments become A fragments, V_j is read transposed.
#pragma unroll
    for (int kk = 0; kk < kBN / 16; ++kk) {
      const uint32_t a[4] = {pack2<T>(s[2 * kk][0], s[2 * kk][1]),
                             pack2<T>(s[2 * kk][2], s[2 * kk][3]),
                             pack2<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                             pack2<T>(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
      for (int dp = 0; dp < kD / 16; ++dp) {
        uint32_t b[4];
        ldmatrix_x4_trans(b, v_a + bytes_of<T>(kk * 16 * kP + dp * 16));
        Mma<T>::run(acc_o[2 * dp], a, b[0], b[1]);
        Mma<T>::run(acc_o[2 * dp + 1], a, b[2], b[3]);
      }
    }
  }

  // Merge into the running mixture. Read the old lse of both rows (all four quad lanes),
  // then let lane t == 0 write the new one.
  float lse_old[2], lse_p[2], sum[2];
  bool real[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int r = warp * 16 + g + 8 * h;
    sum[h] = quad_sum(row_sum[h]);
    real[h] = r < qn && sum[h] > 0.0f;
    lse_p[h] = (row_max[h] + log2f(sum[h])) * kLn2;
    lse_old[h] =
        real[h] ? params.lse[task.queries.lse_base + (q0 + r) * params.lse_row_stride] : kNegInf;
  }
  __syncwarp();
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    if (!real[h]) continue;
    const int64_t row = q0 + warp * 16 + g + 8 * h;
    float w_old = 0.0f, w_p = 1.0f / sum[h], lse_new = lse_p[h];
    if (lse_old[h] != kNegInf) {
      const float hi = fmaxf(lse_old[h], lse_p[h]);
      lse_new = hi + log1pf(expf(-fabsf(lse_old[h] - lse_p[h])));
      w_old = expf(lse_old[h] - lse_new);
      w_p = expf(lse_p[h] - lse_new) / sum[h];
    }
    if constexpr (kExtras) w_p *= params.dropout_scale;  // the kept weights' 1 / (1 - p)
    if (t == 0) params.lse[task.queries.lse_base + row * params.lse_row_stride] = lse_new;
    float* o_row = params.o + task.queries.base + row * q_stride;
#pragma unroll
    for (int n = 0; n < kD / 8; ++n) {
      float2* out = reinterpret_cast<float2*>(o_row + n * 8 + 2 * t);
      // w_old == 0 (first pattern of this row): o is not read, so no stale value can leak.
      const float2 old = w_old != 0.0f ? *out : make_float2(0.0f, 0.0f);
      *out = make_float2(old.x * w_old + acc_o[n][2 * h] * w_p,
                         old.y * w_old + acc_o[n][2 * h + 1] * w_p);
    }
  }
}

}  // namespace longnet::cuda_kernels
