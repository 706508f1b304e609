// The failure path of ops_cuda_check.hpp.
#include "model/ops/cuda/ops_cuda_check.hpp"

#include "runtime/error.hpp"

namespace longnet::cuda_ops {

void throw_cuda_error(cudaError_t code, const char* statement, const char* file, int line,
                      const char* context) {
  // Clear a non-sticky error so that the next, unrelated call is not blamed for it.
  cudaGetLastError();
  fail("CUDA call `{}` failed at {}:{}: {}: {}{}{}", statement, file, line, cudaGetErrorName(code),
       cudaGetErrorString(code), context != nullptr ? " in " : "",
       context != nullptr ? context : "");
}

void throw_cublas_error(cublasStatus_t status, const char* statement, const char* file, int line) {
  fail("cuBLAS call `{}` failed at {}:{}: {}: {}", statement, file, line,
       cublasGetStatusName(status), cublasGetStatusString(status));
}

}  // namespace longnet::cuda_ops
