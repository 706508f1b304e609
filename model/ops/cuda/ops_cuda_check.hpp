// LONGNET_OPS_CHECK_CUDA(call) and LONGNET_OPS_CHECK_CUBLAS(call): the CUDA ops' failure path.
//
// Each evaluates a CUDA runtime or cuBLAS call and throws longnet::Error unless it
// succeeded; the message holds the statement, file:line and the library's name and text
// for the status. One throwing function per library, one macro shape. (A twin of
// kernels/cuda/cuda_check.cuh, which belongs to the attention kernels' library: the model
// ops do not link the attention kernels to borrow it.) Plain C++ against the runtime API,
// without fmt, so the .cu files include it too.
//
// The trap: a launch reports only configuration errors (LONGNET_OPS_CHECK_LAUNCH right after
// it); a fault inside a kernel surfaces at the next synchronising call.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <string>

namespace longnet::cuda_ops {

// `context` (may be null) names what was running, e.g. the kernel just launched.
[[noreturn]] void throw_cuda_error(cudaError_t code, const char* statement, const char* file,
                                   int line, const char* context = nullptr);
[[noreturn]] void throw_cublas_error(cublasStatus_t status, const char* statement, const char* file,
                                     int line);

}  // namespace longnet::cuda_ops

#define LONGNET_OPS_CHECK_CUDA(call)                                                            \
  do {                                                                                          \
    const cudaError_t longnet_ops_cuda_code_ = (call);                                          \
    if (longnet_ops_cuda_code_ != cudaSuccess)                                                  \
      ::longnet::cuda_ops::throw_cuda_error(longnet_ops_cuda_code_, #call, __FILE__, __LINE__); \
  } while (false)

#define LONGNET_OPS_CHECK_CUBLAS(call)                                                     \
  do {                                                                                     \
    const cublasStatus_t longnet_ops_cublas_status_ = (call);                              \
    if (longnet_ops_cublas_status_ != CUBLAS_STATUS_SUCCESS)                               \
      ::longnet::cuda_ops::throw_cublas_error(longnet_ops_cublas_status_, #call, __FILE__, \
                                              __LINE__);                                   \
  } while (false)

// After a kernel launch: a bad grid or a missing device image for this GPU shows here.
#define LONGNET_OPS_CHECK_LAUNCH(kernel_name)                                             \
  do {                                                                                    \
    const cudaError_t longnet_ops_launch_code_ = cudaGetLastError();                      \
    if (longnet_ops_launch_code_ != cudaSuccess)                                          \
      ::longnet::cuda_ops::throw_cuda_error(longnet_ops_launch_code_, "launch", __FILE__, \
                                            __LINE__, kernel_name);                       \
  } while (false)
