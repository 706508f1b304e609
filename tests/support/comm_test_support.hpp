// What the communicator tests share: rank-dependent values every rank can compute for
// every other rank, per-rank count layouts with zeros and awkward sizes, the expected
// results computed from them independently of any communicator, and receive buffers
// with guard regions that catch writes outside the span.
#pragma once

#include "comm/element_type.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <span>
#include <string>
#include <vector>

namespace longnet::test {

// The value rank `rank` holds at element i: distinct per rank and element, and small
// integers, so that sums over 4 ranks are exact in every element type (int8 and uint8
// included) and no back end's order of additions can change them.
template <CommElement T>
T pattern(int rank, std::int64_t i) {
  if constexpr (sizeof(T) == 1)
    return static_cast<T>((rank * 7 + i * 3) % 31);
  else
    return static_cast<T>(rank * 1000 + (i * 13) % 997);
}

template <CommElement T>
std::vector<T> pattern_block(int rank, std::int64_t count, std::int64_t first = 0) {
  std::vector<T> out(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i)
    out[static_cast<std::size_t>(i)] = pattern<T>(rank, first + i);
  return out;
}

// op over ranks 0..size-1 of pattern(r, i), as every rank computes it alone.
template <CommElement T>
T reduced_pattern(int size, std::int64_t i, ReduceOp op) {
  T value = pattern<T>(0, i);
  for (int r = 1; r < size; ++r) {
    const T x = pattern<T>(r, i);
    switch (op) {
      case ReduceOp::sum:
        value = static_cast<T>(value + x);
        break;
      case ReduceOp::max:
        value = std::max(value, x);
        break;
      case ReduceOp::min:
        value = std::min(value, x);
        break;
    }
  }
  return value;
}

// Per-rank counts, named for test output. Zeros on some ranks, odd sizes, one rank only.
struct CountLayout {
  std::string name;
  std::vector<std::int64_t> (*counts)(int size);
};

inline std::vector<CountLayout> count_layouts() {
  return {
      {"equal 97", [](int size) { return std::vector<std::int64_t>(size, 97); }},
      {"all zero", [](int size) { return std::vector<std::int64_t>(size, 0); }},
      {"rank 0 empty",
       [](int size) {
         std::vector<std::int64_t> c(size);
         for (int r = 0; r < size; ++r) c[r] = r == 0 ? 0 : 17 * r + 3;
         return c;
       }},
      {"37 0 101 1",
       [](int size) {
         const std::int64_t cycle[] = {37, 0, 101, 1};
         std::vector<std::int64_t> c(size);
         for (int r = 0; r < size; ++r) c[r] = cycle[r % 4];
         return c;
       }},
      {"last rank only",
       [](int size) {
         std::vector<std::int64_t> c(size, 0);
         c.back() = 25;
         return c;
       }},
  };
}

inline std::vector<std::int64_t> offsets_of(std::span<const std::int64_t> counts) {
  std::vector<std::int64_t> offsets(counts.size(), 0);
  std::exclusive_scan(counts.begin(), counts.end(), offsets.begin(), std::int64_t{0});
  return offsets;
}

inline std::int64_t sum_of(std::span<const std::int64_t> counts) {
  return std::accumulate(counts.begin(), counts.end(), std::int64_t{0});
}

// A receive buffer of n elements between two guard regions, all poisoned with a value
// no pattern produces: unwritten elements and writes outside the span both show.
template <CommElement T>
class GuardedBuffer {
 public:
  static constexpr std::size_t kGuard = 16;
  static constexpr T kPoison = static_cast<T>(sizeof(T) == 1 ? 99 : 77777);

  explicit GuardedBuffer(std::int64_t n)
      : n_(static_cast<std::size_t>(n)), storage_(n_ + 2 * kGuard, kPoison) {}

  std::span<T> span() { return {storage_.data() + kGuard, n_}; }
  std::span<const T> values() const { return {storage_.data() + kGuard, n_}; }
  bool guards_intact() const {
    const auto poisoned = [](T x) { return x == kPoison; };
    return std::all_of(storage_.begin(), storage_.begin() + kGuard, poisoned) &&
           std::all_of(storage_.end() - kGuard, storage_.end(), poisoned);
  }

 private:
  std::size_t n_;
  std::vector<T> storage_;
};

// Element-by-element comparison that reports the first few mismatches with their index.
template <CommElement T>
::testing::AssertionResult same_values(std::span<const T> actual, std::span<const T> expected) {
  if (actual.size() != expected.size())
    return ::testing::AssertionFailure()
           << "sizes differ: " << actual.size() << " vs " << expected.size();
  int shown = 0;
  auto failure = ::testing::AssertionFailure();
  for (std::size_t i = 0; i < actual.size(); ++i) {
    if (actual[i] == expected[i]) continue;
    if (shown++ < 5)
      failure << "[" << i << "] = " << +actual[i] << ", expected " << +expected[i] << "; ";
  }
  if (shown == 0) return ::testing::AssertionSuccess();
  return failure << shown << " of " << actual.size() << " elements differ";
}

// Typed-test names that say the element type: Collectives/float32.BroadcastFrom...
struct ElementTypeName {
  template <typename T>
  static std::string GetName(int) {
    return std::string(element_type_name(element_type_v<T>));
  }
};

}  // namespace longnet::test
