// LONGNET_CUDA_CHECK(call[, context]) and LONGNET_CUDA_CHECK_LAUNCH(context): a CUDA
// runtime call that does not return cudaSuccess becomes a longnet::Error through the one
// library failure path (runtime/library_check.hpp): what we were doing, the statement,
// file:line, cudaGetErrorName and cudaGetErrorString, rank and host. `context` is a
// std::string_view (a kernel's name, "copying dq to the host").
//
// The trap: a launch reports only configuration errors (LONGNET_CUDA_CHECK_LAUNCH right
// after it: grid, shared memory, no device image for this GPU's architecture); a fault
// inside a kernel surfaces at the next synchronising call, which is checked there.
#pragma once

#include <cuda_runtime_api.h>

#include <string>
#include <string_view>

#include "runtime/library_check.hpp"

namespace longnet::detail {

[[noreturn]] inline void throw_cuda_failure(cudaError_t code, const char* statement,
                                            const char* file, int line,
                                            std::string_view context = {}) {
  // Clear a non-sticky error so that the next, unrelated call is not blamed for it.
  cudaGetLastError();
  throw_library_failure(std::string(cudaGetErrorName(code)) + ": " + cudaGetErrorString(code),
                        statement, file, line, context);
}

}  // namespace longnet::detail

#define LONGNET_CUDA_CHECK(call, ...)                                             \
  do {                                                                            \
    const cudaError_t longnet_cuda_code_ = (call);                                \
    if (longnet_cuda_code_ != cudaSuccess)                                        \
      ::longnet::detail::throw_cuda_failure(longnet_cuda_code_, #call, __FILE__,  \
                                            __LINE__ __VA_OPT__(, ) __VA_ARGS__); \
  } while (false)

#define LONGNET_CUDA_CHECK_LAUNCH(context) LONGNET_CUDA_CHECK(cudaGetLastError(), context)
