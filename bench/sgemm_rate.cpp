#include "bench/sgemm_rate.hpp"

#include "bench/timing.hpp"

#include <vector>

// The Fortran BLAS entry point: every BLAS (OpenBLAS, MKL, BLIS, reference) exports it,
// so no vendor header is needed.
extern "C" void sgemm_(const char* transa, const char* transb, const int* m, const int* n,
                       const int* k, const float* alpha, const float* a, const int* lda,
                       const float* b, const int* ldb, const float* beta, float* c, const int* ldc);

namespace longnet::bench {

SgemmRate measure_sgemm(int size, int repeats) {
  const std::size_t elements = static_cast<std::size_t>(size) * size;
  std::vector<float> a(elements, 0.5f), b(elements, 0.25f), c(elements, 0.0f);
  const float alpha = 1.0f, beta = 0.0f;
  auto run = [&] {
    sgemm_("N", "N", &size, &size, &size, &alpha, a.data(), &size, b.data(), &size, &beta, c.data(),
           &size);
  };
  SgemmRate rate;
  rate.size = size;
  rate.median_ms = median_ms(run, /*warmup=*/1, repeats);
  rate.gflops = 2.0 * size * static_cast<double>(size) * size / (rate.median_ms * 1e6);
  return rate;
}

}  // namespace longnet::bench
