// The one way launch code gets its world: a communicator by back-end name.
#pragma once

#include "comm/communicator.hpp"

#include <memory>
#include <string>
#include <string_view>

namespace longnet {

// "mpi": every rank of the MPI job (MpiCommunicator::world; host memory).
// "nccl": the same ranks over NCCL (device memory), each on the CUDA device of its rank
//   within its node; collective; an Error where the build has no NCCL.
// "self": this process alone (SelfCommunicator; host memory), for one-process runs.
// Any other name is an Error listing these.
std::unique_ptr<Communicator> make_communicator(std::string_view backend,
                                                std::string name = "world");

// The job's host-memory world, the one launch code starts from: "mpi" in a build with
// MPI (one rank without mpirun), "self" in a build without.
std::unique_ptr<Communicator> make_world_communicator(std::string name = "world");

}  // namespace longnet
