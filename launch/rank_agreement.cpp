#include "launch/rank_agreement.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstdint>
#include <span>

#include "comm/collective_step.hpp"

namespace longnet {
namespace {

// FNV-1a, 64 bits: a collision between two different values would only hide a
// disagreement in the unlikely case of 2^-64, and costs nothing to compute.
uint64_t fnv1a(const std::string& text) {
  uint64_t hash = 1469598103934665603ULL;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ULL;
  }
  return hash;
}

// Every rank's value of fact `index`, gathered as bytes.
std::vector<std::string> gather_values(Communicator& comm, const std::string& mine) {
  const int ranks = comm.size();
  const std::vector<int64_t> my_length{static_cast<int64_t>(mine.size())};
  std::vector<int64_t> lengths(static_cast<std::size_t>(ranks));
  comm.all_gather<int64_t>(my_length, lengths, "rank agreement");
  int64_t total = 0;
  for (int64_t n : lengths) total += n;
  std::vector<uint8_t> bytes(static_cast<std::size_t>(total));
  const std::span<const uint8_t> send(reinterpret_cast<const uint8_t*>(mine.data()), mine.size());
  comm.all_gatherv<uint8_t>(send, bytes, lengths, "rank agreement");
  std::vector<std::string> values;
  std::size_t at = 0;
  for (int64_t n : lengths) {
    values.emplace_back(
        bytes.begin() + static_cast<std::ptrdiff_t>(at),
        bytes.begin() + static_cast<std::ptrdiff_t>(at + static_cast<std::size_t>(n)));
    at += static_cast<std::size_t>(n);
  }
  return values;
}

}  // namespace

void require_ranks_agree(Communicator& comm, const std::vector<RankFact>& facts,
                         const std::string& what) {
  if (comm.size() == 1) return;
  // The count first, so that the gathers below have the same size on every rank.
  std::vector<int64_t> count{static_cast<int64_t>(facts.size())}, counts(comm.size());
  comm.all_gather<int64_t>(count, counts, "rank agreement");
  for (int64_t c : counts) {
    if (c != counts[0]) {
      throw AgreedError(
          fmt::format("ranks disagree on how many facts describe the {}; every "
                      "rank must run the same command",
                      what));
    }
  }
  std::vector<uint64_t> mine;
  for (const RankFact& fact : facts) mine.push_back(fnv1a(fact.name + '\0' + fact.value));
  std::vector<uint64_t> all(mine.size() * static_cast<std::size_t>(comm.size()));
  comm.all_gather<uint64_t>(mine, all, "rank agreement");
  for (std::size_t i = 0; i < facts.size(); ++i) {
    bool differ = false;
    for (int r = 1; r < comm.size(); ++r) differ |= all[r * facts.size() + i] != all[i];
    if (!differ) continue;
    // Same outcome on every rank: the gathered hashes are the same everywhere.
    const std::vector<std::string> values = gather_values(comm, facts[i].value);
    // Ranks grouped by value, in rank order: "ranks 0, 2 have '200', rank 1 has '100'".
    std::vector<std::pair<std::string, std::vector<int>>> groups;
    for (int r = 0; r < comm.size(); ++r) {
      const std::string& value = values[static_cast<std::size_t>(r)];
      auto group = std::ranges::find_if(groups, [&](const auto& g) { return g.first == value; });
      if (group == groups.end()) {
        groups.push_back({value, {r}});
      } else {
        group->second.push_back(r);
      }
    }
    std::vector<std::string> parts;
    for (const auto& [value, ranks] : groups) {
      parts.push_back(fmt::format("{} {} {} '{}'", ranks.size() == 1 ? "rank" : "ranks",
                                  fmt::join(ranks, ", "), ranks.size() == 1 ? "has" : "have",
                                  value));
    }
    throw AgreedError(fmt::format("ranks disagree on {}: {}; every rank must read the same {}",
                                  facts[i].name, fmt::join(parts, ", "), what));
  }
}

}  // namespace longnet
