// Tensor-core backward of one dilated-attention pattern (bf16 / fp16 inputs, fp32 math).
//
// Algorithm (FlashAttention-2). The forward's final mixture lse is saved, so a score's
// probability is recomputed as P = 2^(S scale log2(e) - lse log2(e)) with no row
// statistics to carry: the gradient then flows through the mixture weights exactly (see
// kernels/cpu/dilated_attention_tiles.inc). With delta = rowsum(dO * o) (a separate
// kernel), dP = dO V^T and dS = P (dP - delta):
//   dV += P^T dO,   dK += scale dS^T Q,   dQ += scale dS K.
//
// flash_backward_dkdv_kernel: a block owns kBlockN key rows of one task (16 per warp, so
// each warp holds S^T, dP^T, dS^T for its keys in registers) and walks every query block
// that can see them (from the first query at or after its first key when causal),
// double-buffering Q, dO, lse and delta. dK and dV accumulate in registers and are added
// to the task's fp32 dk, dv once at the end: key blocks and tasks own disjoint key rows,
// so that read-modify-write has no race. With kAtomicDq, the block also writes dS^T (in
// the input type) to shared memory and adds scale dS K to dq with atomicAdd: several key
// blocks add to the same dq rows, in an order that varies from run to run.
//
// flash_backward_dq_kernel (the deterministic mode): a block owns kBlockM query rows and
// walks the key tiles in order, recomputing S, P, dP and dS, accumulating dQ in registers
// and adding it to dq once. One writer per dq row and a fixed order: bitwise
// reproducible. It costs a second recomputation of S and dP (~40% more backward math).
//
// Masking and padding as in the forward (flash_forward.cuh): padding rows of every tile
// are zero-filled, and every masked or padding (query, key) pair gets P = 0 exactly, so
// dS = 0 there and nothing leaks into the gradients.
//
// Extras (kExtras = true; extras_device.cuh). P = 2^(S scale log2(e) + bias log2(e) -
// lse log2(e)) with the forward's bias, and with the dropout factors Z (1 / (1 - p) or 0,
// the forward's mask regenerated): dV += (P Z)^T dO, dS = P (Z dP - delta). Both kernels
// recompute dS the same way; only the dK/dV kernel (which runs in both modes) adds it to
// the bias gradient: each step sums its allowed pairs' dS per diagonal (one dilated
// distance) in shared memory, then one thread per diagonal adds the sum to task.dbias
// with atomicAdd (tasks of other batches and segments share the vector).
#pragma once

#include "kernels/cuda/flash_forward.cuh"

namespace longnet::cuda_kernels {

template <typename Traits, bool kCausal, bool kAtomicDq, bool kExtras>
__global__ void __launch_bounds__(Traits::kThreads)
    flash_backward_dkdv_kernel(const FlashParams params) {
  using T = typename Traits::Element;
  constexpr int kD = Traits::kHeadDim;
  constexpr int kBM = Traits::kBlockM;  // queries per step
  constexpr int kBN = Traits::kBlockN;  // keys of this block
  constexpr int kP = Traits::kPitch;
  constexpr int kDsP = Traits::kDsPitch;

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
  const int64_t i_begin = first_query / kBM;
  const int64_t i_end = (q_count + kBM - 1) / kBM;

  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* sK = reinterpret_cast<T*>(smem_raw);
  T* sV = sK + kBN * kP;
  T* sQ = sV + kBN * kP;                                     // two stages of kBM rows
  T* sdO = sQ + 2 * kBM * kP;                                // two stages
  T* sdS = sdO + 2 * kBM * kP;                               // [key][query]
  float* sLse = reinterpret_cast<float*>(sdS + kBN * kDsP);  // two stages, times log2(e)
  float* sDelta = sLse + 2 * kBM;                            // two stages
  // kExtras with dbias: per-step diagonal sums of dS, diagonal (query - key + kBN - 1)
  // of the step's tile (space for them only in that instantiation's launch).
  [[maybe_unused]] float* sDiag = reinterpret_cast<float*>(smem_raw + Traits::kSmemBytes);
  [[maybe_unused]] const float* bias = kExtras ? task.bias : nullptr;
  [[maybe_unused]] float* dbias = kExtras ? task.dbias : nullptr;
  [[maybe_unused]] const bool dropout = kExtras && params.dropout_threshold != 0;

  const int tid = threadIdx.x;
  const int warp = tid / kWarpThreads;
  const int lane = tid % kWarpThreads;
  const int g = lane / 4;
  const int t = lane % 4;
  // This lane's ldmatrix addresses (patterns in mma_primitives.cuh); Q and dO ones are
  // for stage 0 (add stage_bytes). *_a: A fragments (or B read transposed) from rows;
  // *_bt: B = X^T fragments from rows of X.
  const int a_row = lane % 8 + 8 * ((lane / 8) % 2), a_col = 8 * (lane / 16);
  const int bt_row = lane % 8 + 8 * (lane / 16), bt_col = 8 * ((lane / 8) % 2);
  const uint32_t k_a_warp = smem_address(sK + (warp * 16 + a_row) * kP + a_col);
  const uint32_t v_a_warp = smem_address(sV + (warp * 16 + a_row) * kP + a_col);
  const uint32_t k_a = smem_address(sK + a_row * kP + a_col);
  const uint32_t q_bt = smem_address(sQ + bt_row * kP + bt_col);
  const uint32_t do_bt = smem_address(sdO + bt_row * kP + bt_col);
  const uint32_t q_a = smem_address(sQ + a_row * kP + a_col);
  const uint32_t do_a = smem_address(sdO + a_row * kP + a_col);
  const uint32_t ds_bt = smem_address(sdS + bt_row * kDsP + bt_col);

  const int64_t q_stride = params.query_row_stride;
  const int64_t k_stride = task.keys.row_stride;
  const T* q_src = static_cast<const T*>(params.q) + task.queries.base;
  const T* do_src = static_cast<const T*>(params.dout) + task.queries.base;

  // Query block i into stage `stage`: Q and dO by cp.async, lse and delta by plain loads
  // (visible to all after the next __syncthreads). Padding rows: zeros, lse 0, delta 0.
  auto load_query_block = [&](int64_t i, int stage) {
    const int64_t q0 = i * kBM;
    const int qn = static_cast<int>(min64(kBM, q_count - q0));
    load_tile_async<T, kBM, kD, kP, Traits::kThreads>(sQ + stage * kBM * kP, q_src + q0 * q_stride,
                                                      q_stride, qn, tid);
    load_tile_async<T, kBM, kD, kP, Traits::kThreads>(sdO + stage * kBM * kP,
                                                      do_src + q0 * q_stride, q_stride, qn, tid);
    if (tid < kBM) {
      const int64_t at = task.queries.lse_base + (q0 + tid) * params.lse_row_stride;
      sLse[stage * kBM + tid] = tid < qn ? params.saved_lse[at] * kLog2e : 0.0f;
      sDelta[stage * kBM + tid] = tid < qn ? params.delta[at] : 0.0f;
    }
  };

  load_tile_async<T, kBN, kD, kP, Traits::kThreads>(
      sK, static_cast<const T*>(task.keys.k) + k0 * k_stride, k_stride, kn, tid);
  load_tile_async<T, kBN, kD, kP, Traits::kThreads>(
      sV, static_cast<const T*>(task.keys.v) + k0 * k_stride, k_stride, kn, tid);
  load_query_block(i_begin, 0);
  cp_async_commit();
  if constexpr (kExtras) {
    // Zero before the first step's adds (the loop's first __syncthreads orders them).
    if (dbias != nullptr && tid < Traits::kDiagonals) sDiag[tid] = 0.0f;
  }

  // This warp's 16 keys x D: rows (keys) 16 warp + g and + 8.
  float acc_dk[kD / 8][4], acc_dv[kD / 8][4];
#pragma unroll
  for (int n = 0; n < kD / 8; ++n) {
#pragma unroll
    for (int e = 0; e < 4; ++e) acc_dk[n][e] = acc_dv[n][e] = 0.0f;
  }

  for (int64_t i = i_begin; i < i_end; ++i) {
    const int stage = static_cast<int>((i - i_begin) & 1);
    cp_async_wait_all();
    __syncthreads();  // stage ready for all; everyone is done with the other stage and sdS
    if (i + 1 < i_end) {
      load_query_block(i + 1, stage ^ 1);
      cp_async_commit();
    }
    const uint32_t stage_bytes = bytes_of<T>(stage * kBM * kP);
    const float* lse2 = sLse + stage * kBM;
    const float* delta = sDelta + stage * kBM;
    const int64_t q0 = i * kBM;
    const int qn = static_cast<int>(min64(kBM, q_count - q0));
    const int64_t q_index0 = task.queries.first_index + q0;

    // S^T = K Q^T and dP^T = V dO^T for this warp's keys: kBM / 8 n8 tiles of queries.
    float st[kBM / 8][4], dpt[kBM / 8][4];
#pragma unroll
    for (int n = 0; n < kBM / 8; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) st[n][e] = dpt[n][e] = 0.0f;
    }
#pragma unroll
    for (int ks = 0; ks < kD / 16; ++ks) {
      uint32_t ak[4], av[4];
      ldmatrix_x4(ak, k_a_warp + bytes_of<T>(ks * 16));
      ldmatrix_x4(av, v_a_warp + bytes_of<T>(ks * 16));
#pragma unroll
      for (int np = 0; np < kBM / 16; ++np) {
        uint32_t bq[4], bdo[4];
        ldmatrix_x4(bq, q_bt + stage_bytes + bytes_of<T>(np * 16 * kP + ks * 16));
        ldmatrix_x4(bdo, do_bt + stage_bytes + bytes_of<T>(np * 16 * kP + ks * 16));
        Mma<T>::run(st[2 * np], ak, bq[0], bq[1]);
        Mma<T>::run(st[2 * np + 1], ak, bq[2], bq[3]);
        Mma<T>::run(dpt[2 * np], av, bdo[0], bdo[1]);
        Mma<T>::run(dpt[2 * np + 1], av, bdo[2], bdo[3]);
      }
    }

    // P^T (masked and padding pairs exactly 0), then dS^T = P^T (dP^T - delta).
    const bool need_mask =
        k0 + kBN > key_count || q0 + kBM > q_count || (kCausal && k0 + kBN - 1 > q_index0);
    if constexpr (kExtras) {
      // st becomes P Z (for dV), dpt dS = P (Z dP - delta); element [n][e] is bit 4 n + e.
      uint64_t keep = ~uint64_t{0};
      float z_scale = 1.0f;
      if (dropout) {
        z_scale = params.dropout_scale;
        keep = dropout_keep_bits<kBM / 2>(task, params.dropout_threshold, [&](int x) {
          return DilatedPair{q_index0 + (x / 4) * 8 + 2 * t + ((x % 4) & 1),
                             k0 + warp * 16 + g + 8 * ((x % 4) >> 1)};
        });
      }
#pragma unroll
      for (int n = 0; n < kBM / 8; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int query = n * 8 + 2 * t + (e & 1);  // in the query block
          const int key_in_block = warp * 16 + g + 8 * (e >> 1);
          const int64_t key = k0 + key_in_block;
          const bool allowed = !need_mask || (key < key_count && query < qn &&
                                              (!kCausal || key <= q_index0 + query));
          float x = st[n][e] * params.scale_log2;
          if (bias != nullptr && allowed) x = fmaf(bias[q_index0 + query - key], kLog2e, x);
          const float p = allowed ? exp2f(x - lse2[query]) : 0.0f;
          const float z = keep_factor(keep, 4 * n + e, z_scale);
          const float ds = p * (z * dpt[n][e] - delta[query]);
          st[n][e] = p * z;
          dpt[n][e] = ds;
          if (dbias != nullptr && allowed) atomicAdd(sDiag + query - key_in_block + kBN - 1, ds);
        }
      }
      if (dbias != nullptr) {
        __syncthreads();  // every pair's dS is in sDiag
        if (tid < Traits::kDiagonals) {
          // Diagonal tid is the dilated distance q_index0 - k0 - (kBN - 1) + tid. A
          // diagonal with no allowed pair holds exactly 0 and is skipped, so no address
          // outside the bias vector's range is touched. Zeroed again for the next step
          // (whose adds come after the loop's next __syncthreads).
          const float sum = sDiag[tid];
          if (sum != 0.0f) {
            atomicAdd(dbias + (q_index0 - k0 - (kBN - 1) + tid), sum);
            sDiag[tid] = 0.0f;
          }
        }
      }
    } else {
#pragma unroll
      for (int n = 0; n < kBM / 8; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int query = n * 8 + 2 * t + (e & 1);  // in the query block
          const int64_t key = k0 + warp * 16 + g + 8 * (e >> 1);
          const bool allowed = !need_mask || (key < key_count && query < qn &&
                                              (!kCausal || key <= q_index0 + query));
          const float p = allowed ? exp2f(st[n][e] * params.scale_log2 - lse2[query]) : 0.0f;
          st[n][e] = p;
          dpt[n][e] = p * (dpt[n][e] - delta[query]);
        }
      }
    }

    // dV += P^T dO and dK += dS^T Q (k = queries; dO, Q read transposed).
#pragma unroll
    for (int kq = 0; kq < kBM / 16; ++kq) {
      const uint32_t ap[4] = {pack2<T>(st[2 * kq][0], st[2 * kq][1]),
                              pack2<T>(st[2 * kq][2], st[2 * kq][3]),
                              pack2<T>(st[2 * kq + 1][0], st[2 * kq + 1][1]),
                              pack2<T>(st[2 * kq + 1][2], st[2 * kq + 1][3])};
      const uint32_t ads[4] = {pack2<T>(dpt[2 * kq][0], dpt[2 * kq][1]),
                               pack2<T>(dpt[2 * kq][2], dpt[2 * kq][3]),
                               pack2<T>(dpt[2 * kq + 1][0], dpt[2 * kq + 1][1]),
                               pack2<T>(dpt[2 * kq + 1][2], dpt[2 * kq + 1][3])};
#pragma unroll
      for (int dp = 0; dp < kD / 16; ++dp) {
        uint32_t bdo[4], bq[4];
        ldmatrix_x4_trans(bdo, do_a + stage_bytes + bytes_of<T>(kq * 16 * kP + dp * 16));
        ldmatrix_x4_trans(bq, q_a + stage_bytes + bytes_of<T>(kq * 16 * kP + dp * 16));
        Mma<T>::run(acc_dv[2 * dp], ap, bdo[0], bdo[1]);
        Mma<T>::run(acc_dv[2 * dp + 1], ap, bdo[2], bdo[3]);
        Mma<T>::run(acc_dk[2 * dp], ads, bq[0], bq[1]);
        Mma<T>::run(acc_dk[2 * dp + 1], ads, bq[2], bq[3]);
      }
    }

    if constexpr (kAtomicDq) {
      // dS^T to shared memory, [key][query], in the input type (as used for dK above).
#pragma unroll
      for (int n = 0; n < kBM / 8; ++n) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          *reinterpret_cast<uint32_t*>(sdS + (warp * 16 + g + 8 * h) * kDsP + n * 8 + 2 * t) =
              pack2<T>(dpt[n][2 * h], dpt[n][2 * h + 1]);
        }
      }
      __syncthreads();
      // dQ = dS K for query rows 16 mt.. of this block and columns [c0, c0 + kDqCols),
      // kDqChunk columns at a time.
      constexpr int kChunkN = Traits::kDqChunk / 8;
      const int mt = warp % Traits::kMTiles;
      const int c0 = (warp / Traits::kMTiles) * Traits::kDqCols;
#pragma unroll
      for (int cc = c0; cc < c0 + Traits::kDqCols; cc += Traits::kDqChunk) {
        float acc_dq[kChunkN][4];
#pragma unroll
        for (int n = 0; n < kChunkN; ++n) {
#pragma unroll
          for (int e = 0; e < 4; ++e) acc_dq[n][e] = 0.0f;
        }
#pragma unroll
        for (int ks = 0; ks < kBN / 16; ++ks) {
          uint32_t a[4];
          ldmatrix_x4_trans(a, ds_bt + bytes_of<T>(ks * 16 * kDsP + mt * 16));
#pragma unroll
          for (int dp = 0; dp < kChunkN / 2; ++dp) {
            uint32_t b[4];
            ldmatrix_x4_trans(b, k_a + bytes_of<T>(ks * 16 * kP + cc + dp * 16));
            Mma<T>::run(acc_dq[2 * dp], a, b[0], b[1]);
            Mma<T>::run(acc_dq[2 * dp + 1], a, b[2], b[3]);
          }
        }
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int r = mt * 16 + g + 8 * h;
          if (r >= qn) continue;
          float* dq_row = params.dq + task.queries.base + (q0 + r) * q_stride + cc;
#pragma unroll
          for (int n = 0; n < kChunkN; ++n) {
            atomicAdd(dq_row + n * 8 + 2 * t, params.scale * acc_dq[n][2 * h]);
            atomicAdd(dq_row + n * 8 + 2 * t + 1, params.scale * acc_dq[n][2 * h + 1]);
          }
        }
      }
    }
  }

  // Add this block's dK, dV into the task's float32 key gradients (disjoint rows).
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int r = warp * 16 + g + 8 * h;
    if (r >= kn) continue;
    float* dk_row = task.keys.dk + (k0 + r) * k_stride;
    float* dv_row = task.keys.dv + (k0 + r) * k_stride;
#pragma unroll
    for (int n = 0; n < kD / 8; ++n) {
      float2* dk = reinterpret_cast<float2*>(dk_row + n * 8 + 2 * t);
      float2* dv = reinterpret_cast<float2*>(dv_row + n * 8 + 2 * t);
      const float2 dk_old = *dk, dv_old = *dv;
      *dk = make_float2(dk_old.x + params.scale * acc_dk[n][2 * h],
                        dk_old.y + params.scale * acc_dk[n][2 * h + 1]);
      *dv = make_float2(dv_old.x + acc_dv[n][2 * h], dv_old.y + acc_dv[n][2 * h + 1]);
    }
  }
}

template <typename Traits, bool kCausal, bool kExtras>
__global__ void __launch_bounds__(Traits::kThreads)
    flash_backward_dq_kernel(const FlashParams params) {
  using T = typename Traits::Element;
  constexpr int kD = Traits::kHeadDim;
  constexpr int kBM = Traits::kBlockM;
  constexpr int kBN = Traits::kBlockN;
  constexpr int kP = Traits::kPitch;

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
  T* sQ = reinterpret_cast<T*>(smem_raw);
  T* sdO = sQ + kBM * kP;
  T* sK = sdO + kBM * kP;     // two stages
  T* sV = sK + 2 * kBN * kP;  // two stages

  const int tid = threadIdx.x;
  const int warp = tid / kWarpThreads;
  const int lane = tid % kWarpThreads;
  const int g = lane / 4;
  const int t = lane % 4;
  // This lane's ldmatrix addresses (patterns in mma_primitives.cuh); K and V ones are for
  // stage 0 (add stage_bytes).
  const int a_row = lane % 8 + 8 * ((lane / 8) % 2), a_col = 8 * (lane / 16);
  const int bt_row = lane % 8 + 8 * (lane / 16), bt_col = 8 * ((lane / 8) % 2);
  const uint32_t q_a = smem_address(sQ + (warp * 16 + a_row) * kP + a_col);
  const uint32_t do_a = smem_address(sdO + (warp * 16 + a_row) * kP + a_col);
  const uint32_t k_bt = smem_address(sK + bt_row * kP + bt_col);
  const uint32_t v_bt = smem_address(sV + bt_row * kP + bt_col);
  const uint32_t k_a = smem_address(sK + a_row * kP + a_col);

  const int64_t q_stride = params.query_row_stride;
  const int64_t k_stride = task.keys.row_stride;
  const T* k_src = static_cast<const T*>(task.keys.k);
  const T* v_src = static_cast<const T*>(task.keys.v);
  auto load_key_tile = [&](int j, int stage) {
    const int64_t k0 = static_cast<int64_t>(j) * kBN;
    const int kn = static_cast<int>(min64(kBN, key_count - k0));
    load_tile_async<T, kBN, kD, kP, Traits::kThreads>(sK + stage * kBN * kP, k_src + k0 * k_stride,
                                                      k_stride, kn, tid);
    load_tile_async<T, kBN, kD, kP, Traits::kThreads>(sV + stage * kBN * kP, v_src + k0 * k_stride,
                                                      k_stride, kn, tid);
  };
  load_tile_async<T, kBM, kD, kP, Traits::kThreads>(
      sQ, static_cast<const T*>(params.q) + task.queries.base + q0 * q_stride, q_stride, qn, tid);
  load_tile_async<T, kBM, kD, kP, Traits::kThreads>(
      sdO, static_cast<const T*>(params.dout) + task.queries.base + q0 * q_stride, q_stride, qn,
      tid);
  load_key_tile(0, 0);
  cp_async_commit();

  // Rows h = 0, 1 of this thread: 16 warp + g (+ 8). Padding rows: P = 0 below.
  float lse2[2], delta[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int r = warp * 16 + g + 8 * h;
    const int64_t at = task.queries.lse_base + (q0 + r) * params.lse_row_stride;
    lse2[h] = r < qn ? params.saved_lse[at] * kLog2e : 0.0f;
    delta[h] = r < qn ? params.delta[at] : 0.0f;
  }
  float acc_dq[kD / 8][4];
#pragma unroll
  for (int n = 0; n < kD / 8; ++n) {
#pragma unroll
    for (int e = 0; e < 4; ++e) acc_dq[n][e] = 0.0f;
  }

  for (int j = 0; j < n_tiles; ++j) {
    const int stage = j & 1;
    cp_async_wait_all();
    __syncthreads();  // tile j ready for all; everyone is done with tile j - 1's stage
    if (j + 1 < n_tiles) {
      load_key_tile(j + 1, stage ^ 1);
      cp_async_commit();
    }
    const uint32_t stage_bytes = bytes_of<T>(stage * kBN * kP);
    const int64_t k0 = static_cast<int64_t>(j) * kBN;

    // S = Q K^T and dP = dO V^T for this warp's 16 query rows.
    float s[kBN / 8][4], dp[kBN / 8][4];
#pragma unroll
    for (int n = 0; n < kBN / 8; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) s[n][e] = dp[n][e] = 0.0f;
    }
#pragma unroll
    for (int ks = 0; ks < kD / 16; ++ks) {
      uint32_t aq[4], ado[4];
      ldmatrix_x4(aq, q_a + bytes_of<T>(ks * 16));
      ldmatrix_x4(ado, do_a + bytes_of<T>(ks * 16));
#pragma unroll
      for (int np = 0; np < kBN / 16; ++np) {
        uint32_t bk[4], bv[4];
        ldmatrix_x4(bk, k_bt + stage_bytes + bytes_of<T>(np * 16 * kP + ks * 16));
        ldmatrix_x4(bv, v_bt + stage_bytes + bytes_of<T>(np * 16 * kP + ks * 16));
        Mma<T>::run(s[2 * np], aq, bk[0], bk[1]);
        Mma<T>::run(s[2 * np + 1], aq, bk[2], bk[3]);
        Mma<T>::run(dp[2 * np], ado, bv[0], bv[1]);
        Mma<T>::run(dp[2 * np + 1], ado, bv[2], bv[3]);
      }
    }

    const bool need_mask = k0 + kBN > key_count || q0 + kBM > task.queries.count ||
                           (kCausal && k0 + kBN - 1 > q_index0);
    if constexpr (kExtras) {
      // dS = P (Z dP - delta) with the bias in P; element [n][e] is bit 4 n + e.
      uint64_t keep = ~uint64_t{0};
      float z_scale = 1.0f;
      if (dropout) {
        z_scale = params.dropout_scale;
        keep = dropout_keep_bits<kBN / 2>(task, params.dropout_threshold, [&](int x) {
          return DilatedPair{q_index0 + warp * 16 + g + 8 * ((x % 4) >> 1),
                             k0 + (x / 4) * 8 + 2 * t + ((x % 4) & 1)};
        });
      }
#pragma unroll
      for (int n = 0; n < kBN / 8; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int h = e >> 1;
          const int r = warp * 16 + g + 8 * h;
          const int64_t key = k0 + n * 8 + 2 * t + (e & 1);
          const bool allowed =
              !need_mask || (key < key_count && r < qn && (!kCausal || key <= q_index0 + r));
          float x = s[n][e] * params.scale_log2;
          if (bias != nullptr && allowed) x = fmaf(bias[q_index0 + r - key], kLog2e, x);
          const float p = allowed ? exp2f(x - lse2[h]) : 0.0f;
          dp[n][e] = p * (keep_factor(keep, 4 * n + e, z_scale) * dp[n][e] - delta[h]);  // dS
        }
      }
    } else {
#pragma unroll
      for (int n = 0; n < kBN / 8; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int h = e >> 1;
          const int r = warp * 16 + g + 8 * h;
          const int64_t key = k0 + n * 8 + 2 * t + (e & 1);
          const bool allowed =
              !need_mask || (key < key_count && r < qn && (!kCausal || key <= q_index0 + r));
          const float p = allowed ? exp2f(s[n][e] * params.scale_log2 - lse2[h]) : 0.0f;
          dp[n][e] = p * (dp[n][e] - delta[h]);  // dS
        }
      }
    }

    // dQ += dS K_j (K_j read transposed: k = keys).
#pragma unroll
    for (int kk = 0; kk < kBN / 16; ++kk) {
      const uint32_t a[4] = {pack2<T>(dp[2 * kk][0], dp[2 * kk][1]),
                             pack2<T>(dp[2 * kk][2], dp[2 * kk][3]),
                             pack2<T>(dp[2 * kk + 1][0], dp[2 * kk + 1][1]),
                             pack2<T>(dp[2 * kk + 1][2], dp[2 * kk + 1][3])};
#pragma unroll
      for (int dn = 0; dn < kD / 16; ++dn) {
        uint32_t b[4];
        ldmatrix_x4_trans(b, k_a + stage_bytes + bytes_of<T>(kk * 16 * kP + dn * 16));
        Mma<T>::run(acc_dq[2 * dn], a, b[0], b[1]);
        Mma<T>::run(acc_dq[2 * dn + 1], a, b[2], b[3]);
      }
    }
  }

  // One writer per dq row: a plain read-modify-write, in a fixed order.
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int r = warp * 16 + g + 8 * h;
    if (r >= qn) continue;
    float* dq_row = params.dq + task.queries.base + (q0 + r) * q_stride;
#pragma unroll
    for (int n = 0; n < kD / 8; ++n) {
      float2* dq = reinterpret_cast<float2*>(dq_row + n * 8 + 2 * t);
      const float2 old = *dq;
      *dq = make_float2(old.x + params.scale * acc_dq[n][2 * h],
                        old.y + params.scale * acc_dq[n][2 * h + 1]);
    }
  }
}

}  // namespace longnet::cuda_kernels
