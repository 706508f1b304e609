// process_identity() and the message format of the library check macros.
#include "runtime/library_check.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <utility>

#include "runtime/error.hpp"

namespace longnet {
namespace {

// Set by the MPI session; -1 before MPI_Init and after MPI_Finalize.
std::atomic<int> registered_rank{-1};
std::atomic<int> registered_size{-1};

std::string host_name() {
  std::array<char, 256> name{};
  if (gethostname(name.data(), name.size() - 1) != 0) return "unknown-host";
  return name.data();
}

// The launcher's rank and size, for failures before MPI_Init or without MPI.
std::pair<const char*, const char*> launcher_rank() {
  static constexpr std::array<std::pair<const char*, const char*>, 4> kVariables{{
      {"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"},
      {"PMIX_RANK", "PMIX_SIZE"},
      {"SLURM_PROCID", "SLURM_NTASKS"},
      {"PMI_RANK", "PMI_SIZE"},
  }};
  for (const auto& [rank, size] : kVariables) {
    const char* r = std::getenv(rank);
    if (r != nullptr && r[0] != '\0') {
      const char* s = std::getenv(size);
      return {r, s != nullptr && s[0] != '\0' ? s : "?"};
    }
  }
  return {"?", "?"};
}

}  // namespace

void register_process_rank(int rank, int size) {
  registered_size = size;
  registered_rank = rank;
}

std::string process_identity() {
  const int rank = registered_rank;
  if (rank >= 0) return fmt::format("rank {}/{} {}", rank, registered_size.load(), host_name());
  const auto [launcher, size] = launcher_rank();
  return fmt::format("rank {}/{} {}", launcher, size, host_name());
}

namespace detail {

void throw_library_failure(std::string_view library_message, const char* statement,
                           const char* file, int line, std::string_view context) {
  if (context.empty()) {
    fail("{} failed at {}:{}: {} [{}]", statement, file, line, library_message, process_identity());
  }
  fail("{}: {} failed at {}:{}: {} [{}]", context, statement, file, line, library_message,
       process_identity());
}

void throw_error(const std::string& message) { throw Error(message); }

}  // namespace detail
}  // namespace longnet
