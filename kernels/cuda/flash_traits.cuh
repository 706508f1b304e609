// Compile-time choices of the CUDA dilated-attention kernels, one traits struct per kernel
// family, each checked by static_asserts against what the device code assumes.
//
// Tile sizes. Chosen by the reasoning beside each, then measured on an H100
// (bench/results/cuda_attention_2026-11-22_h100.txt: bf16, B=1 H=16 D=128, the paper's
// five patterns): the forward with 4 warps (64 rows) ran at 199-203 TFLOP/s, with 8 warps
// (128 rows) at 179-184, so 4 stay. Change them here only with a measurement.
// Shared principles:
//   * 4 warps (128 threads) per block, one m16 row tile per warp in the tensor-core
//     kernels, as FlashAttention-2's sm80 forward kernels for these head dims.
//   * 64 rows per query block: a task of pattern (w, r) has only w/r rows (often 256 to
//     2048), so small blocks keep 132 SMs busy without making the last wave mostly idle.
//   * Registers: the fragments a thread holds are S (kBlockN/2 floats), the output
//     accumulator (D/2 floats) and, in the backward, dK and dV (D/2 each). ptxas (CUDA
//     13.0, -Xptxas -v) reports for the tensor-core kernels 163-208 registers per thread
//     (forward), 163-254 (dK/dV) and 125-167 (dQ), i.e. 2-3 blocks of 4 warps per SM, with
//     small spills in two instantiations (dK/dV with atomic dQ, causal: 28 bytes for
//     D = 32 on sm_80, 16 bytes for D = 128 on sm_90); the CUDA-core kernels use 40-80.
//     Taller blocks of one-m16-per-warp (8 warps) lost on the H100 (above); what should
//     win is two m16 row tiles per warp (each K/V fragment then feeds four MMAs, not two),
//     not yet tried.
//   * Shared-memory rows are padded by 16 bytes (kSmemPad elements). A row is then an odd
//     number of 16-byte units (D = 32, 64, 128 give 5, 9, 17), so the 8 row addresses of
//     an ldmatrix phase fall in 8 different bank groups: conflict-free without a swizzle.
#pragma once

#include "kernels/cuda/mma_primitives.cuh"

#include <type_traits>

namespace longnet::cuda_kernels {

template <typename T>
inline constexpr bool kIsTensorCoreType =
    std::is_same_v<T, __nv_bfloat16> || std::is_same_v<T, __half>;

inline constexpr int kWarpThreads = 32;

// ---- tensor-core forward (bf16, fp16) ----------------------------------------------------
// Per block: kBlockM query rows of one task; streams key/value tiles of kBlockN rows.
// kBlockN: 128 for D = 32 and 64 (S is 64 floats/thread, O 16 or 32; K and V tiles fit in
// 46 KiB with Q), 64 for D = 128 (O alone is 64 floats/thread; 52 KiB of shared memory).
// LONGNET_CUDA_FORWARD_WARPS overrides the warp count (so kBlockM = 16 x warps) for
// measuring other tile heights side by side; the default is what the measurements chose.
#ifndef LONGNET_CUDA_FORWARD_WARPS
#define LONGNET_CUDA_FORWARD_WARPS 4
#endif
template <typename Element_, int kHeadDim_>
struct FlashForwardTraits {
  using Element = Element_;
  static constexpr int kHeadDim = kHeadDim_;
  static constexpr int kNWarps = LONGNET_CUDA_FORWARD_WARPS;
  static constexpr int kThreads = kNWarps * kWarpThreads;
  static constexpr int kBlockM = 16 * kNWarps;  // one m16 row tile per warp
  static constexpr int kBlockN = kHeadDim == 128 ? 64 : 128;
  static constexpr int kSmemPad = 8;
  static constexpr int kPitch = kHeadDim + kSmemPad;  // elements per shared row
  static constexpr int kSmemBytes =
      (kBlockM + 2 * kBlockN) * kPitch * static_cast<int>(sizeof(Element));

  static_assert(kIsTensorCoreType<Element>, "the tensor-core kernels take bf16 or fp16");
  static_assert(kHeadDim == 32 || kHeadDim == 64 || kHeadDim == 128, "head dims 32, 64, 128");
  static_assert(kHeadDim % 16 == 0 && kBlockN % 16 == 0, "whole k16 / n16 MMA steps");
  static_assert((kPitch * sizeof(Element)) % 16 == 0, "ldmatrix/cp.async rows 16-byte aligned");
  static_assert(((kPitch * sizeof(Element)) / 16) % 2 == 1, "odd 16-byte units: no conflicts");
  static_assert(kSmemBytes <= 227 * 1024, "fits an SM's shared memory (sm_90: 227 KiB)");
};

// ---- tensor-core backward, dK/dV (and atomic dQ) ---------------------------------------
// Per block: kBlockN key rows of one task (16 per warp); walks query blocks of kBlockM
// rows, double-buffering Q and dO so the next block loads under the current one's math.
// Per thread: dK and dV accumulators (D/2 floats each) plus S^T and dP^T (kBlockM/2 each):
// kBlockM = 64 for D <= 64, 32 for D = 128 (64 + 64 + 16 + 16 floats).
template <typename Element_, int kHeadDim_>
struct FlashBackwardTraits {
  using Element = Element_;
  static constexpr int kHeadDim = kHeadDim_;
  static constexpr int kNWarps = 4;
  static constexpr int kThreads = kNWarps * kWarpThreads;
  static constexpr int kBlockN = 16 * kNWarps;  // keys: one m16 row tile of S^T per warp
  static constexpr int kBlockM = kHeadDim == 128 ? 32 : 64;  // queries per step
  static constexpr int kSmemPad = 8;
  static constexpr int kPitch = kHeadDim + kSmemPad;
  static constexpr int kDsPitch = kBlockM + kSmemPad;  // dS^T tile, [key][query]
  // dQ = dS K: the block's kBlockM x D output split over warps as kMTiles row tiles times
  // kWarpsPerMTile column slices of kDqCols.
  static constexpr int kMTiles = kBlockM / 16;
  static constexpr int kWarpsPerMTile = kNWarps / kMTiles;
  static constexpr int kDqCols = kHeadDim / kWarpsPerMTile;
  // ... computed kDqChunk columns at a time, so its accumulator (kDqChunk / 2 floats)
  // adds little to the live dK and dV accumulators.
  static constexpr int kDqChunk = kDqCols < 32 ? kDqCols : 32;
  static constexpr int kSmemBytes =
      (2 * kBlockN + 4 * kBlockM) * kPitch * static_cast<int>(sizeof(Element)) +
      kBlockN * kDsPitch * static_cast<int>(sizeof(Element)) +
      4 * kBlockM * static_cast<int>(sizeof(float));  // lse and delta, two stages each
  // kExtras kernels with a bias gradient: the step's dS summed along its kBlockM + kBlockN
  // - 1 diagonals (one dilated distance each), after kSmemBytes.
  static constexpr int kDiagonals = kBlockM + kBlockN - 1;
  static constexpr int kExtrasSmemBytes = kSmemBytes + kDiagonals * static_cast<int>(sizeof(float));

  static_assert(kIsTensorCoreType<Element>, "the tensor-core kernels take bf16 or fp16");
  static_assert(kHeadDim == 32 || kHeadDim == 64 || kHeadDim == 128, "head dims 32, 64, 128");
  static_assert(kDiagonals <= kThreads, "one thread per diagonal flushes the dbias sums");
  static_assert(kSmemBytes % 16 == 0, "the diagonal sums start 16-byte aligned");
  static_assert(kExtrasSmemBytes <= 227 * 1024, "fits an SM's shared memory (sm_90: 227 KiB)");
  static_assert(kBlockM % 16 == 0 && kNWarps % kMTiles == 0, "dQ tiles cover the warps");
  static_assert(kDqCols % kDqChunk == 0 && kDqChunk % 16 == 0, "dQ slices of whole n16 steps");
  static_assert(kBlockM <= kThreads, "one thread per query row loads lse and delta");
  static_assert(((kPitch * sizeof(Element)) / 16) % 2 == 1, "odd 16-byte units: no conflicts");
  static_assert(((kDsPitch * sizeof(Element)) / 16) % 2 == 1, "odd 16-byte units: no conflicts");
  static_assert(kSmemBytes <= 227 * 1024, "fits an SM's shared memory (sm_90: 227 KiB)");
};

// ---- tensor-core backward, deterministic dQ -------------------------------------------
// Per block: kBlockM query rows (16 per warp), walking key tiles of kBlockN rows with K
// and V double-buffered; dQ accumulates in registers (D/2 floats) and is written once.
// kBlockN: 64, or 32 for D = 128 so that S and dP (kBlockN/2 floats each) stay small.
template <typename Element_, int kHeadDim_>
struct FlashDqTraits {
  using Element = Element_;
  static constexpr int kHeadDim = kHeadDim_;
  static constexpr int kNWarps = 4;
  static constexpr int kThreads = kNWarps * kWarpThreads;
  static constexpr int kBlockM = 16 * kNWarps;
  static constexpr int kBlockN = kHeadDim == 128 ? 32 : 64;
  static constexpr int kSmemPad = 8;
  static constexpr int kPitch = kHeadDim + kSmemPad;
  static constexpr int kSmemBytes =
      (2 * kBlockM + 4 * kBlockN) * kPitch * static_cast<int>(sizeof(Element));

  static_assert(kIsTensorCoreType<Element>, "the tensor-core kernels take bf16 or fp16");
  static_assert(kHeadDim == 32 || kHeadDim == 64 || kHeadDim == 128, "head dims 32, 64, 128");
  static_assert(kBlockN % 16 == 0, "whole k16 steps over keys");
  static_assert(((kPitch * sizeof(Element)) / 16) % 2 == 1, "odd 16-byte units: no conflicts");
  static_assert(kSmemBytes <= 227 * 1024, "fits an SM's shared memory (sm_90: 227 KiB)");
};

// ---- fp32 inputs: CUDA cores (SIMT) -----------------------------------------------------
// fp32 inputs run on CUDA cores with fp32 FMAs, not TF32 tensor cores: TF32 keeps 10
// mantissa bits, so its error (~1e-3) would be ~1000x the CPU kernels' and fail the
// float32 accuracy contract. Same fused, tiled structure as the tensor-core kernels.
// 256 threads as a 16 x 16 grid; a thread computes the score elements (ty + 16 i,
// tx + 16 j) of a tile, so its shared reads are conflict-free: rows of K are read at an
// odd pitch (D + 1 floats: 16 consecutive rows hit 16 banks) and rows of V, Q, dO along
// consecutive columns.
// Tiles: 64 queries x 64 keys (32 keys for D = 128 to stay under ~75 KiB of shared
// memory, three blocks per H100 SM); the backward walks 32-query steps.
template <int kHeadDim_>
struct SimtTraits {
  static constexpr int kHeadDim = kHeadDim_;
  static constexpr int kThreads = 256;
  static constexpr int kSide = 16;                           // threads per tile side
  static constexpr int kBlockM = 64;                         // forward query rows
  static constexpr int kBlockN = kHeadDim == 128 ? 32 : 64;  // key rows per tile
  static constexpr int kBackwardBlockM = 32;                 // backward query rows per step
  static constexpr int kOddPitch = kHeadDim + 1;             // rows read down a column
  static constexpr int kForwardSmemBytes =
      static_cast<int>(sizeof(float)) *
      (kBlockM * kOddPitch + kBlockN * kOddPitch + kBlockN * kHeadDim + kBlockM * (kBlockN + 1) +
       3 * kBlockM);
  static constexpr int kBackwardSmemBytes =
      static_cast<int>(sizeof(float)) * (2 * kBlockN * kOddPitch + 2 * kBackwardBlockM * kOddPitch +
                                         2 * kBackwardBlockM * (kBlockN + 1) + 2 * kBackwardBlockM);

  static_assert(kHeadDim == 32 || kHeadDim == 64 || kHeadDim == 128, "head dims 32, 64, 128");
  static_assert(kSide * kSide == kThreads, "a square thread grid");
  static_assert(kHeadDim % kSide == 0 && kBlockN % kSide == 0 && kBlockM % kSide == 0 &&
                    kBackwardBlockM % kSide == 0,
                "tiles are whole multiples of the thread grid");
  static_assert(kThreads == 4 * kBlockM, "the forward's softmax gives each row 4 threads");
  static_assert(kBlockN % 4 == 0, "each of a row's 4 softmax threads takes kBlockN / 4 columns");
  static_assert(kBackwardBlockM <= kThreads && kBlockM <= kThreads, "one thread per row");
  static_assert(kForwardSmemBytes <= 227 * 1024 && kBackwardSmemBytes <= 227 * 1024,
                "fits an SM's shared memory");
};

}  // namespace longnet::cuda_kernels
