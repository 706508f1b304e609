// The attention problem every attention benchmark takes from its command line: sizes,
// patterns, causality, head offsets. Each benchmark sets its own defaults.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/dilated_attention_config.hpp"

namespace longnet::bench {

struct ProblemOptions {
  std::vector<int64_t> tokens;  // sequence lengths N, one table row (or block) each
  int64_t batch = 1, heads = 8, head_dim = 64;
  std::vector<int64_t> segments, rates;
  bool non_causal = false;
  std::string offsets = "interleaved";

  DilatedAttentionConfig config() const {
    return DilatedAttentionConfig::from_lists(segments, rates, !non_causal,
                                              parse_head_offsets(offsets));
  }
  AttentionShape shape(int64_t n) const { return {batch, n, heads, head_dim}; }
};

inline void add_problem_options(CLI::App& app, ProblemOptions& p) {
  app.add_option("--tokens,-n", p.tokens, "sequence lengths N")->delimiter(',');
  app.add_option("--batch,-b", p.batch, "batch size B");
  app.add_option("--heads", p.heads, "heads H");
  app.add_option("--head-dim,-d", p.head_dim, "head dimension D");
  app.add_option("--segments,-w", p.segments, "segment lengths w")->delimiter(',');
  app.add_option("--rates,-r", p.rates, "dilation rates r, one per segment length")->delimiter(',');
  app.add_flag("--non-causal", p.non_causal, "non-causal attention (default causal)");
  app.add_option("--offsets", p.offsets, "head offsets: interleaved or grouped")
      ->capture_default_str();
}

}  // namespace longnet::bench
