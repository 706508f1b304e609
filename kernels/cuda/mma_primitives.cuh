// Warp-level building blocks of the tensor-core kernels (sm_80 and later): cp.async
// global->shared copies, ldmatrix shared->register loads, mma.sync m16n8k16 with fp32
// accumulation, and the 16-bit element types. Inline PTX, written against the PTX ISA's
// fragment layouts, which every index in the kernels follows. With lane = threadIdx % 32,
// g = lane / 4 (the "group") and t = lane % 4:
//
//   A (16 x 16, row-major), 4 registers of 2 elements, the lower column in the low half:
//     a0 = A[g][2t, 2t+1]    a1 = A[g+8][2t, 2t+1]    a2 = A[g][2t+8, +9]   a3 = A[g+8][2t+8, +9]
//   B (16 x 8, "col": each column's k contiguous), 2 registers:
//     b0 = B[2t, 2t+1][g]    b1 = B[2t+8, 2t+9][g]
//   C (16 x 8, fp32), 4 floats:
//     c0, c1 = C[g][2t, 2t+1]    c2, c3 = C[g+8][2t, 2t+1]
//
// ldmatrix.x4 loads four 8x8 b16 matrices; lanes 8i..8i+7 give the row addresses of
// matrix i, and register i of every lane receives matrix i: element [g][2t, 2t+1] plain,
// [2t, 2t+1][g] with .trans. Hence (m = row, k = contiguous column of the stored tile):
//   * A from a row-major tile:      row = lane%8 + 8*((lane/8)%2), col = 8*(lane/16)
//   * B = X^T from rows of X (S = Q K^T: rows of K are B's columns), two n8 tiles at once:
//                                   row = lane%8 + 8*(lane/16),   col = 8*((lane/8)%2)
//     registers {0,1} are (b0, b1) of the first n8 tile, {2,3} of the second
//   * B from a row-major k x n tile (O = P V: V's rows are k), two n8 tiles at once, .trans:
//                                   row = lane%8 + 8*((lane/8)%2), col = 8*(lane/16)
//   * A = X^T from a row-major k x m tile (dQ = dS K with dS^T stored), .trans:
//                                   row = lane%8 + 8*(lane/16),   col = 8*((lane/8)%2)
// and the C fragments of two adjacent n8 tiles (columns 0-7 and 8-15) are, converted to
// 16 bits and paired, exactly the A fragment of a k16 step (FlashAttention-2's trick for
// feeding P to the second product without shared memory):
//   a0 = (C0[0], C0[1])  a1 = (C0[2], C0[3])  a2 = (C1[0], C1[1])  a3 = (C1[2], C1[3]).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace longnet::cuda_kernels {

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

__device__ __forceinline__ int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
__device__ __forceinline__ int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

// ---- element types -------------------------------------------------------------------
template <typename T>
struct ElementOps;

template <>
struct ElementOps<__nv_bfloat16> {
  static __device__ __forceinline__ uint16_t bits(float x) {
    return __bfloat16_as_ushort(__float2bfloat16_rn(x));
  }
  static __device__ __forceinline__ __nv_bfloat16 from_float(float x) {
    return __float2bfloat16_rn(x);
  }
  static __device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
};

template <>
struct ElementOps<__half> {
  static __device__ __forceinline__ uint16_t bits(float x) {
    return __half_as_ushort(__float2half_rn(x));
  }
  static __device__ __forceinline__ __half from_float(float x) { return __float2half_rn(x); }
  static __device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
};

template <>
struct ElementOps<float> {
  static __device__ __forceinline__ float from_float(float x) { return x; }
  static __device__ __forceinline__ float to_float(float x) { return x; }
};

// Two floats rounded to T and packed into one mma operand register (lo in the low half).
template <typename T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  return (static_cast<uint32_t>(ElementOps<T>::bits(hi)) << 16) | ElementOps<T>::bits(lo);
}

// ---- mma.sync m16n8k16, fp32 accumulate: c += a * b ---------------------------------
template <typename T>
struct Mma;

template <>
struct Mma<__nv_bfloat16> {
  static __device__ __forceinline__ void run(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                             uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
};

template <>
struct Mma<__half> {
  static __device__ __forceinline__ void run(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                             uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
};

// ---- shared memory ---------------------------------------------------------------------
__device__ __forceinline__ uint32_t smem_address(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// ldmatrix takes 32-bit shared-space addresses: a kernel converts each tile's per-lane
// base once (smem_address) and adds compile-time byte offsets in its unrolled loops,
// which ptxas folds into the instruction's immediate instead of keeping one 64-bit
// generic pointer alive per offset. The "memory" clobbers keep the compiler from moving
// shared-memory accesses across these (the data was written by other threads or cp.async).
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t smem) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem)
               : "memory");
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t smem) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem)
               : "memory");
}

// Byte offset of `elements` elements of T (for shared addresses).
template <typename T>
__device__ __forceinline__ constexpr uint32_t bytes_of(int elements) {
  return static_cast<uint32_t>(elements) * static_cast<uint32_t>(sizeof(T));
}

// 16 bytes global -> shared, bypassing L1. src_bytes = 0 reads nothing and writes 16 zero
// bytes: that is how padding rows of a tile become zeros (never garbage that a 0 * NaN
// would turn into NaN). Both addresses must be 16-byte aligned.
__device__ __forceinline__ void cp_async_16(void* smem, const void* gmem, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n"
               :
               : "r"(smem_address(smem)), "l"(gmem), "r"(valid ? 16 : 0)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}
// Waits until every cp.async group this thread committed has landed; a __syncthreads()
// must follow before other threads read the data.
__device__ __forceinline__ void cp_async_wait_all() {
  asm volatile("cp.async.wait_group 0;\n" ::: "memory");
}

// Copies rows [0, kRows) of a strided global tile (row i at src + i * row_stride, kCols
// contiguous elements) into a shared tile with kPitch elements per row; rows >= valid_rows
// are zero-filled. All kThreads threads call it; consecutive threads take consecutive
// 16-byte chunks of a row (coalesced). src must point at a readable row (valid_rows >= 1).
template <typename T, int kRows, int kCols, int kPitch, int kThreads>
__device__ __forceinline__ void load_tile_async(T* smem, const T* src, int64_t row_stride,
                                                int valid_rows, int tid) {
  constexpr int kPerChunk = 16 / sizeof(T);
  constexpr int kChunksPerRow = kCols / kPerChunk;
  constexpr int kChunks = kRows * kChunksPerRow;
  static_assert(kCols % kPerChunk == 0, "rows must be whole 16-byte chunks");
  static_assert(kChunks % kThreads == 0, "every thread copies the same number of chunks");
#pragma unroll
  for (int i = 0; i < kChunks / kThreads; ++i) {
    const int chunk = tid + i * kThreads;
    const int row = chunk / kChunksPerRow;
    const int col = (chunk % kChunksPerRow) * kPerChunk;
    const bool valid = row < valid_rows;
    cp_async_16(smem + row * kPitch + col, valid ? src + row * row_stride + col : src, valid);
  }
}

// Max and sum over the four lanes of a quad (the lanes holding one row of a C fragment).
__device__ __forceinline__ float quad_max(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}
__device__ __forceinline__ float quad_sum(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

}  // namespace longnet::cuda_kernels
