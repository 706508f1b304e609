// Counter-based hashing: random-looking 64-bit values as a pure function of integers.
//
// The training data order is a function, not a stream: window (seed, step, group, row)
// always starts at the same token, so resuming at step s needs no saved generator state,
// and every rank of a sequence-parallel group computes the same windows without talking.
// splitmix_finalize is the SplitMix64 finaliser (Steele, Lea, Flood 2014): a bijection on
// 64-bit words whose output bits each depend on every input bit. (Named apart from
// kernels/philox.hpp's mix64, which adds the golden gamma first: two inline functions of
// one name and signature would break the one-definition rule.) hash_combine folds one more
// integer into a running hash; the golden-ratio increment keeps (a, 0) and (0, a) apart.
#pragma once

#include <cstdint>
#include <string_view>

namespace longnet {

constexpr uint64_t kGoldenGamma = 0x9E3779B97F4A7C15ULL;  // 2^64 / golden ratio, odd

constexpr uint64_t splitmix_finalize(uint64_t x) {
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

constexpr uint64_t hash_combine(uint64_t hash, uint64_t value) {
  return splitmix_finalize(hash + kGoldenGamma + splitmix_finalize(value));
}

// FNV-1a over bytes (e.g. a relative path), then mixed: a stable hash of a string that
// does not depend on std::hash, which may differ between standard libraries.
constexpr uint64_t hash_string(std::string_view text) {
  uint64_t h = 0xCBF29CE484222325ULL;  // FNV-1a 64-bit offset basis
  for (const char c : text) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001B3ULL;  // FNV-1a 64-bit prime
  }
  return splitmix_finalize(h);
}

// floor(hash * n / 2^64): a value in [0, n) from a uniform hash, without the bias of
// hash % n (Lemire 2019).
inline uint64_t scale_to(uint64_t hash, uint64_t n) {
  __extension__ typedef unsigned __int128 uint128;  // GCC and Clang; quiet under -Wpedantic
  return static_cast<uint64_t>((static_cast<uint128>(hash) * n) >> 64);
}

// A uniform double in [0, 1) from the top 53 bits of a hash.
constexpr double unit_interval(uint64_t hash) {
  return static_cast<double>(hash >> 11) * 0x1.0p-53;
}

}  // namespace longnet
