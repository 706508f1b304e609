// The one case list of the attention extras (relative position bias, attention dropout),
// run on every backend as tests/kernels/attention_cases.hpp is for the plain op: the CPU
// kernels on every ISA (test_attention_extras_cpu.cpp), the CUDA kernels in every dtype
// (test_attention_extras_cuda.cpp). A case a backend cannot run is skipped with
// DilatedAttentionOp::supports()'s reason (the CUDA kernels have head dims 32, 64, 128).
#pragma once

#include <fmt/format.h>

#include <cmath>
#include <ostream>
#include <string>
#include <vector>

#include "kernels/dilated_attention.hpp"
#include "tests/reference/dense_attention_reference.hpp"

namespace longnet::test {

struct ExtrasCase {
  AttentionShape shape;
  DilatedAttentionConfig config;
  bool bias = false;
  float dropout_p = 0;
};

inline void PrintTo(const ExtrasCase& c, std::ostream* os) {
  *os << c.shape.describe() << " " << c.config.describe() << (c.bias ? " bias" : "") << " dropout "
      << c.dropout_p;
}

inline std::string case_name(const ExtrasCase& c) {
  return reference::case_name(c.shape, c.config) + (c.bias ? "_bias" : "") +
         fmt::format("_drop{}", static_cast<int>(std::lround(c.dropout_p * 100)));
}

inline std::vector<ExtrasCase> extras_cases() {
  using HO = HeadOffsets;
  constexpr bool kCausal = true, kNonCausal = false, kBias = true, kNoBias = false;
  const auto make = [](AttentionShape shape, std::vector<int64_t> w, std::vector<int64_t> r,
                       bool causal, HeadOffsets scheme, bool bias, float dropout_p) {
    return ExtrasCase{shape, DilatedAttentionConfig::from_lists(w, r, causal, scheme), bias,
                      dropout_p};
  };
  return {
      // 7 = 3 + 3 + 1: a short last segment holding no row of head 1.
      make({1, 7, 2, 8}, {3}, {2}, kCausal, HO::interleaved, kBias, 0.0f),
      make({1, 7, 2, 8}, {3}, {2}, kCausal, HO::interleaved, kBias, 0.5f),
      make({1, 7, 2, 32}, {3}, {2}, kCausal, HO::interleaved, kBias, 0.5f),
      // Several patterns, tile edges mid-set, grouped offsets; each extra alone and both.
      make({1, 1000, 3, 64}, {256, 1024}, {3, 1}, kCausal, HO::grouped, kBias, 0.0f),
      make({1, 1000, 3, 64}, {256, 1024}, {3, 1}, kCausal, HO::grouped, kNoBias, 0.2f),
      make({1, 1000, 3, 64}, {256, 1024}, {3, 1}, kCausal, HO::grouped, kBias, 0.2f),
      // Non-causal, 1000 = 3 * 333 + 1 (last segment of one row), rates 4 and 7.
      make({1, 1000, 2, 32}, {100, 333}, {4, 7}, kNonCausal, HO::interleaved, kBias, 0.3f),
      make({1, 1000, 2, 128}, {100, 333}, {4, 7}, kNonCausal, HO::interleaved, kBias, 0.3f),
      // Rows no pattern selects, two batches (different masks).
      make({2, 1000, 4, 32}, {32, 96}, {3, 2}, kCausal, HO::interleaved, kBias, 0.1f),
      make({1, 1000, 5, 16}, {32, 96}, {3, 2}, kNonCausal, HO::grouped, kBias, 0.0f),
      // w > N: the bias vector (from w) is longer than any distance that occurs.
      make({1, 500, 2, 16}, {1024}, {2}, kNonCausal, HO::interleaved, kBias, 0.5f),
      make({1, 500, 2, 64}, {1024}, {2}, kNonCausal, HO::interleaved, kBias, 0.5f),
      // r = w: L = 1, every row attends only itself; the bias is one number. Head dim 8
      // keeps it off the CUDA kernels, whose delta = rowsum(dO o) is taken on o rounded
      // to the input type (as in FlashAttention) and leaves a rounding residue with
      // dropout that the naive baseline lacks; r = w / 2 (two keys per row) below is
      // their case, and r = w without dropout is in tests/kernels/attention_cases.hpp.
      make({1, 100, 3, 8}, {10}, {10}, kNonCausal, HO::interleaved, kBias, 0.4f),
      make({1, 100, 3, 32}, {10}, {5}, kNonCausal, HO::interleaved, kBias, 0.4f),
      // One long causal segment: many query blocks and key tiles, dbias from many steps.
      make({1, 1500, 1, 64}, {2048}, {1}, kCausal, HO::interleaved, kBias, 0.1f),
      make({1, 1500, 1, 128}, {2048}, {1}, kCausal, HO::interleaved, kBias, 0.1f),
      make({1, 1200, 2, 32}, {512, 1200}, {1, 2}, kNonCausal, HO::grouped, kBias, 0.25f),
      // Odd head dims, H = 7.
      make({1, 129, 7, 3}, {129, 43}, {1, 7}, kCausal, HO::grouped, kBias, 0.25f),
  };
}

}  // namespace longnet::test
