#include "launch/traffic_report.hpp"

#include <fmt/format.h>
#include <fmt/ostream.h>

#include <vector>

namespace longnet {

void print_traffic(Communicator& world, const SequenceParallelAttention& sp, std::ostream& out) {
  const std::vector<PatternTraffic> traffic = sp.traffic();
  constexpr std::size_t kFields = 4;  // gather sent/received, scatter sent/received
  std::vector<int64_t> mine;
  for (const PatternTraffic& t : traffic) {
    mine.insert(mine.end(), {t.gather_sent, t.gather_received, t.scatter_sent, t.scatter_received});
  }
  std::vector<int64_t> all(mine.size() * world.size());
  world.all_gather<int64_t>(mine, all, "stats");
  const std::vector<double> seconds{sp.timing().compute_seconds, sp.timing().communication_seconds};
  std::vector<double> all_seconds(2 * world.size());
  world.all_gather<double>(seconds, all_seconds, "stats");
  if (world.rank() != 0) return;

  fmt::print(
      out,
      "# communication per rank and pattern, bytes (sent: own rows; received: others' rows)\n");
  fmt::print(out, "# {:>4} {:>7} {:>16} {:>14} {:>14} {:>14} {:>14}\n", "rank", "tokens", "pattern",
             "gather_sent", "gather_recv", "scatter_sent", "scatter_recv");
  for (int rank = 0; rank < world.size(); ++rank) {
    const Shard shard = shard_of(sp.global_shape().tokens, world.size(), rank);
    for (std::size_t p = 0; p < traffic.size(); ++p) {
      const int64_t* row = all.data() + (rank * traffic.size() + p) * kFields;
      fmt::print(out, "  {:>4} {:>7} {:>16} {:>14} {:>14} {:>14} {:>14}\n", rank, shard.size(),
                 traffic[p].pattern, row[0], row[1], row[2], row[3]);
    }
  }
  fmt::print(out, "# time per rank, seconds\n# {:>4} {:>10} {:>10}\n", "rank", "compute", "comm");
  for (int rank = 0; rank < world.size(); ++rank) {
    fmt::print(out, "  {:>4} {:>10.4f} {:>10.4f}\n", rank, all_seconds[2 * rank],
               all_seconds[2 * rank + 1]);
  }
}

}  // namespace longnet
