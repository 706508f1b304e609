// The one case list of the dilated-attention op, run on every backend: the CPU kernels
// (every instruction-set copy) in test_dilated_attention_cpu.cpp, the CUDA kernels (every
// input dtype) in test_dilated_attention_cuda.cpp. A backend that cannot run a case says
// why through DilatedAttentionOp::supports, and the test reports it skipped with that
// reason (the CUDA kernels are compiled for head dims 32, 64 and 128 only), never passed.
//
// A curated grid, not a cartesian product: each line is there for a reason given beside
// it. The long cases (N = 3000, 4096) keep H and B small to stay inside the CI budget.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "kernels/dilated_attention.hpp"
#include "tests/reference/dense_attention_reference.hpp"

namespace longnet::test {

struct AttentionCase {
  AttentionShape shape;
  DilatedAttentionConfig config;
};

inline void PrintTo(const AttentionCase& c, std::ostream* os) {
  *os << c.shape.describe() << " " << c.config.describe();
}

inline std::string case_name(const AttentionCase& c) {
  return reference::case_name(c.shape, c.config);
}

inline std::vector<AttentionCase> attention_cases() {
  using HO = HeadOffsets;
  constexpr bool kCausal = true, kNonCausal = false;
  const auto make = [](AttentionShape shape, std::vector<int64_t> w, std::vector<int64_t> r,
                       bool causal, HeadOffsets scheme,
                       std::optional<double> scale = std::nullopt) {
    return AttentionCase{shape, DilatedAttentionConfig::from_lists(w, r, causal, scheme, scale)};
  };
  return {
      // ---- tiny and degenerate ----
      make({1, 1, 1, 32}, {1}, {1}, kNonCausal, HO::interleaved),  // one token
      // N = 1, grouped H=3 r=2: head 2 has offset 1 and no row at all.
      make({2, 1, 3, 64}, {4}, {2}, kCausal, HO::grouped),
      // 7 = 3 + 3 + 1: short last segment, holding no row of head 1 (offset 1); a small
      // head dim and one the CUDA kernels have.
      make({1, 7, 2, 8}, {3}, {2}, kCausal, HO::interleaved),
      make({1, 7, 2, 32}, {3}, {2}, kCausal, HO::interleaved),
      make({2, 7, 3, 16}, {16}, {3}, kNonCausal, HO::grouped),   // w > N, r = H
      make({2, 7, 3, 128}, {16}, {3}, kNonCausal, HO::grouped),  // the same at D = 128
      make({1, 7, 1, 24}, {8}, {1}, kCausal, HO::interleaved),   // dense, odd D
      make({1, 7, 4, 64}, {2, 4, 8}, {1, 2, 4}, kCausal, HO::grouped),
      // ---- N = 1000: tile edges (128-row query blocks, 64-row key tiles) fall mid-set ----
      make({1, 1000, 3, 64}, {256, 1024}, {3, 1}, kCausal, HO::grouped),
      // 333 is not a multiple of 7, 1000 = 3 * 333 + 1.
      make({1, 1000, 2, 128}, {100, 333}, {4, 7}, kNonCausal, HO::interleaved),
      // Rows no pattern selects: (i mod 32) mod 3 != h mod 3 and (i mod 96) mod 2 != h mod 2.
      make({2, 1000, 4, 32}, {32, 96}, {3, 2}, kCausal, HO::interleaved),
      // The same with grouped offsets and H = 5 (not a multiple of 3 or 2).
      make({1, 1000, 5, 64}, {32, 96}, {3, 2}, kNonCausal, HO::grouped),
      make({1, 1000, 1, 64}, {1000}, {1}, kNonCausal, HO::interleaved),  // plain, w = N
      make({1, 1000, 2, 64}, {2048}, {1}, kCausal, HO::interleaved),     // plain, w > N
      // The same pattern twice: each key counted twice, mixture weights 1/2 each.
      make({1, 1000, 3, 32}, {64, 64}, {2, 2}, kCausal, HO::grouped),
      make({1, 1000, 2, 24}, {128, 512, 1000}, {1, 4, 16}, kCausal, HO::interleaved),
      // r = w: one row per offset per segment, which attends only itself (o = v,
      // dq = dk = 0); offsets 3..9 have no head, so most rows are uncovered.
      make({1, 1000, 3, 32}, {10}, {10}, kNonCausal, HO::interleaved),
      // Segment-local dense with a last segment of one token.
      make({1, 1000, 4, 128}, {333}, {1}, kCausal, HO::interleaved),
      make({2, 1000, 2, 64}, {250, 500, 1000}, {1, 2, 4}, kNonCausal, HO::grouped),
      // Explicit scales: a small one, and a large one (scores ~ N(0, 64)) that makes
      // the softmax peaked and exercises the running-max rescaling.
      make({1, 1000, 1, 64}, {100}, {1}, kNonCausal, HO::interleaved, 0.05),
      make({1, 1000, 2, 64}, {128, 1000}, {1, 3}, kCausal, HO::grouped, 1.0),
      // ---- long sequences, few heads ----
      make({1, 3000, 1, 64}, {1024, 3000}, {2, 8}, kCausal, HO::interleaved),
      make({1, 3000, 1, 128}, {2048}, {1}, kNonCausal, HO::grouped),  // last segment 952
      make({1, 3000, 2, 16}, {750, 1500, 3000}, {1, 2, 4}, kCausal, HO::interleaved),
      make({1, 4096, 2, 32}, {512, 4096}, {1, 4}, kCausal, HO::grouped),
      // r = 5 with H = 3: offsets 3 and 4 have no head, so some rows are uncovered.
      make({1, 4096, 3, 64}, {1024, 2048}, {3, 5}, kNonCausal, HO::interleaved),
      make({1, 4096, 1, 64}, {4096}, {1}, kCausal, HO::interleaved),  // plain causal
      // ---- tile edges exactly: M = 128 = one query block = two key tiles ----
      make({1, 256, 2, 32}, {128}, {1}, kCausal, HO::interleaved),
      make({1, 512, 2, 32}, {512}, {4}, kNonCausal, HO::grouped),   // no masked tile
      make({1, 512, 2, 128}, {512}, {4}, kNonCausal, HO::grouped),  // the same at D = 128
      // ---- head dims far from the vector width: 1, 3 (with H = 7), 256 ----
      make({2, 130, 2, 1}, {65}, {1}, kNonCausal, HO::interleaved),
      make({1, 129, 7, 3}, {129, 43}, {1, 7}, kCausal, HO::grouped),
      make({1, 200, 1, 256}, {200}, {1}, kCausal, HO::interleaved),
      // A very peaked softmax (scores ~ N(0, 1024)): the gradient bound widens with |lse|.
      make({1, 300, 1, 64}, {300}, {1}, kNonCausal, HO::interleaved, 4.0),
      // ---- grouped-query attention: k, v with Hkv heads, query head h reads h / (H / Hkv) ----
      // H = 6 over Hkv = 2 and 3; r = 4 does not divide H (offsets differ within a group).
      make({1, 1000, 6, 32, 2}, {64, 256, 1000}, {1, 4, 16}, kCausal, HO::grouped),
      make({2, 300, 6, 64, 3}, {100, 300}, {4, 7}, kNonCausal, HO::interleaved),
      // Multi-query (Hkv = 1), a short last segment, and rows no pattern selects.
      make({1, 7, 4, 8, 1}, {3}, {2}, kCausal, HO::interleaved),
      make({1, 1000, 4, 128, 1}, {32, 96}, {3, 2}, kCausal, HO::grouped),
  };
}

}  // namespace longnet::test
