#include "launch/thread_limit.hpp"

#include <fmt/format.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <string>

namespace longnet {
namespace {

int cpus_online() { return static_cast<int>(std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN))); }

}  // namespace

int openmp_thread_limit() {
  return std::max(1, std::min(omp_get_thread_limit(), kThreadsPerCpu * cpus_online()));
}

CLI::Validator openmp_threads_validator() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        int threads = 0;
        try {
          std::size_t used = 0;
          threads = std::stoi(value, &used);
          if (used != value.size()) return fmt::format("'{}' is not an integer", value);
        } catch (const std::exception&) {
          return fmt::format("'{}' is not an integer in range", value);
        }
        const int limit = openmp_thread_limit();
        if (threads < 1 || threads > limit) {
          return fmt::format(
              "{} threads: use 1 to {} (this machine allows {} per CPU x {} CPUs "
              "online, OpenMP's thread limit is {})",
              value, limit, kThreadsPerCpu, cpus_online(), omp_get_thread_limit());
        }
        return {};
      },
      "INT in [1, the machine's thread limit]", "openmp_threads");
}

}  // namespace longnet
