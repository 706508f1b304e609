// The cost model's per-rank work equals a count over every token.
//
// The brute force here is written from the definition and the runtime's rules, not from
// the model's formulas: rank p holds the balanced shard (the first N mod P ranks one token
// more); a query is computed by the rank holding it, against every key its pattern
// allows; a segment whose tokens lie on several ranks is all-gathered once by those
// ranks, each sending the k and v rows it holds that a head's offset selects and
// receiving those the others hold.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "bench/cost_model.hpp"
#include "model/sequence_parallel_plan.hpp"

namespace longnet::bench {
namespace {

// owner[token], filled shard by shard.
std::vector<int> owners(int64_t tokens, int world) {
  std::vector<int> owner;
  for (int rank = 0; rank < world; ++rank) {
    const int64_t size = tokens / world + (rank < tokens % world ? 1 : 0);
    owner.insert(owner.end(), static_cast<std::size_t>(size), rank);
  }
  return owner;
}

struct BruteWork {
  std::vector<double> pairs;
  std::vector<int64_t> sent, received, gathers;  // elements and calls
};

BruteWork brute_force(const LayerProblem& p) {
  const int64_t n = p.shape.tokens;
  const auto owner = owners(n, p.world);
  BruteWork out{std::vector<double>(static_cast<std::size_t>(p.world), 0),
                std::vector<int64_t>(static_cast<std::size_t>(p.world), 0),
                std::vector<int64_t>(static_cast<std::size_t>(p.world), 0),
                std::vector<int64_t>(static_cast<std::size_t>(p.world), 0)};
  for (const DilationPattern& pat : p.config.patterns) {
    const int64_t w = pat.segment_length, r = pat.dilation_rate;
    auto selected = [&](int64_t token, int64_t head) {
      return (token % w) % r == head_offset(p.config.head_offsets, head, p.shape.heads, r);
    };
    for (int64_t h = 0; h < p.shape.heads; ++h) {
      for (int64_t i = 0; i < n; ++i) {
        if (!selected(i, h)) continue;
        const int64_t start = i / w * w, end = std::min(start + w, n);
        for (int64_t j = start; j < end; ++j) {
          if (selected(j, h) && (!p.config.causal || j <= i)) {
            out.pairs[static_cast<std::size_t>(owner[static_cast<std::size_t>(i)])] +=
                static_cast<double>(p.shape.batch);
          }
        }
      }
    }
    for (int64_t start = 0; start < n; start += w) {
      const int64_t end = std::min(start + w, n);
      std::set<int> members;
      for (int64_t j = start; j < end; ++j) members.insert(owner[static_cast<std::size_t>(j)]);
      if (members.size() < 2) continue;
      for (const int me : members) {
        out.gathers[static_cast<std::size_t>(me)] += 1;
        for (int64_t j = start; j < end; ++j) {
          for (int64_t h = 0; h < p.shape.heads; ++h) {
            if (!selected(j, h)) continue;
            const int64_t elements = 2 * p.shape.batch * p.shape.head_dim;  // k and v
            (owner[static_cast<std::size_t>(j)] == me
                 ? out.sent
                 : out.received)[static_cast<std::size_t>(me)] += elements;
          }
        }
      }
    }
  }
  return out;
}

struct WorkCase {
  const char* name;
  AttentionShape shape;
  std::vector<int64_t> w, r;
};

// N not divisible by P, segments shorter than a shard, spanning 2..P ranks and the whole
// sequence (w > N), short last segments, r > heads, batch 2.
const WorkCase kCases[] = {
    {"N97_w8x40x200_r1x3x4", {1, 97, 3, 4}, {8, 40, 200}, {1, 3, 4}},
    {"B2_N300_w64x100x300_r2x5x7", {2, 300, 4, 2}, {64, 100, 300}, {2, 5, 7}},
    {"N257_w7x33x96x512_r1x2x3x8", {1, 257, 5, 8}, {7, 33, 96, 512}, {1, 2, 3, 8}},
    {"N1000_w250x999_r1x6", {1, 1000, 6, 2}, {250, 999}, {1, 6}},
};

void PrintTo(const WorkCase& c, std::ostream* os) { *os << c.name; }

class RankWorkTest : public ::testing::TestWithParam<WorkCase> {};

TEST_P(RankWorkTest, EqualsTheCountOverEveryToken) {
  const WorkCase& c = GetParam();
  for (const bool causal : {true, false}) {
    for (const HeadOffsets scheme : {HeadOffsets::interleaved, HeadOffsets::grouped}) {
      const auto config = DilatedAttentionConfig::from_lists(c.w, c.r, causal, scheme);
      for (const int world : {1, 2, 3, 4, 5, 7}) {
        const LayerProblem problem{.config = config, .shape = c.shape, .world = world};
        SCOPED_TRACE(::testing::Message() << config.describe() << " P=" << world);
        const auto work = rank_work(problem);
        const BruteWork brute = brute_force(problem);
        double sum = 0;
        for (int rank = 0; rank < world; ++rank) {
          const auto i = static_cast<std::size_t>(rank);
          EXPECT_EQ(work[i].pairs, brute.pairs[i]) << "rank " << rank;
          EXPECT_EQ(work[i].gather_sent_bytes, brute.sent[i] * 4) << "rank " << rank;
          EXPECT_EQ(work[i].gather_received_bytes, brute.received[i] * 4) << "rank " << rank;
          EXPECT_EQ(work[i].gathers, brute.gathers[i]) << "rank " << rank;
          sum += work[i].pairs;
        }
        // Every allowed pair is computed by exactly one rank: the one holding its query.
        EXPECT_EQ(sum, allowed_pairs(config, c.shape));
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, RankWorkTest, ::testing::ValuesIn(kCases),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(RankWork, ReceivedBytesEqualThePlansGatheredKeyElements) {
  const AttentionShape shape{2, 1003, 4, 8};
  const auto config =
      DilatedAttentionConfig::from_lists({100, 333, 2048}, {2, 3, 5}, false, HeadOffsets::grouped);
  const int world = 6;
  const LayerProblem problem{.config = config, .shape = shape, .world = world, .element_bytes = 2};
  const auto work = rank_work(problem);
  std::vector<int64_t> received(world, 0);
  for (const DilationPattern& p : config.patterns) {
    for (const SpanningSegment& s : spanning_segments(shape.tokens, world, p)) {
      for (int rank = s.first_rank; rank <= s.last_rank; ++rank) {
        received[static_cast<std::size_t>(rank)] +=
            2 * gathered_key_elements(s, rank, shape.tokens, world, shape, p.dilation_rate,
                                      config.head_offsets);
      }
    }
  }
  for (int rank = 0; rank < world; ++rank) {
    EXPECT_EQ(work[static_cast<std::size_t>(rank)].gather_received_bytes,
              received[static_cast<std::size_t>(rank)] * 2)
        << "rank " << rank << " (bf16: 2 bytes per element)";
  }
}

TEST(RankWork, BackwardMovesTheGatherTwiceWithTransposedReduceScatter) {
  RankWork w;
  w.pairs = 10;
  w.gather_sent_bytes = 100;
  w.gather_received_bytes = 300;
  w.gathers = 3;
  const CallWork fwd = call_work(w, Direction::forward, 8);
  const CallWork bwd = call_work(w, Direction::backward, 8);
  EXPECT_EQ(fwd.flops, 4.0 * 8 * 10);
  EXPECT_EQ(bwd.flops, 2.5 * fwd.flops);
  EXPECT_EQ(fwd.sent_bytes, 100);
  EXPECT_EQ(fwd.received_bytes, 300);
  EXPECT_EQ(bwd.sent_bytes, 400);  // gather sends 100, reduce-scatter sends 300
  EXPECT_EQ(bwd.received_bytes, 400);
  EXPECT_EQ(bwd.collectives, 6);
}

TEST(RankWork, DenseIsOneSegmentOfTheWholeSequence) {
  const AttentionShape shape{1, 101, 3, 4};
  const LayerProblem problem{.config = dense_config(101, true), .shape = shape, .world = 4};
  const auto work = rank_work(problem);
  const auto owner = owners(101, 4);
  for (int rank = 0; rank < 4; ++rank) {
    double pairs = 0;
    int64_t held = 0;
    for (int64_t i = 0; i < 101; ++i) {
      if (owner[static_cast<std::size_t>(i)] != rank) continue;
      pairs += static_cast<double>(i + 1) * 3;  // causal: keys 0..i, three heads
      ++held;
    }
    const auto& mine = work[static_cast<std::size_t>(rank)];
    EXPECT_EQ(mine.pairs, pairs);
    EXPECT_EQ(mine.gather_received_bytes, (101 - held) * 3 * 4 * 2 * 4);
    EXPECT_EQ(mine.gathers, 1);
    EXPECT_EQ(mine.intra_node.ring_steps, 3);  // one group of four ranks, all on one node
    EXPECT_EQ(mine.intra_node.tree_steps, 2);
  }
}

// Ranks 0, 1 on node 0 and 2, 3 on node 1: a segment over ranks 1..2 crosses nodes.
TEST(RankWork, GroupsAcrossNodesUseTheInterNodeLink) {
  const AttentionShape shape{1, 400, 1, 2};
  const auto config =
      DilatedAttentionConfig::from_lists({200}, {1}, false, HeadOffsets::interleaved);
  // Shards of 100; segments [0, 200) on ranks 0-1 and [200, 400) on ranks 2-3: no crossing.
  LayerProblem problem{.config = config, .shape = shape, .world = 4, .ranks_per_node = 2};
  for (const auto& w : rank_work(problem)) {
    EXPECT_EQ(w.intra_node.calls, 1);
    EXPECT_EQ(w.inter_node.calls, 0);
  }
  problem.config = DilatedAttentionConfig::from_lists({300}, {1}, false, HeadOffsets::interleaved);
  // Segments [0, 300) on ranks 0-2 (crosses nodes) and [300, 400) inside rank 3.
  const auto work = rank_work(problem);
  for (int rank = 0; rank < 3; ++rank) {
    const auto& w = work[static_cast<std::size_t>(rank)];
    EXPECT_EQ(w.inter_node.calls, 1);
    EXPECT_EQ(w.inter_node.ring_steps, 2);
    EXPECT_EQ(w.inter_node.tree_steps, 2);
    // The time is set by the member that receives most: 200 of 300 rows, k and v, D = 2.
    EXPECT_EQ(w.inter_node.bytes, 200.0 * 2 * 2 * 4);
  }
  EXPECT_EQ(work[3].gathers, 0);
}

TEST(RankTime, IsComputeOverRatePlusLatencyStepsAndBytesOverBandwidth) {
  RankWork w;
  w.pairs = 1e9;
  w.intra_node = {.calls = 2, .ring_steps = 3, .tree_steps = 2, .bytes = 4e9};
  w.inter_node = {.calls = 1, .ring_steps = 7, .tree_steps = 3, .bytes = 1e9};
  MachineModel m;
  m.forward_tflops = 2;
  m.backward_tflops = 1;
  m.intra_node = {.all_gather = {10, 100}, .reduce_scatter = {20, 50}};
  m.inter_node = {.all_gather = {30, 10}, .reduce_scatter = {40, 5}};
  const RankTime fwd = rank_time(w, Direction::forward, m, 64);
  EXPECT_DOUBLE_EQ(fwd.compute_s, 4 * 64 * 1e9 / 2e12);
  EXPECT_DOUBLE_EQ(fwd.comm_s, 3 * 10e-6 + 4e9 / 100e9 + 7 * 30e-6 + 1e9 / 10e9);
  const RankTime bwd = rank_time(w, Direction::backward, m, 64);
  EXPECT_DOUBLE_EQ(bwd.compute_s, 2.5 * 4 * 64 * 1e9 / 1e12);
  EXPECT_DOUBLE_EQ(bwd.comm_s, fwd.comm_s + 3 * 20e-6 + 4e9 / 50e9 + 7 * 40e-6 + 1e9 / 5e9);
  m.latency_steps = LatencySteps::tree;
  EXPECT_DOUBLE_EQ(rank_time(w, Direction::forward, m, 64).comm_s,
                   2 * 10e-6 + 4e9 / 100e9 + 3 * 30e-6 + 1e9 / 10e9);
}

TEST(Predict, TheSlowestRankSetsTheLatency) {
  std::vector<RankWork> work(3);
  work[0].pairs = 100;  // most compute
  work[1].pairs = 60;
  work[1].intra_node = {.calls = 1, .ring_steps = 1, .tree_steps = 1, .bytes = 2000};  // most comm
  work[2].pairs = 95;
  work[2].intra_node = {
      .calls = 1, .ring_steps = 1, .tree_steps = 1, .bytes = 1000};  // most of both together
  MachineModel m;
  m.forward_tflops = m.backward_tflops = 4e-12;  // one pair (4 FLOPs at D = 1) per second
  m.intra_node.all_gather = {0, 1e-7};           // 100 bytes per second
  const LayerPrediction p = predict(work, Direction::forward, m, 1);
  EXPECT_DOUBLE_EQ(p.compute_s, 100);
  EXPECT_DOUBLE_EQ(p.comm_s, 20);
  EXPECT_DOUBLE_EQ(p.time_s, 105);  // rank 2: 95 + 10, not 100 + 20
  EXPECT_EQ(p.slowest_rank, 2);
}

TEST(GeometricPatterns, HoldBaseRowsPerSegmentUpToTheSequence) {
  const auto patterns = geometric_patterns(int64_t{1} << 20, 2048, 2);
  ASSERT_EQ(patterns.size(), 10u);  // 2^11 .. 2^20
  for (const auto& p : patterns) EXPECT_EQ(p.segment_length / p.dilation_rate, 2048);
  EXPECT_EQ(patterns.back().segment_length, int64_t{1} << 20);
  EXPECT_EQ(geometric_patterns(1000, 2048, 2).size(), 1u);  // shorter than the base: one
}

// 2^30 tokens over 2^17 ranks (8192 each, H = 16, D = 128, causal): the loops are per
// segment and per rank, never per token. Dense: the last rank's queries attend every
// earlier token, S (N - S) + S (S + 1) / 2 pairs per head.
TEST(LargeScale, DenseAtTwoToTheThirtyMatchesItsClosedForm) {
  const int64_t n = int64_t{1} << 30, s = 8192;
  const int world = 1 << 17;
  const AttentionShape shape{1, n, 16, 128};
  const auto work = rank_work(
      {.config = dense_config(n, true), .shape = shape, .world = world, .element_bytes = 2});
  const LayerPrediction fwd = predict(work, Direction::forward, h100_machine(), 128);
  const double sd = static_cast<double>(s), nd = static_cast<double>(n);
  const double pairs = sd * (nd - sd) + sd * (sd + 1) / 2;
  EXPECT_NEAR(fwd.max_flops / (4.0 * 128 * 16 * pairs), 1.0, 1e-12);
  EXPECT_EQ(fwd.slowest_rank, world - 1);
  EXPECT_EQ(fwd.max_received_bytes, (n - s) * 16 * 128 * 2 * 2);  // everyone else's k, v
  EXPECT_TRUE(std::isfinite(fwd.time_s) && fwd.time_s > 0);
  EXPECT_NEAR(fwd.total_flops / forward_flops(dense_config(n, true), shape), 1.0, 1e-12);
}

// With w_i / r_i fixed, a rank's work is a geometric series over patterns: it barely
// grows once N passes the shard, while dense work grows as N.
TEST(LargeScale, DilatedWorkPerRankIsRoughlyConstantInN) {
  std::vector<double> flops;
  for (const int64_t n : {int64_t{1} << 20, int64_t{1} << 25, int64_t{1} << 30}) {
    DilatedAttentionConfig config;
    config.patterns = geometric_patterns(n, 2048, 2);
    config.causal = true;
    const int world = static_cast<int>(n / 8192);
    const auto work =
        rank_work({.config = config, .shape = {1, n, 16, 128}, .world = world, .element_bytes = 2});
    const LayerPrediction fwd = predict(work, Direction::forward, h100_machine(), 128);
    EXPECT_TRUE(std::isfinite(fwd.time_s) && fwd.time_s > 0);
    EXPECT_GT(fwd.max_received_bytes, 0);
    flops.push_back(fwd.max_flops);
  }
  EXPECT_LT(flops[2] / flops[0], 1.5) << "2^30 against 2^20 tokens, 1024 times the ranks";
  EXPECT_GE(flops[2], flops[0]);
}

}  // namespace
}  // namespace longnet::bench
