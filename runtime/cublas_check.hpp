// LONGNET_CUBLAS_CHECK(call[, context]): a cuBLAS call that does not return
// CUBLAS_STATUS_SUCCESS becomes a longnet::Error through the one library failure path
// (runtime/library_check.hpp), with cublasGetStatusName and cublasGetStatusString.
#pragma once

#include <cublas_v2.h>

#include <string>
#include <string_view>

#include "runtime/library_check.hpp"

namespace longnet::detail {

[[noreturn]] inline void throw_cublas_failure(cublasStatus_t status, const char* statement,
                                              const char* file, int line,
                                              std::string_view context = {}) {
  throw_library_failure(
      std::string(cublasGetStatusName(status)) + ": " + cublasGetStatusString(status), statement,
      file, line, context);
}

}  // namespace longnet::detail

#define LONGNET_CUBLAS_CHECK(call, ...)                                                \
  do {                                                                                 \
    const cublasStatus_t longnet_cublas_status_ = (call);                              \
    if (longnet_cublas_status_ != CUBLAS_STATUS_SUCCESS)                               \
      ::longnet::detail::throw_cublas_failure(longnet_cublas_status_, #call, __FILE__, \
                                              __LINE__ __VA_OPT__(, ) __VA_ARGS__);    \
  } while (false)
