#include "bench/timing.hpp"

#include <fmt/format.h>
#include <omp.h>

#include <fstream>

namespace longnet::bench {

std::string machine_description() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line, model = "unknown CPU";
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  }
  return fmt::format("{}, {} threads", model, omp_get_max_threads());
}

}  // namespace longnet::bench
