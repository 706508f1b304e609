// The static plan of sequence-parallel attention: shards, owners, spanning segments,
// and the exact count of gathered rows, each against a brute-force enumeration.
#include "model/sequence_parallel_plan.hpp"
#include "runtime/error.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

namespace longnet {
namespace {

TEST(Shards, AreContiguousBalancedAndCoverTheSequence) {
  for (int64_t n : {1, 7, 1000, 1001, 4096}) {
    for (int p : {1, 2, 3, 4, 8}) {
      if (p > n) continue;
      int64_t next = 0, smallest = n, largest = 0;
      for (int rank = 0; rank < p; ++rank) {
        const Shard s = shard_of(n, p, rank);
        EXPECT_EQ(s.begin, next) << "N=" << n << " P=" << p << " rank " << rank;
        next = s.end;
        smallest = std::min(smallest, s.size());
        largest = std::max(largest, s.size());
        for (int64_t t = s.begin; t < s.end; ++t) ASSERT_EQ(owner_of(n, p, t), rank);
      }
      EXPECT_EQ(next, n);
      EXPECT_LE(largest - smallest, 1) << "N=" << n << " P=" << p;
    }
  }
}

TEST(Shards, MoreRanksThanTokensIsAnError) {
  EXPECT_THAT([] { shard_of(3, 4, 0); },
              ::testing::ThrowsMessage<Error>(::testing::HasSubstr("at most 3 ranks")));
}

TEST(SpanningSegments, AreExactlyTheSegmentsTouchingSeveralRanks) {
  for (int64_t n : {100, 1000, 1003}) {
    for (int p : {2, 3, 4, 8}) {
      for (int64_t w : {16, 100, 333, 5000}) {
        const auto spanning = spanning_segments(n, p, {w, 1});
        std::set<int64_t> expected;
        for (int64_t start = 0; start < n; start += w) {
          std::set<int> owners;
          for (int64_t t = start; t < std::min(start + w, n); ++t) owners.insert(owner_of(n, p, t));
          if (owners.size() > 1) expected.insert(start / w);
        }
        std::set<int64_t> got;
        for (const auto& s : spanning) {
          got.insert(s.index);
          EXPECT_EQ(s.first_rank, owner_of(n, p, s.start));
          EXPECT_EQ(s.last_rank, owner_of(n, p, s.end - 1));
        }
        EXPECT_EQ(got, expected) << "N=" << n << " P=" << p << " w=" << w;
      }
    }
  }
}

TEST(SpanningSegments, EachRankIsInAtMostOneGroupPerRound) {
  for (int64_t w : {10, 64, 250}) {
    const auto spanning = spanning_segments(1000, 8, {w, 1});
    for (int rank = 0; rank < 8; ++rank) {
      int per_round[2] = {0, 0};
      for (const auto& s : spanning) per_round[s.round] += s.contains(rank) ? 1 : 0;
      EXPECT_LE(per_round[0], 1) << "w=" << w << " rank " << rank;
      EXPECT_LE(per_round[1], 1) << "w=" << w << " rank " << rank;
    }
  }
}

TEST(SelectedRows, MatchTheDefinition) {
  for (int64_t start : {0, 30}) {
    for (int64_t r : {1, 2, 3, 5}) {
      for (int64_t off = 0; off < r; ++off) {
        for (int64_t a = start; a < start + 40; a += 3) {
          for (int64_t b = a; b < start + 45; b += 4) {
            int64_t count = 0, first = -1;
            for (int64_t j = a; j < b; ++j) {
              if ((j - start) % r == off) {
                if (first < 0) first = (j - start) / r;
                ++count;
              }
            }
            EXPECT_EQ(selected_rows(start, a, b, r, off), count);
            if (count > 0) {
              EXPECT_EQ(first_selected_index(start, a, r, off), first);
            }
          }
        }
      }
    }
  }
}

TEST(GatheredKeys, CountTheOtherMembersRowsAndDoNotGrowWithN) {
  const AttentionShape shape{2, 0, 5, 16};
  // N / P fixed at 1000 tokens per rank: a rank's received rows per segment stay the same.
  const DilationPattern pattern{4000, 4};
  int64_t previous = -1;
  for (int p : {4, 8, 16}) {
    const int64_t n = 1000 * p;
    const auto spanning = spanning_segments(n, p, pattern);
    ASSERT_FALSE(spanning.empty());
    const SpanningSegment& seg = spanning.front();
    int64_t brute = 0;
    for (int64_t h = 0; h < shape.heads; ++h) {
      const int64_t off = head_offset(HeadOffsets::grouped, h, shape.heads, pattern.dilation_rate);
      for (int64_t j = seg.start; j < seg.end; ++j) {
        if (owner_of(n, p, j) != 1 && (j - seg.start) % pattern.dilation_rate == off) ++brute;
      }
    }
    const int64_t got =
        gathered_key_elements(seg, 1, n, p, shape, pattern.dilation_rate, HeadOffsets::grouped);
    EXPECT_EQ(got, brute * shape.batch * shape.head_dim) << "P=" << p;
    if (previous >= 0) {
      EXPECT_EQ(got, previous) << "grew with N at P=" << p;
    }
    previous = got;
  }
}

}  // namespace
}  // namespace longnet
