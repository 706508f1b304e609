#include "model/sequence_parallel_plan.hpp"

#include "runtime/error.hpp"

#include <algorithm>

namespace longnet {

Shard shard_of(int64_t tokens, int world, int rank) {
  LONGNET_CHECK(world >= 1 && rank >= 0 && rank < world, "rank {} is outside a world of {}", rank,
                world);
  LONGNET_CHECK(world <= tokens,
                "{} ranks for a sequence of {} tokens: every rank must hold at least one token; "
                "use at most {} ranks",
                world, tokens, tokens);
  const int64_t base = tokens / world, extra = tokens % world;
  const int64_t begin = rank * base + std::min<int64_t>(rank, extra);
  return {begin, begin + base + (rank < extra ? 1 : 0)};
}

int owner_of(int64_t tokens, int world, int64_t token) {
  const int64_t base = tokens / world, extra = tokens % world;
  const int64_t big = extra * (base + 1);  // tokens held by the ranks with one more
  if (token < big) return static_cast<int>(token / (base + 1));
  return static_cast<int>(extra + (token - big) / base);
}

std::vector<SpanningSegment> spanning_segments(int64_t tokens, int world,
                                               const DilationPattern& pattern) {
  std::vector<SpanningSegment> segments;
  const int64_t w = pattern.segment_length;
  for (int64_t start = 0; start < tokens; start += w) {
    const int64_t end = std::min(start + w, tokens);
    const int first = owner_of(tokens, world, start), last = owner_of(tokens, world, end - 1);
    if (first == last) continue;
    const int round = static_cast<int>(segments.size() % 2);
    segments.push_back({start / w, start, end, first, last, round});
  }
  return segments;
}

int64_t first_selected_index(int64_t start, int64_t a, int64_t rate, int64_t off) {
  // Smallest t with start + off + t * rate >= a.
  const int64_t first_token = start + off;
  return a <= first_token ? 0 : (a - first_token + rate - 1) / rate;
}

int64_t selected_rows(int64_t start, int64_t a, int64_t b, int64_t rate, int64_t off) {
  // Tokens start + off + t * rate in [a, b).
  const int64_t lo = first_selected_index(start, a, rate, off);
  const int64_t hi = first_selected_index(start, b, rate, off);
  return std::max<int64_t>(0, hi - lo);
}

int64_t gathered_key_elements(const SpanningSegment& segment, int rank, int64_t tokens, int world,
                              const AttentionShape& shape, int64_t rate, HeadOffsets scheme) {
  int64_t rows = 0;
  for (int member = segment.first_rank; member <= segment.last_rank; ++member) {
    if (member == rank) continue;
    const Shard shard = shard_of(tokens, world, member);
    const int64_t a = std::max(shard.begin, segment.start), b = std::min(shard.end, segment.end);
    for (int64_t h = 0; h < shape.heads; ++h) {
      rows += selected_rows(segment.start, a, b, rate, head_offset(scheme, h, shape.heads, rate));
    }
  }
  return rows * shape.batch * shape.head_dim;
}

}  // namespace longnet
