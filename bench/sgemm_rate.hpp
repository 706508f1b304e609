// The machine's single-precision GEMM rate, measured with the linked BLAS: the
// ceiling the attention kernels are compared against ("% of sgemm").
#pragma once

#include <string>

namespace longnet::bench {

struct SgemmRate {
  int size = 0;  // n of the n x n x n product
  double median_ms = 0;
  double gflops = 0;  // 2 n^3 / time
};

SgemmRate measure_sgemm(int size, int repeats);

}  // namespace longnet::bench
