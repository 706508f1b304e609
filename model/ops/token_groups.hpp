// Token positions grouped by token id, for a deterministic embedding backward.
//
// dtable[id] += sum of dout[t] over the positions t holding id. Summing with atomics (or
// with threads that race over repeated ids) makes the gradient depend on scheduling; with
// the positions grouped by id, one worker owns each table row and adds its positions in
// ascending order, so every backend and thread count gives the same bits. The grouping is
// a counting sort on the host, O(T + V), where the token ids already are.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace longnet {

struct TokenGroups {
  std::vector<int32_t> ids;        // the distinct ids, ascending
  std::vector<int64_t> offsets;    // ids.size() + 1 entries; group g is [offsets[g], offsets[g+1])
  std::vector<int64_t> positions;  // token positions, grouped by id, ascending within a group
};

// `tokens` must be in [0, vocab) (checked by the callers before).
TokenGroups group_by_token(std::span<const int32_t> tokens, int64_t vocab);

}  // namespace longnet
