// The statistics the benchmarks report over repeated measurements, defined once.
#pragma once

#include <algorithm>
#include <numeric>
#include <vector>

namespace longnet::bench {

// The middle value; for an even count, the mean of the two middle values. Not empty.
inline double median(std::vector<double> values) {
  std::ranges::sort(values);
  const std::size_t mid = values.size() / 2;
  return values.size() % 2 ? values[mid] : 0.5 * (values[mid - 1] + values[mid]);
}

// Not empty.
inline double mean(const std::vector<double>& values) {
  return std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
}

}  // namespace longnet::bench
