// Philox4x32-10, the counter-based generator of Salmon et al. 2011 ("Parallel random
// numbers: as easy as 1, 2, 3"), and the attention-dropout decision built on it.
//
// A counter-based generator maps (counter, key) to random bits with no state, so the
// dropout mask of a (query token, key token) pair is a pure function of the pair and a
// 64-bit key: the forward and the backward regenerate the same mask tile by tile, on
// the CPU and on the GPU alike, and the mask does not depend on how tokens are split
// across ranks or threads. Philox4x32-10 is ten rounds of two 32x32->64 multiplies
// (constants 0xD2511F53, 0xCD9E8D57) with a Weyl-sequence key schedule (bumps
// 0x9E3779B9, 0xBB67AE85); tests/attention_extras checks the published Random123
// known-answer vectors.
//
// The dropout decision for query token m and key token n (global positions) is
//   x = philox4x32_10({lo(m), hi(m), lo(n), hi(n)}, {lo(key), hi(key)})[0]
//   u = (x >> 8) * 2^-24 in [0, 1);   kept iff u >= p,
// evaluated as (x >> 8) >= ceil(p * 2^24), the same comparison in integers.
//
// The trap: the key must differ wherever masks should be independent (step, layer,
// head, pattern, batch), since the counter only carries the two token positions;
// dropout_stream_key and dropout_task_key below fold all of them in.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define LONGNET_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define LONGNET_HOST_DEVICE inline
#endif

namespace longnet {

struct Philox4x32 {
  uint32_t word[4];
};

constexpr uint32_t kPhiloxMultiplier0 = 0xD2511F53u;
constexpr uint32_t kPhiloxMultiplier1 = 0xCD9E8D57u;
constexpr uint32_t kPhiloxKeyBump0 = 0x9E3779B9u;  // golden ratio
constexpr uint32_t kPhiloxKeyBump1 = 0xBB67AE85u;  // sqrt(3) - 1
constexpr int kPhiloxRounds = 10;

// One Philox round: two 32x32->64 products, their halves swapped and mixed with the key.
LONGNET_HOST_DEVICE Philox4x32 philox_round(Philox4x32 c, uint32_t k0, uint32_t k1) {
  const uint64_t p0 = static_cast<uint64_t>(kPhiloxMultiplier0) * c.word[0];
  const uint64_t p1 = static_cast<uint64_t>(kPhiloxMultiplier1) * c.word[2];
  const auto hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
  const auto hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
  return {{hi1 ^ c.word[1] ^ k0, lo1, hi0 ^ c.word[3] ^ k1, lo0}};
}

// Philox4x32-10: ten rounds, the key bumped between consecutive rounds.
LONGNET_HOST_DEVICE Philox4x32 philox4x32_10(Philox4x32 counter, uint32_t key0, uint32_t key1) {
  for (int round = 0; round < kPhiloxRounds; ++round) {
    if (round > 0) {
      key0 += kPhiloxKeyBump0;
      key1 += kPhiloxKeyBump1;
    }
    counter = philox_round(counter, key0, key1);
  }
  return counter;
}

// The first output word for the pair (query token m, key token n) under `key`.
LONGNET_HOST_DEVICE uint32_t dropout_bits(uint64_t key, int64_t m, int64_t n) {
  const auto um = static_cast<uint64_t>(m), un = static_cast<uint64_t>(n);
  const Philox4x32 counter{{static_cast<uint32_t>(um), static_cast<uint32_t>(um >> 32),
                            static_cast<uint32_t>(un), static_cast<uint32_t>(un >> 32)}};
  return philox4x32_10(counter, static_cast<uint32_t>(key), static_cast<uint32_t>(key >> 32))
      .word[0];
}

// ceil(p * 2^24): a pair is kept iff (bits >> 8) >= this. p * 2^24 is exact in double
// (a float times a power of two), so the integer comparison is exactly u >= p.
LONGNET_HOST_DEVICE uint32_t dropout_threshold(float p) {
  return static_cast<uint32_t>(ceil(static_cast<double>(p) * 16777216.0));
}

// Whether the pair (m, n) survives dropout with `threshold` = dropout_threshold(p).
LONGNET_HOST_DEVICE bool dropout_keep(uint64_t key, int64_t m, int64_t n, uint32_t threshold) {
  return (dropout_bits(key, m, n) >> 8) >= threshold;
}

// The splitmix64 finaliser (Steele, Lea, Flood 2014): a bijection of 64-bit words whose
// every output bit depends on every input bit.
LONGNET_HOST_DEVICE uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// The dropout key of one (pattern, head) of one layer at one training step: each
// argument is absorbed by xor and followed by a full mix, so keys that differ in any
// argument are unrelated.
LONGNET_HOST_DEVICE uint64_t dropout_stream_key(uint64_t seed, uint64_t step, uint32_t layer,
                                                uint32_t head, uint32_t pattern) {
  uint64_t h = mix64(seed);
  h = mix64(h ^ step);
  h = mix64(h ^ ((static_cast<uint64_t>(layer) << 32) | head));
  return mix64(h ^ pattern);
}

// The key of one task: the stream key of its (pattern, head) with its batch index folded
// in, so the sequences of a batch get independent masks (the counter holds only token
// positions).
LONGNET_HOST_DEVICE uint64_t dropout_task_key(uint64_t stream_key, int64_t batch) {
  return mix64(stream_key ^ mix64(static_cast<uint64_t>(batch)));
}

}  // namespace longnet
