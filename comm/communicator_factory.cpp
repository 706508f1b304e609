#include "comm/communicator_factory.hpp"

#include "comm/self_communicator.hpp"
#include "longnet/config.hpp"
#include "runtime/error.hpp"

#ifdef LONGNET_HAVE_MPI
#include "comm/mpi_communicator.hpp"
#endif

#ifdef LONGNET_HAVE_NCCL
#include "comm/nccl_communicator.hpp"
#endif

namespace longnet {

std::unique_ptr<Communicator> make_communicator(std::string_view backend, std::string name) {
  if (backend == "self") return std::make_unique<SelfCommunicator>(std::move(name));
  if (backend == "mpi") {
#ifdef LONGNET_HAVE_MPI
    return MpiCommunicator::world(std::move(name));
#else
    fail(
        "communicator backend 'mpi': this build has no MPI (configured with LONGNET_MPI=OFF); "
        "use 'self' for one process, or rebuild with LONGNET_MPI=ON");
#endif
  }
  if (backend == "nccl") {
#ifdef LONGNET_HAVE_NCCL
    // The MPI world only bootstraps NCCL (the unique id); the node split picks the device.
    auto bootstrap = MpiCommunicator::world(name + " bootstrap");
    const auto node = bootstrap->split_by_node(name + " node");
    return NcclCommunicator::create(*bootstrap, node->rank(), std::move(name));
#else
    fail(
        "communicator backend 'nccl': this build has no NCCL (configured without "
        "LONGNET_CUDA, or NCCL was not found); use 'mpi' or 'self'");
#endif
  }
  fail("unknown communicator backend '{}': use mpi, nccl or self", backend);
}

std::unique_ptr<Communicator> make_world_communicator(std::string name) {
#ifdef LONGNET_HAVE_MPI
  return make_communicator("mpi", std::move(name));
#else
  return make_communicator("self", std::move(name));
#endif
}

}  // namespace longnet
