// CUDA-core (SIMT) backward of one dilated-attention pattern, for float32 inputs.
//
// Same algorithm, masking and race-freedom argument as the tensor-core backward
// (flash_backward.cuh, which documents them), with fp32 FMAs on CUDA cores and the
// 16 x 16 thread grid of SimtTraits. Per step of kBackwardBlockM queries against kBlockN
// keys, shared-memory tiles only (nothing of size rows x keys reaches global memory):
//   A. S = Q K^T and dP = dO V^T, thread (tx, ty) computing element
//      (query ty + 16 i, key tx + 16 j); P = 2^(S scale log2(e) - lse log2(e)), exactly 0
//      for masked and padding pairs; dS = P (dP - delta); P and dS to shared memory.
//   B. (dK/dV kernel) dV += P^T dO, dK += dS^T Q, thread (tx, ty) owning
//      (key ty + 16 i, column tx + 16 j) of each in registers.
//   C. dQ += dS K, thread (tx, ty) owning (query ty + 16 i, column tx + 16 j): added to
//      dq with atomicAdd by the dK/dV kernel (kAtomicDq), or accumulated in registers
//      over every key tile by the deterministic dQ kernel and written once.
// Extras (kExtras = true) as in flash_backward.cuh: phase A adds the bias to the exponent
// and stores P Z (for dV) and dS = P (Z dP - delta); the dK/dV kernel then sums the
// step's dS along each diagonal of the tile (one dilated distance; a thread per
// diagonal, reading the shared dS tile in a fixed order) and adds each sum to task.dbias
// with atomicAdd.
#pragma once

#include "kernels/cuda/simt_forward.cuh"

namespace longnet::cuda_kernels {

// Shared-memory tiles of one backward block (both kernels use the same layout).
template <int kHeadDim>
struct SimtBackwardTiles {
  using Tr = SimtTraits<kHeadDim>;
  static constexpr int kQP = Tr::kOddPitch;
  static constexpr int kSP = Tr::kBlockN + 1;
  float* k;      // [kBlockN][kQP]
  float* v;      // [kBlockN][kQP]
  float* q;      // [kBackwardBlockM][kQP]
  float* dout;   // [kBackwardBlockM][kQP]
  float* p;      // [kBackwardBlockM][kSP]
  float* ds;     // [kBackwardBlockM][kSP]
  float* lse2;   // [kBackwardBlockM], saved lse * log2(e); 0 on padding rows
  float* delta;  // [kBackwardBlockM]; 0 on padding rows

  __device__ explicit SimtBackwardTiles(unsigned char* raw) {
    k = reinterpret_cast<float*>(raw);
    v = k + Tr::kBlockN * kQP;
    q = v + Tr::kBlockN * kQP;
    dout = q + Tr::kBackwardBlockM * kQP;
    p = dout + Tr::kBackwardBlockM * kQP;
    ds = p + Tr::kBackwardBlockM * kSP;
    lse2 = ds + Tr::kBackwardBlockM * kSP;
    delta = lse2 + Tr::kBackwardBlockM;
  }
};

// Q, dO, lse, delta of query rows [q0, q0 + qn) of a task into the tiles.
template <int kHeadDim>
__device__ __forceinline__ void simt_load_queries(const SimtBackwardTiles<kHeadDim>& tiles,
                                                  const FlashParams& params,
                                                  const SegmentTask& task, int64_t q0, int qn,
                                                  int tid) {
  using Tr = SimtTraits<kHeadDim>;
  constexpr int kBM = Tr::kBackwardBlockM;
  const int64_t q_stride = params.query_row_stride;
  const int64_t at0 = task.queries.base + q0 * q_stride;
  load_rows_simt<kBM, kHeadDim, Tr::kOddPitch, Tr::kThreads>(
      tiles.q, static_cast<const float*>(params.q) + at0, q_stride, qn, 1.0f, tid);
  load_rows_simt<kBM, kHeadDim, Tr::kOddPitch, Tr::kThreads>(
      tiles.dout, static_cast<const float*>(params.dout) + at0, q_stride, qn, 1.0f, tid);
  if (tid < kBM) {
    const int64_t at = task.queries.lse_base + (q0 + tid) * params.lse_row_stride;
    tiles.lse2[tid] = tid < qn ? params.saved_lse[at] * kLog2e : 0.0f;
    tiles.delta[tid] = tid < qn ? params.delta[at] : 0.0f;
  }
}

// Phase A: P and dS of query rows [q0, q0 + qn) (dilated index q_index0 + row) against
// key rows [k0, k0 + kBlockN) into tiles.p and tiles.ds (with kExtras: P Z and
// P (Z dP - delta), the bias and dropout of `task`). The caller synchronises.
template <int kHeadDim, bool kCausal, bool kExtras>
__device__ __forceinline__ void simt_probabilities(const SimtBackwardTiles<kHeadDim>& tiles,
                                                   const FlashParams& params,
                                                   const SegmentTask& task, int64_t k0,
                                                   int64_t key_count, int64_t q_index0, int qn,
                                                   int tx, int ty) {
  using Tr = SimtTraits<kHeadDim>;
  constexpr int kS = Tr::kSide;
  constexpr int kBM = Tr::kBackwardBlockM;
  constexpr int kBN = Tr::kBlockN;
  constexpr int kQP = Tr::kOddPitch;
  constexpr int kSP = kBN + 1;
  float s[kBM / kS][kBN / kS], dp[kBM / kS][kBN / kS];
#pragma unroll
  for (int i = 0; i < kBM / kS; ++i) {
#pragma unroll
    for (int j = 0; j < kBN / kS; ++j) s[i][j] = dp[i][j] = 0.0f;
  }
#pragma unroll 4
  for (int d = 0; d < kHeadDim; ++d) {
    float qv[kBM / kS], dov[kBM / kS], kv[kBN / kS], vv[kBN / kS];
#pragma unroll
    for (int i = 0; i < kBM / kS; ++i) {
      qv[i] = tiles.q[(ty + kS * i) * kQP + d];
      dov[i] = tiles.dout[(ty + kS * i) * kQP + d];
    }
#pragma unroll
    for (int j = 0; j < kBN / kS; ++j) {
      kv[j] = tiles.k[(tx + kS * j) * kQP + d];
      vv[j] = tiles.v[(tx + kS * j) * kQP + d];
    }
#pragma unroll
    for (int i = 0; i < kBM / kS; ++i) {
#pragma unroll
      for (int j = 0; j < kBN / kS; ++j) {
        s[i][j] = fmaf(qv[i], kv[j], s[i][j]);
        dp[i][j] = fmaf(dov[i], vv[j], dp[i][j]);
      }
    }
  }
#pragma unroll
  for (int i = 0; i < kBM / kS; ++i) {
    const int r = ty + kS * i;
#pragma unroll
    for (int j = 0; j < kBN / kS; ++j) {
      const int c = tx + kS * j;
      const int64_t key = k0 + c;
      const bool allowed = key < key_count && r < qn && (!kCausal || key <= q_index0 + r);
      if constexpr (kExtras) {
        float x = s[i][j] * params.scale_log2;
        if (task.bias != nullptr && allowed) x = fmaf(task.bias[q_index0 + r - key], kLog2e, x);
        const float p = allowed ? exp2f(x - tiles.lse2[r]) : 0.0f;
        float z = 1.0f;
        if (params.dropout_threshold != 0) {
          z = pair_kept(task, params.dropout_threshold, q_index0 + r, key) ? params.dropout_scale
                                                                           : 0.0f;
        }
        tiles.p[r * kSP + c] = p * z;
        tiles.ds[r * kSP + c] = p * (z * dp[i][j] - tiles.delta[r]);
      } else {
        const float p = allowed ? exp2f(s[i][j] * params.scale_log2 - tiles.lse2[r]) : 0.0f;
        tiles.p[r * kSP + c] = p;
        tiles.ds[r * kSP + c] = p * (dp[i][j] - tiles.delta[r]);
      }
    }
  }
}

// Phase C: acc[i][j] += sum over the tile's keys of dS[ty + 16 i][key] K[key][tx + 16 j].
template <int kHeadDim>
__device__ __forceinline__ void simt_accumulate_dq(
    const SimtBackwardTiles<kHeadDim>& tiles,
    float (&acc)[SimtTraits<kHeadDim>::kBackwardBlockM / 16][kHeadDim / 16], int tx, int ty) {
  using Tr = SimtTraits<kHeadDim>;
  constexpr int kS = Tr::kSide;
  constexpr int kBM = Tr::kBackwardBlockM;
  constexpr int kSP = Tr::kBlockN + 1;
  static_assert(kS == 16, "the accumulator shape above assumes a 16 x 16 thread grid");
#pragma unroll 4
  for (int key = 0; key < Tr::kBlockN; ++key) {
    float dsv[kBM / kS], kv[kHeadDim / kS];
#pragma unroll
    for (int i = 0; i < kBM / kS; ++i) dsv[i] = tiles.ds[(ty + kS * i) * kSP + key];
#pragma unroll
    for (int j = 0; j < kHeadDim / kS; ++j) kv[j] = tiles.k[key * Tr::kOddPitch + tx + kS * j];
#pragma unroll
    for (int i = 0; i < kBM / kS; ++i) {
#pragma unroll
      for (int j = 0; j < kHeadDim / kS; ++j) acc[i][j] = fmaf(dsv[i], kv[j], acc[i][j]);
    }
  }
}

template <int kHeadDim, bool kCausal, bool kAtomicDq, bool kExtras>
__global__ void __launch_bounds__(SimtTraits<kHeadDim>::kThreads)
    simt_backward_dkdv_kernel(const FlashParams params) {
  using Tr = SimtTraits<kHeadDim>;
  constexpr int kD = kHeadDim;
  constexpr int kS = Tr::kSide;
  constexpr int kBM = Tr::kBackwardBlockM;
  constexpr int kBN = Tr::kBlockN;
  constexpr int kQP = Tr::kOddPitch;
  constexpr int kSP = kBN + 1;

  const int64_t task_index = block_task_index();
  if (task_index >= params.num_tasks) return;
  const SegmentTask task = params.tasks[task_index];
  const int64_t k0 = static_cast<int64_t>(blockIdx.x) * kBN;
  const int64_t key_count = task.keys.count;
  if (k0 >= key_count) return;
  const int kn = static_cast<int>(min64(kBN, key_count - k0));
  const int64_t q_count = task.queries.count;
  const int64_t first_query = kCausal ? max64(0, k0 - task.queries.first_index) : 0;
  if (first_query >= q_count) return;  // no query of this task sees these keys

  extern __shared__ __align__(16) unsigned char smem_raw[];
  const SimtBackwardTiles<kD> tiles(smem_raw);
  const int tid = threadIdx.x;
  const int tx = tid % kS, ty = tid / kS;
  const int64_t k_stride = task.keys.row_stride;
  load_rows_simt<kBN, kD, kQP, Tr::kThreads>(
      tiles.k, static_cast<const float*>(task.keys.k) + k0 * k_stride, k_stride, kn, 1.0f, tid);
  load_rows_simt<kBN, kD, kQP, Tr::kThreads>(
      tiles.v, static_cast<const float*>(task.keys.v) + k0 * k_stride, k_stride, kn, 1.0f, tid);

  float acc_dk[kBN / kS][kD / kS], acc_dv[kBN / kS][kD / kS];
#pragma unroll
  for (int i = 0; i < kBN / kS; ++i) {
#pragma unroll
    for (int j = 0; j < kD / kS; ++j) acc_dk[i][j] = acc_dv[i][j] = 0.0f;
  }

  for (int64_t q0 = first_query / kBM * kBM; q0 < q_count; q0 += kBM) {
    const int qn = static_cast<int>(min64(kBM, q_count - q0));
    __syncthreads();  // everyone is done with the previous step's tiles
    simt_load_queries<kD>(tiles, params, task, q0, qn, tid);
    __syncthreads();
    simt_probabilities<kD, kCausal, kExtras>(tiles, params, task, k0, key_count,
                                             task.queries.first_index + q0, qn, tx, ty);
    __syncthreads();

    if constexpr (kExtras) {
      // dbias: thread e < kBM + kBN - 1 sums diagonal e (local query - local key + kBN - 1,
      // dilated distance q_index0 - k0 - (kBN - 1) + e). Pairs that are not allowed hold
      // dS = 0 exactly, so a diagonal without an allowed pair sums to 0 and is skipped:
      // no address outside the bias vector's range is touched. Only reads of tiles.ds,
      // which the next step rewrites after two barriers.
      if (task.dbias != nullptr && tid < kBM + kBN - 1) {
        float sum = 0.0f;
        for (int r = 0; r < kBM; ++r) {
          const int c = r + kBN - 1 - tid;
          if (c >= 0 && c < kBN) sum += tiles.ds[r * kSP + c];
        }
        if (sum != 0.0f) {
          atomicAdd(task.dbias + (task.queries.first_index + q0 - k0 - (kBN - 1) + tid), sum);
        }
      }
    }

    // B. dV += P^T dO, dK += dS^T Q.
#pragma unroll 4
    for (int r = 0; r < kBM; ++r) {
      float pv[kBN / kS], dsv[kBN / kS], dov[kD / kS], qv[kD / kS];
#pragma unroll
      for (int i = 0; i < kBN / kS; ++i) {
        pv[i] = tiles.p[r * kSP + ty + kS * i];
        dsv[i] = tiles.ds[r * kSP + ty + kS * i];
      }
#pragma unroll
      for (int j = 0; j < kD / kS; ++j) {
        dov[j] = tiles.dout[r * kQP + tx + kS * j];
        qv[j] = tiles.q[r * kQP + tx + kS * j];
      }
#pragma unroll
      for (int i = 0; i < kBN / kS; ++i) {
#pragma unroll
        for (int j = 0; j < kD / kS; ++j) {
          acc_dv[i][j] = fmaf(pv[i], dov[j], acc_dv[i][j]);
          acc_dk[i][j] = fmaf(dsv[i], qv[j], acc_dk[i][j]);
        }
      }
    }

    if constexpr (kAtomicDq) {
      // C. dq += scale dS K (phases B and C only read shared memory: no barrier between).
      float acc_dq[kBM / kS][kD / kS];
#pragma unroll
      for (int i = 0; i < kBM / kS; ++i) {
#pragma unroll
        for (int j = 0; j < kD / kS; ++j) acc_dq[i][j] = 0.0f;
      }
      simt_accumulate_dq<kD>(tiles, acc_dq, tx, ty);
#pragma unroll
      for (int i = 0; i < kBM / kS; ++i) {
        const int r = ty + kS * i;
        if (r >= qn) continue;
        float* dq_row = params.dq + task.queries.base + (q0 + r) * params.query_row_stride;
#pragma unroll
        for (int j = 0; j < kD / kS; ++j) {
          atomicAdd(dq_row + tx + kS * j, params.scale * acc_dq[i][j]);
        }
      }
    }
  }

  // Key rows of different blocks and tasks are disjoint: plain read-modify-write.
#pragma unroll
  for (int i = 0; i < kBN / kS; ++i) {
    const int r = ty + kS * i;
    if (r >= kn) continue;
    float* dk_row = task.keys.dk + (k0 + r) * k_stride;
    float* dv_row = task.keys.dv + (k0 + r) * k_stride;
#pragma unroll
    for (int j = 0; j < kD / kS; ++j) {
      dk_row[tx + kS * j] += params.scale * acc_dk[i][j];
      dv_row[tx + kS * j] += acc_dv[i][j];
    }
  }
}

template <int kHeadDim, bool kCausal, bool kExtras>
__global__ void __launch_bounds__(SimtTraits<kHeadDim>::kThreads)
    simt_backward_dq_kernel(const FlashParams params) {
  using Tr = SimtTraits<kHeadDim>;
  constexpr int kD = kHeadDim;
  constexpr int kS = Tr::kSide;
  constexpr int kBM = Tr::kBackwardBlockM;
  constexpr int kBN = Tr::kBlockN;
  constexpr int kQP = Tr::kOddPitch;

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

  extern __shared__ __align__(16) unsigned char smem_raw[];
  const SimtBackwardTiles<kD> tiles(smem_raw);
  const int tid = threadIdx.x;
  const int tx = tid % kS, ty = tid / kS;
  const int64_t k_stride = task.keys.row_stride;
  simt_load_queries<kD>(tiles, params, task, q0, qn, tid);

  float acc_dq[kBM / kS][kD / kS];
#pragma unroll
  for (int i = 0; i < kBM / kS; ++i) {
#pragma unroll
    for (int j = 0; j < kD / kS; ++j) acc_dq[i][j] = 0.0f;
  }
  for (int64_t k0 = 0; k0 < key_end; k0 += kBN) {
    const int kn = static_cast<int>(min64(kBN, key_count - k0));
    __syncthreads();  // everyone is done with the previous K, V, dS (and Q is stored)
    load_rows_simt<kBN, kD, kQP, Tr::kThreads>(
        tiles.k, static_cast<const float*>(task.keys.k) + k0 * k_stride, k_stride, kn, 1.0f, tid);
    load_rows_simt<kBN, kD, kQP, Tr::kThreads>(
        tiles.v, static_cast<const float*>(task.keys.v) + k0 * k_stride, k_stride, kn, 1.0f, tid);
    __syncthreads();
    simt_probabilities<kD, kCausal, kExtras>(tiles, params, task, k0, key_count, q_index0, qn, tx,
                                             ty);
    __syncthreads();
    simt_accumulate_dq<kD>(tiles, acc_dq, tx, ty);
  }

  // One writer per dq row, keys in a fixed order: bitwise reproducible.
#pragma unroll
  for (int i = 0; i < kBM / kS; ++i) {
    const int r = ty + kS * i;
    if (r >= qn) continue;
    float* dq_row = params.dq + task.queries.base + (q0 + r) * params.query_row_stride;
#pragma unroll
    for (int j = 0; j < kD / kS; ++j) dq_row[tx + kS * j] += params.scale * acc_dq[i][j];
  }
}

}  // namespace longnet::cuda_kernels
