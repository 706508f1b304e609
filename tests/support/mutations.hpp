// The byte mutations of the fuzz tests (tests/launch/test_fuzz_inputs.cpp,
// tests/model/training/test_fuzz_checkpoints.cpp), drawn from the caller's seeded
// generator so that a failure replays.
#pragma once

#include <cstddef>
#include <random>
#include <string>

namespace longnet::test {

// Flips 1 to 16 random bits.
inline std::string flip_bits(std::string bytes, std::mt19937_64& rng) {
  const int flips = std::uniform_int_distribution<int>(1, 16)(rng);
  for (int i = 0; i < flips && !bytes.empty(); ++i) {
    const std::size_t at = std::uniform_int_distribution<std::size_t>(0, bytes.size() - 1)(rng);
    bytes[at] = static_cast<char>(bytes[at] ^ (1 << std::uniform_int_distribution<int>(0, 7)(rng)));
  }
  return bytes;
}

// Keeps a random prefix (possibly empty, possibly all).
inline std::string truncate(std::string bytes, std::mt19937_64& rng) {
  bytes.resize(std::uniform_int_distribution<std::size_t>(0, bytes.size())(rng));
  return bytes;
}

}  // namespace longnet::test
