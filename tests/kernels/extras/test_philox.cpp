// Philox4x32-10 and the dropout decision built on it (kernels/philox.hpp).
//
// The generator is checked against the known-answer vectors Random123 publishes for
// philox4x32_10 (its kat_vectors file); the dropout decision against its definition
// u = (x >> 8) 2^-24 >= p, its rate against the binomial law, and the key derivation for
// sensitivity to every argument.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <set>

#include "kernels/philox.hpp"

namespace longnet {
namespace {

struct KnownAnswer {
  Philox4x32 counter;
  uint32_t key0, key1;
  Philox4x32 expected;
};

TEST(Philox4x32_10, ReproducesRandom123KnownAnswers) {
  const KnownAnswer answers[] = {
      {{{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}}},
      {{{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}},
       0xffffffff,
       0xffffffff,
       {{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}}},
      {{{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}},
       0xa4093822,
       0x299f31d0,
       {{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}}},
  };
  for (const KnownAnswer& a : answers) {
    const Philox4x32 got = philox4x32_10(a.counter, a.key0, a.key1);
    for (int w = 0; w < 4; ++w) {
      EXPECT_EQ(got.word[w], a.expected.word[w])
          << "word " << w << " for counter " << std::hex << a.counter.word[0] << " key " << a.key0;
    }
  }
}

TEST(DropoutBits, CounterIsQueryTokenThenKeyTokenAndKeyIsLowWordFirst) {
  const int64_t m = (int64_t{5} << 32) | 7, n = (int64_t{3} << 32) | 11;
  const uint64_t key = (uint64_t{0x12345678} << 32) | 0x9abcdef0u;
  const Philox4x32 counter{{7, 5, 11, 3}};
  EXPECT_EQ(dropout_bits(key, m, n), philox4x32_10(counter, 0x9abcdef0u, 0x12345678u).word[0]);
}

TEST(DropoutThreshold, IntegerComparisonIsExactlyUAtLeastP) {
  // Every 24-bit value against probabilities on, next to and between the grid points.
  const float probabilities[] = {
      0.0f, 0x1p-24f, 0.1f, 0.25f, 0.3f, 0.5f, 0.75f, 0.9f, std::nextafter(0.5f, 1.0f)};
  for (float p : probabilities) {
    const uint32_t threshold = dropout_threshold(p);
    for (uint32_t top : {0u, 1u, threshold - 1, threshold, threshold + 1, (1u << 24) - 1}) {
      if (top >= (1u << 24)) continue;
      const double u = static_cast<double>(top) * 0x1p-24;
      EXPECT_EQ(top >= threshold, u >= static_cast<double>(p)) << "p " << p << " top " << top;
    }
  }
  EXPECT_EQ(dropout_threshold(0.0f), 0u) << "p = 0 must keep every pair";
}

TEST(DropoutKeep, DropRateIsWithinFiveSigmaOfP) {
  // n pairs from one task: the dropped count is Binomial(n, p) if the bits are uniform.
  const uint64_t key = dropout_task_key(dropout_stream_key(2024, 7, 3, 1, 0), 0);
  const int64_t side = 1000;  // n = 10^6 pairs, sigma ~ 5e-4 at p = 0.5
  for (float p : {0.1f, 0.5f, 0.9f}) {
    const uint32_t threshold = dropout_threshold(p);
    int64_t dropped = 0;
    for (int64_t m = 0; m < side; ++m) {
      for (int64_t n = 0; n < side; ++n)
        dropped += !dropout_keep(key, 3 * m + 5, 3 * n + 5, threshold);
    }
    const double count = static_cast<double>(side * side);
    const double sigma = std::sqrt(static_cast<double>(p) * (1.0 - p) / count);
    EXPECT_NEAR(static_cast<double>(dropped) / count, static_cast<double>(p), 5 * sigma)
        << "p " << p;
  }
}

TEST(DropoutKeep, TransposedPairsAreIndependent) {
  // (m, n) and (n, m) are different counters: the mask must not be symmetric.
  const uint64_t key = dropout_stream_key(1, 2, 3, 4, 5);
  const uint32_t threshold = dropout_threshold(0.5f);
  int64_t agree = 0, pairs = 0;
  for (int64_t m = 0; m < 300; ++m) {
    for (int64_t n = m + 1; n < 300; ++n) {
      agree += dropout_keep(key, m, n, threshold) == dropout_keep(key, n, m, threshold);
      ++pairs;
    }
  }
  const double rate = static_cast<double>(agree) / static_cast<double>(pairs);
  EXPECT_NEAR(rate, 0.5, 5 * 0.5 / std::sqrt(static_cast<double>(pairs)));
}

TEST(DropoutKeys, EveryArgumentChangesTheKey) {
  std::set<uint64_t> keys;
  const uint64_t base = dropout_stream_key(42, 1000, 6, 3, 2);
  keys.insert(base);
  keys.insert(dropout_stream_key(43, 1000, 6, 3, 2));
  keys.insert(dropout_stream_key(42, 1001, 6, 3, 2));
  keys.insert(dropout_stream_key(42, 1000, 7, 3, 2));
  keys.insert(dropout_stream_key(42, 1000, 6, 4, 2));
  keys.insert(dropout_stream_key(42, 1000, 6, 3, 3));
  // Swapped layer and head must not collide either.
  keys.insert(dropout_stream_key(42, 1000, 3, 6, 2));
  keys.insert(dropout_task_key(base, 0));
  keys.insert(dropout_task_key(base, 1));
  EXPECT_EQ(keys.size(), 9u) << "two argument lists produced the same key";
  EXPECT_EQ(dropout_stream_key(42, 1000, 6, 3, 2), base) << "keys must be a pure function";
}

}  // namespace
}  // namespace longnet
