// LONGNET_NCCL_CHECK(call[, context]): an NCCL call that does not return ncclSuccess
// becomes a longnet::Error through the one library failure path
// (runtime/library_check.hpp), with ncclGetErrorString and, when NCCL kept one, this
// thread's last error in detail (ncclGetLastError: "NCCL WARN ...").
//
// Checking a call only reports what the call returns: a collective fails later,
// asynchronously, and is caught where the stream is waited on.
#pragma once

#include <nccl.h>

#include <string>
#include <string_view>

#include "runtime/library_check.hpp"

namespace longnet::detail {

[[noreturn]] inline void throw_nccl_failure(ncclResult_t code, const char* statement,
                                            const char* file, int line,
                                            std::string_view context = {}) {
  std::string message = std::string("NCCL: ") + ncclGetErrorString(code);
  const char* last = ncclGetLastError(nullptr);
  if (last != nullptr && last[0] != '\0') message += std::string(" (") + last + ")";
  throw_library_failure(message, statement, file, line, context);
}

}  // namespace longnet::detail

#define LONGNET_NCCL_CHECK(call, ...)                                             \
  do {                                                                            \
    const ncclResult_t longnet_nccl_code_ = (call);                               \
    if (longnet_nccl_code_ != ncclSuccess)                                        \
      ::longnet::detail::throw_nccl_failure(longnet_nccl_code_, #call, __FILE__,  \
                                            __LINE__ __VA_OPT__(, ) __VA_ARGS__); \
  } while (false)
