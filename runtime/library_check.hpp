// The one failure path for the C libraries longnet calls: CUDA, cuBLAS, NCCL, MPI, HDF5.
//
// Each library has a check macro in runtime/ (LONGNET_CUDA_CHECK, LONGNET_CUBLAS_CHECK,
// LONGNET_NCCL_CHECK, LONGNET_MPI_CHECK in <library>_check.hpp; LONGNET_HDF5 for the
// HDF5 sources) that turns a failed call into a longnet::Error through
// throw_library_failure, so that every such error reads the same way and names what is
// needed to find it in the logs of a many-rank job:
//
//   communicator 'world': MPI_Bcast(...) failed at comm/mpi_communicator.cpp:120:
//   MPI_ERR_ROOT: invalid root [rank 1/4 node17]
//
// What we were doing (when the caller says), the statement, file:line, the library's own
// error, and which process: its rank in the job and its host.
//
// Plain C++ without fmt, so CUDA sources (.cu) include it too. The libraries' headers
// are included only by the check header of that library: runtime/ links none of them.
#pragma once

#include <string>
#include <string_view>

namespace longnet {

// "rank 1/4 node17": this process's rank in the job and its host. The rank is the one
// the MPI session registered, else the launcher's (Open MPI, PMIx, Slurm, MPICH
// variables), else "?/?".
std::string process_identity();

// Called by the MPI session once MPI_COMM_WORLD is up (runtime/ does not link MPI), and
// with rank -1 when it finalizes.
void register_process_rank(int rank, int size);

namespace detail {

[[noreturn]] void throw_library_failure(std::string_view library_message, const char* statement,
                                        const char* file, int line, std::string_view context = {});

// Throws longnet::Error(message): for CUDA sources, which do not include runtime/error.hpp
// (fmt).
[[noreturn]] void throw_error(const std::string& message);

}  // namespace detail
}  // namespace longnet
