// The CUDA and NCCL specialisations of the library failure path (comm/cuda_check.hpp).
#include "comm/cuda_check.hpp"

#include <fmt/format.h>

#include <string>

namespace longnet::detail {

void throw_cuda_failure(cudaError_t code, const char* statement, const char* file, int line,
                        std::string_view context) {
  throw_library_failure(fmt::format("{}: {}", cudaGetErrorName(code), cudaGetErrorString(code)),
                        statement, file, line, context);
}

void throw_nccl_failure(ncclResult_t code, const char* statement, const char* file, int line,
                        std::string_view context) {
  std::string message = ncclGetErrorString(code);
  // The last error of this thread in detail ("NCCL WARN ..."), when NCCL kept one.
  const char* detail = ncclGetLastError(nullptr);
  if (detail != nullptr && detail[0] != '\0') message += fmt::format(" ({})", detail);
  throw_library_failure(message, statement, file, line, context);
}

}  // namespace longnet::detail
