// process_identity() and the shared message format of the library check macros.
#include "comm/library_check.hpp"

#include "runtime/error.hpp"

#include <fmt/format.h>
#include <mpi.h>
#include <unistd.h>

#include <array>

namespace longnet {
namespace {

bool mpi_is_running() {
  int initialized = 0;
  int finalized = 0;
  // Both may be called at any time, even before MPI_Init; they cannot fail.
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  return initialized != 0 && finalized == 0;
}

std::string host_name() {
  std::array<char, 256> name{};
  if (gethostname(name.data(), name.size() - 1) != 0) return "unknown-host";
  return name.data();
}

}  // namespace

std::string process_identity() {
  if (!mpi_is_running()) return fmt::format("rank ?/? {}", host_name());
  int rank = -1;
  int size = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return fmt::format("rank {}/{} {}", rank, size, host_name());
}

namespace detail {

void throw_library_failure(std::string_view library_message, const char* statement,
                           const char* file, int line, std::string_view context) {
  if (context.empty())
    fail("{} failed at {}:{}: {} [{}]", statement, file, line, library_message, process_identity());
  fail("{} failed at {}:{}: {} ({}) [{}]", statement, file, line, library_message, context,
       process_identity());
}

}  // namespace detail
}  // namespace longnet
