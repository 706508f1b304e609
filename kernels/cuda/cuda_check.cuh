// LONGNET_CHECK_CUDA(call[, context]): the kernels' own CUDA failure path.
//
// Evaluates a CUDA runtime call and throws longnet::Error unless it returned cudaSuccess;
// the message holds the statement, file:line, cudaGetErrorName/cudaGetErrorString and the
// optional context (a std::string_view). The kernels library must not depend on comm/, so
// this is a small twin of comm/cuda_check.hpp's LONGNET_CUDA_CHECK (different name, so a
// file may include both). Plain C++ against the runtime API: host .cpp files include it too.
//
// The trap: a launch reports only configuration errors (cudaGetLastError right after
// it); a fault inside a kernel surfaces at the next synchronising call, which every
// public entry of the CUDA backend makes (cudaStreamSynchronize) and checks.
#pragma once

#include <cuda_runtime_api.h>

#include <string>
#include <string_view>

namespace longnet::cuda_kernels {

[[noreturn]] void throw_cuda_error(cudaError_t code, const char* statement, const char* file,
                                   int line, std::string_view context = {});
// For the .cu files, which do not include fmt or runtime/error.hpp: throws longnet::Error.
[[noreturn]] void throw_kernel_error(const std::string& message);

}  // namespace longnet::cuda_kernels

#define LONGNET_CHECK_CUDA(call, ...)                                                       \
  do {                                                                                      \
    const cudaError_t longnet_kernel_cuda_code_ = (call);                                   \
    if (longnet_kernel_cuda_code_ != cudaSuccess)                                           \
      ::longnet::cuda_kernels::throw_cuda_error(longnet_kernel_cuda_code_, #call, __FILE__, \
                                                __LINE__ __VA_OPT__(, ) __VA_ARGS__);       \
  } while (false)

// After a kernel launch: configuration errors (grid, shared memory, no device image for
// this GPU's architecture) are reported here, execution errors at the next synchronisation.
#define LONGNET_CHECK_LAUNCH(what) LONGNET_CHECK_CUDA(cudaGetLastError(), what)
