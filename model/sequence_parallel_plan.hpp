// Where each token lives and which segments cross ranks: the static part of
// sequence-parallel dilated attention, computed identically on every rank.
//
// Rank p of P holds the contiguous tokens [begin_p, end_p) of every batch element;
// shard sizes differ by at most one (the first N mod P ranks hold one more). For a
// pattern (w, r), a segment [s*w, min((s+1)*w, N)) inside one shard is computed
// locally; one that touches several ranks is a spanning segment, handled by exactly
// the ranks it touches. Consecutive spanning segments share at most one rank (a rank
// touches at most two: the first and last of its shard), so alternating them between
// two rounds gives each rank at most one group per round: one communicator split per
// round builds every group of a pattern.
#pragma once

#include "kernels/dilated_attention_config.hpp"

#include <cstdint>
#include <vector>

namespace longnet {

struct Shard {
  int64_t begin = 0;  // first token held
  int64_t end = 0;    // one past the last
  int64_t size() const { return end - begin; }
};

// The balanced shard of `rank`; an error when world > tokens (a rank would hold nothing).
Shard shard_of(int64_t tokens, int world, int rank);
// The rank holding `token`.
int owner_of(int64_t tokens, int world, int64_t token);

struct SpanningSegment {
  int64_t index = 0;   // s
  int64_t start = 0;   // first token, s * w
  int64_t end = 0;     // one past the last token
  int first_rank = 0;  // the group: ranks first_rank..last_rank, in token order
  int last_rank = 0;
  int round = 0;  // 0 or 1: which communicator split builds its group
  bool contains(int rank) const { return first_rank <= rank && rank <= last_rank; }
};

// Every spanning segment of one pattern, in token order.
std::vector<SpanningSegment> spanning_segments(int64_t tokens, int world,
                                               const DilationPattern& pattern);

// Rows of a head with offset `off` among tokens [a, b) of the segment starting at `start`
// (tokens j with (j - start) mod r == off), and the dilated index of the first of them.
int64_t selected_rows(int64_t start, int64_t a, int64_t b, int64_t rate, int64_t off);
int64_t first_selected_index(int64_t start, int64_t a, int64_t rate, int64_t off);

// Elements of keys one rank receives when its group gathers one spanning segment
// (values: as many again): B * D * sum over heads of the rows the other members select.
int64_t gathered_key_elements(const SpanningSegment& segment, int rank, int64_t tokens, int world,
                              const AttentionShape& shape, int64_t rate, HeadOffsets scheme);

}  // namespace longnet
