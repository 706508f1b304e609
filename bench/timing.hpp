// Wall-clock timing for benchmarks: warm-up runs, then the median of repeated runs.
#pragma once

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

namespace longnet::bench {

template <typename Fn>
double median_ms(Fn&& fn, int warmup, int repeats) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> times;
  for (int i = 0; i < std::max(repeats, 1); ++i) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    times.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
            .count());
  }
  std::sort(times.begin(), times.end());
  const std::size_t mid = times.size() / 2;
  return times.size() % 2 ? times[mid] : 0.5 * (times[mid - 1] + times[mid]);
}

// "AMD EPYC, 2 threads": the processor model from /proc/cpuinfo and OpenMP's thread count.
std::string machine_description();

}  // namespace longnet::bench
