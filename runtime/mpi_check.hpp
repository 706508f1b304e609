// LONGNET_MPI_CHECK(call[, context]): an MPI call that does not return MPI_SUCCESS
// becomes a longnet::Error through the one library failure path
// (runtime/library_check.hpp), with MPI_Error_string of the code and, when given, the
// context (a std::string_view, e.g. "communicator 'world'").
//
// MPI only returns error codes on communicators whose error handler is
// MPI_ERRORS_RETURN; the default, MPI_ERRORS_ARE_FATAL, aborts the job from inside the
// call. MpiSession sets MPI_ERRORS_RETURN on MPI_COMM_WORLD and every MpiCommunicator
// on its own communicator, so every check can fire.
#pragma once

#include <mpi.h>

#include <array>
#include <string>
#include <string_view>

#include "runtime/library_check.hpp"

namespace longnet::detail {

// MPI_Error_string of an MPI error code, e.g. "MPI_ERR_ROOT: invalid root".
inline std::string mpi_error_string(int code) {
  std::array<char, MPI_MAX_ERROR_STRING> text{};
  int length = 0;
  if (MPI_Error_string(code, text.data(), &length) != MPI_SUCCESS) {
    return "MPI error code " + std::to_string(code);
  }
  return std::string(text.data(), static_cast<std::size_t>(length));
}

[[noreturn]] inline void throw_mpi_failure(int code, const char* statement, const char* file,
                                           int line, std::string_view context = {}) {
  throw_library_failure(mpi_error_string(code), statement, file, line, context);
}

}  // namespace longnet::detail

#define LONGNET_MPI_CHECK(call, ...)                                             \
  do {                                                                           \
    const int longnet_mpi_code_ = (call);                                        \
    if (longnet_mpi_code_ != MPI_SUCCESS)                                        \
      ::longnet::detail::throw_mpi_failure(longnet_mpi_code_, #call, __FILE__,   \
                                           __LINE__ __VA_OPT__(, ) __VA_ARGS__); \
  } while (false)
