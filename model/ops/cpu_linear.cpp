// Linear layer on the CPU: y = x w^T (+ b) and its gradients through OpenBLAS GEMMs.
//
// Row-major throughout: x [M, K], w [N, K] (PyTorch's layout: one row per output feature),
// y [M, N]. Forward: y = x w^T (a GEMM with w transposed), after y's rows were set to b so
// that the GEMM adds onto them (beta = 1). Backward: dx = dy w, dw += dy^T x (beta = 1
// accumulates), db += column sums of dy.
//
// The trap: Debian's OpenBLAS takes 32-bit ints for the dimensions, so each extent is
// checked against INT_MAX rather than silently wrapped.
#include <cblas.h>

#include <algorithm>
#include <array>
#include <climits>

#include "model/ops/cpu_ops.hpp"

namespace longnet::cpu_ops {
namespace {

// Columns one thread sums at a time: 64 double accumulators fit in a few cache lines.
constexpr int64_t kColumnBlock = 64;

int blas_int(int64_t extent, const char* what) {
  LONGNET_CHECK(extent <= INT_MAX,
                "linear: {} = {} exceeds the 32-bit dimensions of the BLAS library; split the "
                "rows into several calls",
                what, extent);
  return static_cast<int>(extent);
}

// C = alpha op(A) op(B) + beta C, row-major, in the precision of T.
void gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, const float* a, int lda,
          const float* b, int ldb, float beta, float* c, int ldc) {
  cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
}
void gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, const double* a, int lda,
          const double* b, int ldb, double beta, double* c, int ldc) {
  cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, 1.0, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace

template <typename T>
void add_column_sums(const T* a, int64_t rows, int64_t cols, T* out) {
  const int64_t blocks = (cols + kColumnBlock - 1) / kColumnBlock;
  // Each block of columns is owned by one thread and summed over the rows in order:
  // deterministic for any thread count, no per-thread partial buffers.
#pragma omp parallel for schedule(static)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t c0 = blk * kColumnBlock, width = std::min(kColumnBlock, cols - c0);
    std::array<double, kColumnBlock> acc{};
    for (int64_t r = 0; r < rows; ++r) {
      const T* row = a + r * cols + c0;
      for (int64_t j = 0; j < width; ++j) acc[j] += static_cast<double>(row[j]);
    }
    for (int64_t j = 0; j < width; ++j) out[c0 + j] = static_cast<T>(out[c0 + j] + acc[j]);
  }
}

template <typename T>
void linear_forward(const T* x, const T* w, const T* b, T* y, int64_t m, int64_t k, int64_t n) {
  if (m == 0) return;
  const int mi = blas_int(m, "M (rows of x)"), ki = blas_int(k, "K"), ni = blas_int(n, "N");
  if (b != nullptr) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < m; ++r) std::copy(b, b + n, y + r * n);
  }
  gemm(CblasNoTrans, CblasTrans, mi, ni, ki, x, ki, w, ki, b != nullptr ? T(1) : T(0), y, ni);
}

template <typename T>
void linear_backward(const T* x, const T* w, const T* dy, T* dx, T* dw, T* db, int64_t m, int64_t k,
                     int64_t n) {
  if (m == 0) return;  // dx is empty and nothing accumulates
  const int mi = blas_int(m, "M (rows of x)"), ki = blas_int(k, "K"), ni = blas_int(n, "N");
  if (dx != nullptr) gemm(CblasNoTrans, CblasNoTrans, mi, ki, ni, dy, ni, w, ki, T(0), dx, ki);
  gemm(CblasTrans, CblasNoTrans, ni, ki, mi, dy, ni, x, ki, T(1), dw, ki);
  if (db != nullptr) add_column_sums(dy, m, n, db);
}

#define LONGNET_INSTANTIATE(T)                                                                  \
  template void add_column_sums<T>(const T*, int64_t, int64_t, T*);                             \
  template void linear_forward<T>(const T*, const T*, const T*, T*, int64_t, int64_t, int64_t); \
  template void linear_backward<T>(const T*, const T*, const T*, T*, T*, T*, int64_t, int64_t,  \
                                   int64_t);
LONGNET_INSTANTIATE(float)
LONGNET_INSTANTIATE(double)
#undef LONGNET_INSTANTIATE

}  // namespace longnet::cpu_ops
