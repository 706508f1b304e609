// LONGNET_MPI_CHECK(call[, context]): evaluate an MPI call and throw longnet::Error when
// it does not return MPI_SUCCESS. The message holds the statement, file:line,
// MPI_Error_string of the code, the optional context (a std::string_view, e.g.
// "communicator 'world'") and the rank and host (comm/library_check.hpp).
//
// MPI only returns error codes on communicators whose error handler is
// MPI_ERRORS_RETURN; the default, MPI_ERRORS_ARE_FATAL, aborts the job from inside the
// call. MpiSession sets MPI_ERRORS_RETURN on MPI_COMM_WORLD and every MpiCommunicator
// on its own communicator, so every check here can fire.
#pragma once

#include "comm/library_check.hpp"

#include <mpi.h>

#include <string>
#include <string_view>

namespace longnet::detail {

// MPI_Error_string of an MPI error code, e.g. "MPI_ERR_ROOT: invalid root".
std::string mpi_error_string(int code);

[[noreturn]] void throw_mpi_failure(int code, const char* statement, const char* file, int line,
                                    std::string_view context = {});

}  // namespace longnet::detail

#define LONGNET_MPI_CHECK(call, ...)                                             \
  do {                                                                           \
    const int longnet_mpi_code_ = (call);                                        \
    if (longnet_mpi_code_ != MPI_SUCCESS)                                        \
      ::longnet::detail::throw_mpi_failure(longnet_mpi_code_, #call, __FILE__,   \
                                           __LINE__ __VA_OPT__(, ) __VA_ARGS__); \
  } while (false)
