// The failure path of kernels/cuda/cuda_check.cuh.
#include "kernels/cuda/cuda_check.cuh"

#include "runtime/error.hpp"

#include <fmt/format.h>

namespace longnet::cuda_kernels {

void throw_cuda_error(cudaError_t code, const char* statement, const char* file, int line,
                      std::string_view context) {
  // Clear a non-sticky error so that the next, unrelated call is not blamed for it.
  cudaGetLastError();
  fail("CUDA call `{}` failed at {}:{}: {}: {}{}{}", statement, file, line, cudaGetErrorName(code),
       cudaGetErrorString(code), context.empty() ? "" : " while ", context);
}

void throw_kernel_error(const std::string& message) { throw Error(message); }

}  // namespace longnet::cuda_kernels
