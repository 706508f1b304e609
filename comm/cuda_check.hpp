// LONGNET_CUDA_CHECK(call[, context]) and LONGNET_NCCL_CHECK(call[, context]): evaluate
// a CUDA runtime or NCCL call and throw longnet::Error unless it succeeds. The message
// holds the statement, file:line, cudaGetErrorName/cudaGetErrorString (for NCCL:
// ncclGetErrorString, and ncclGetLastError's detail when it has one), the optional
// context (a std::string_view) and the rank and host (comm/library_check.hpp).
//
// Built only with LONGNET_CUDA. Checking a call only reports what the call returns: a
// kernel or an NCCL collective fails later, asynchronously, and is caught where the
// stream is waited on (NcclCommunicator::synchronize).
#pragma once

#include "comm/library_check.hpp"

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <string_view>

namespace longnet::detail {

[[noreturn]] void throw_cuda_failure(cudaError_t code, const char* statement, const char* file,
                                     int line, std::string_view context = {});
[[noreturn]] void throw_nccl_failure(ncclResult_t code, const char* statement, const char* file,
                                     int line, std::string_view context = {});

}  // namespace longnet::detail

#define LONGNET_CUDA_CHECK(call, ...)                                             \
  do {                                                                            \
    const cudaError_t longnet_cuda_code_ = (call);                                \
    if (longnet_cuda_code_ != cudaSuccess)                                        \
      ::longnet::detail::throw_cuda_failure(longnet_cuda_code_, #call, __FILE__,  \
                                            __LINE__ __VA_OPT__(, ) __VA_ARGS__); \
  } while (false)

#define LONGNET_NCCL_CHECK(call, ...)                                             \
  do {                                                                            \
    const ncclResult_t longnet_nccl_code_ = (call);                               \
    if (longnet_nccl_code_ != ncclSuccess)                                        \
      ::longnet::detail::throw_nccl_failure(longnet_nccl_code_, #call, __FILE__,  \
                                            __LINE__ __VA_OPT__(, ) __VA_ARGS__); \
  } while (false)
