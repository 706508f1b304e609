#include "model/ops/token_groups.hpp"

namespace longnet {

TokenGroups group_by_token(std::span<const int32_t> tokens, int64_t vocab) {
  std::vector<int64_t> start(static_cast<std::size_t>(vocab) + 1, 0);
  for (int32_t id : tokens) ++start[static_cast<std::size_t>(id) + 1];
  TokenGroups groups;
  groups.offsets.push_back(0);
  for (int64_t id = 0; id < vocab; ++id) {
    const int64_t count = start[static_cast<std::size_t>(id) + 1];
    if (count > 0) {
      groups.ids.push_back(static_cast<int32_t>(id));
      groups.offsets.push_back(groups.offsets.back() + count);
    }
    start[static_cast<std::size_t>(id) + 1] += start[static_cast<std::size_t>(id)];
  }
  // start[id] is now where id's group begins; a stable scatter keeps positions ascending.
  groups.positions.resize(tokens.size());
  for (std::size_t t = 0; t < tokens.size(); ++t) {
    groups.positions[static_cast<std::size_t>(start[static_cast<std::size_t>(tokens[t])]++)] =
        static_cast<int64_t>(t);
  }
  return groups;
}

}  // namespace longnet
