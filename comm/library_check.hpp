// The one failure path for the C libraries under the communicators (MPI, CUDA, NCCL).
//
// Each library has its own check macro (comm/mpi_check.hpp, comm/cuda_check.hpp) that
// turns a failed call into a longnet::Error through throw_library_failure, so that
// every such error reads the same way and names what is needed to find it in the logs
// of a many-rank job:
//
//   MPI_Bcast(...) failed at /src/longnet/comm/mpi_communicator.cpp:120:
//   MPI_ERR_ROOT: invalid root (communicator 'world') [rank 1/4 node17]
//
// The statement, file:line, the library's own error string, what we were doing (when
// the caller says), and which process: its rank in MPI_COMM_WORLD and its host.
#pragma once

#include <string>
#include <string_view>

namespace longnet {

// "rank 1/4 node17": this process's rank in MPI_COMM_WORLD and its host; "rank ?/?"
// before MPI_Init and after MPI_Finalize. Queried each time: no global state.
std::string process_identity();

namespace detail {

[[noreturn]] void throw_library_failure(std::string_view library_message, const char* statement,
                                        const char* file, int line, std::string_view context);

}  // namespace detail
}  // namespace longnet
