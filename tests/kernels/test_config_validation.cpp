// The dilated-attention configuration: what validation rejects (and that the message
// names the problem), the head-offset schemes on hand-worked examples, and the closed
// form of allowed_pairs() against a brute-force count over the definition.
#include "kernels/dilated_attention_config.hpp"
#include "runtime/error.hpp"
#include "tests/reference/dense_attention_reference.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace longnet {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

DilatedAttentionConfig config_of(std::vector<int64_t> w, std::vector<int64_t> r,
                                 bool causal = false,
                                 HeadOffsets scheme = HeadOffsets::interleaved) {
  return DilatedAttentionConfig::from_lists(w, r, causal, scheme);
}

// ---- rejected configurations ----------------------------------------------------------

TEST(ConfigValidation, RejectsZeroSegmentLength) {
  EXPECT_THAT([] { config_of({0}, {1}); },
              ThrowsMessage<Error>(HasSubstr("segment length 0 must be positive")));
}

TEST(ConfigValidation, RejectsNegativeSegmentLengthAndNamesThePattern) {
  // The second pattern is the bad one; the message must say which.
  EXPECT_THAT(
      [] {
        config_of({64, -8}, {1, 1});
      },
      ThrowsMessage<Error>(
          AllOf(HasSubstr("pattern 1"), HasSubstr("segment length -8 must be positive"))));
}

TEST(ConfigValidation, RejectsNonPositiveDilationRate) {
  EXPECT_THAT([] { config_of({64}, {0}); },
              ThrowsMessage<Error>(HasSubstr("dilation rate 0 must be positive")));
  EXPECT_THAT([] { config_of({64}, {-2}); },
              ThrowsMessage<Error>(HasSubstr("dilation rate -2 must be positive")));
}

TEST(ConfigValidation, RejectsDilationRateAboveSegmentLength) {
  EXPECT_THAT([] { config_of({4}, {5}); },
              ThrowsMessage<Error>(AllOf(HasSubstr("dilation rate 5 exceeds segment length 4"),
                                         HasSubstr("r <= w"))));
}

TEST(ConfigValidation, AcceptsDilationRateEqualToSegmentLength) {
  // r == w is the boundary: one row per offset per segment, still meaningful.
  EXPECT_NO_THROW(config_of({4}, {4}));
}

TEST(ConfigValidation, RejectsMismatchedListLengths) {
  EXPECT_THAT(
      [] {
        config_of({64, 128}, {1});
      },
      ThrowsMessage<Error>(
          AllOf(HasSubstr("segment_lengths has 2 entries"), HasSubstr("dilation_rates has 1"))));
}

TEST(ConfigValidation, RejectsEmptyLists) {
  EXPECT_THAT([] { config_of({}, {}); }, ThrowsMessage<Error>(HasSubstr("no patterns")));
}

TEST(ConfigValidation, ValidateConfigRejectsAStructWithNoPatterns) {
  // validate_config is also the guard for configs built field by field, not via from_lists.
  DilatedAttentionConfig config;
  EXPECT_THAT([&] { validate_config(config); }, ThrowsMessage<Error>(HasSubstr("no patterns")));
}

TEST(ConfigValidation, RejectsUnknownHeadOffsetSchemeAndListsTheChoices) {
  EXPECT_THAT([] { parse_head_offsets("strided"); },
              ThrowsMessage<Error>(
                  AllOf(HasSubstr("'strided'"), HasSubstr("interleaved"), HasSubstr("grouped"))));
  // Parsing is exact: no case folding, no trimming.
  EXPECT_THROW(parse_head_offsets("Grouped"), Error);
  EXPECT_THROW(parse_head_offsets(" interleaved"), Error);
}

TEST(ConfigValidation, HeadOffsetNamesRoundTripThroughTheParser) {
  for (HeadOffsets scheme : {HeadOffsets::interleaved, HeadOffsets::grouped}) {
    EXPECT_EQ(parse_head_offsets(head_offsets_name(scheme)), scheme);
  }
}

TEST(ConfigValidation, RejectsNonFiniteOrNonPositiveScale) {
  const double bad_scales[] = {0.0, -0.125, std::numeric_limits<double>::infinity(),
                               std::numeric_limits<double>::quiet_NaN()};
  for (double scale : bad_scales) {
    SCOPED_TRACE(testing::Message() << "scale = " << scale);
    EXPECT_THAT(
        [&] { DilatedAttentionConfig::from_lists({64}, {1}, false, HeadOffsets::grouped, scale); },
        ThrowsMessage<Error>(HasSubstr("must be finite and positive")));
  }
}

TEST(ConfigValidation, RejectsNonPositiveShapeExtents) {
  EXPECT_THAT(
      [] {
        validate_shape({1, 0, 2, 8});
      },
      ThrowsMessage<Error>(AllOf(HasSubstr("B=1 N=0 H=2 D=8"), HasSubstr("non-positive"))));
  EXPECT_THROW(validate_shape({1, 4, 2, -1}), Error);
  EXPECT_NO_THROW(validate_shape({1, 1, 1, 1}));
}

// ---- scale -------------------------------------------------------------------------

TEST(SoftmaxScale, DefaultsToInverseSqrtHeadDimAndHonoursAnExplicitScale) {
  const auto plain = config_of({8}, {1});
  EXPECT_DOUBLE_EQ(softmax_scale(plain, 64), 0.125);
  EXPECT_DOUBLE_EQ(softmax_scale(plain, 24), 1.0 / std::sqrt(24.0));
  const auto explicit_scale =
      DilatedAttentionConfig::from_lists({8}, {1}, false, HeadOffsets::interleaved, 0.3);
  EXPECT_DOUBLE_EQ(softmax_scale(explicit_scale, 64), 0.3);
}

// ---- head offsets, worked by hand ------------------------------------------------------

struct OffsetExample {
  int64_t heads, rate;
  std::vector<int64_t> interleaved, grouped;  // off(h) for h = 0 .. H-1
};

TEST(HeadOffset, MatchesHandWorkedExamples) {
  const OffsetExample examples[] = {
      // H = 8, r = 3: interleaved h mod 3; grouped ceil(8/3) = 3 heads per offset.
      {8, 3, {0, 1, 2, 0, 1, 2, 0, 1}, {0, 0, 0, 1, 1, 1, 2, 2}},
      // H = 5, r = 4: ceil(5/4) = 2 per offset, so offset 3 is never used.
      {5, 4, {0, 1, 2, 3, 0}, {0, 0, 1, 1, 2}},
      // Fewer heads than offsets: ceil(2/4) = 1, both schemes agree.
      {2, 4, {0, 1}, {0, 1}},
      // H = 6, r = 2: the torchscale split into halves.
      {6, 2, {0, 1, 0, 1, 0, 1}, {0, 0, 0, 1, 1, 1}},
      // r = 1: every head on offset 0.
      {3, 1, {0, 0, 0}, {0, 0, 0}},
  };
  for (const auto& ex : examples) {
    for (int64_t h = 0; h < ex.heads; ++h) {
      SCOPED_TRACE(testing::Message() << "H=" << ex.heads << " r=" << ex.rate << " h=" << h);
      EXPECT_EQ(head_offset(HeadOffsets::interleaved, h, ex.heads, ex.rate),
                ex.interleaved[static_cast<std::size_t>(h)]);
      EXPECT_EQ(head_offset(HeadOffsets::grouped, h, ex.heads, ex.rate),
                ex.grouped[static_cast<std::size_t>(h)]);
    }
  }
}

TEST(HeadOffset, AlwaysLiesInZeroToRate) {
  for (HeadOffsets scheme : {HeadOffsets::interleaved, HeadOffsets::grouped}) {
    for (int64_t heads = 1; heads <= 17; ++heads) {
      for (int64_t rate = 1; rate <= 9; ++rate) {
        for (int64_t h = 0; h < heads; ++h) {
          const int64_t off = head_offset(scheme, h, heads, rate);
          ASSERT_GE(off, 0) << head_offsets_name(scheme) << " H=" << heads << " r=" << rate;
          ASSERT_LT(off, rate) << head_offsets_name(scheme) << " H=" << heads << " r=" << rate;
        }
      }
    }
  }
}

// ---- allowed_pairs against brute force ------------------------------------------------

struct PairsCase {
  AttentionShape shape;
  std::vector<int64_t> w, r;
  bool causal;
  HeadOffsets scheme;
};

std::string describe(const PairsCase& c) {
  return c.shape.describe() + " " + config_of(c.w, c.r, c.causal, c.scheme).describe();
}

// Counts (b, h, pattern, i, j) with the predicate true: each pattern's pairs counted once,
// a pair allowed by two patterns counted twice (the multiset the softmax runs over).
double brute_force_pairs(const DilatedAttentionConfig& config, const AttentionShape& shape) {
  double count = 0;
  for (int64_t h = 0; h < shape.heads; ++h) {
    for (const auto& pattern : config.patterns) {
      for (int64_t i = 0; i < shape.tokens; ++i) {
        for (int64_t j = 0; j < shape.tokens; ++j) {
          count += reference::reference_allowed(pattern, config.head_offsets, config.causal, h,
                                                shape.heads, i, j);
        }
      }
    }
  }
  return count * static_cast<double>(shape.batch);
}

TEST(AllowedPairs, MatchesABruteForceCountOfTheMask) {
  const PairsCase cases[] = {
      {{1, 16, 1, 8}, {16}, {1}, false, HeadOffsets::interleaved},  // dense
      {{1, 16, 1, 8}, {16}, {1}, true, HeadOffsets::interleaved},   // dense causal
      {{2, 37, 3, 8}, {8}, {3}, false, HeadOffsets::interleaved},   // short last segment
      {{1, 37, 5, 8}, {10, 20}, {4, 2}, true, HeadOffsets::grouped},
      {{1, 7, 4, 8}, {32}, {3}, false, HeadOffsets::grouped},  // w > N
      {{1, 100, 3, 8}, {32, 96}, {3, 2}, true, HeadOffsets::interleaved},
      {{1, 33, 2, 8}, {5}, {5}, false, HeadOffsets::interleaved},  // last segment holds 3 < r
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(describe(c));
    const auto config = config_of(c.w, c.r, c.causal, c.scheme);
    EXPECT_DOUBLE_EQ(allowed_pairs(config, c.shape), brute_force_pairs(config, c.shape));
  }
}

TEST(AllowedPairs, FlopsFollowTheDocumentedConvention) {
  // bench/README.md: 4 D per allowed pair forward, 2.5 times that backward.
  const AttentionShape shape{1, 64, 2, 16};
  const auto config = config_of({16, 64}, {1, 4}, true);
  const double pairs = allowed_pairs(config, shape);
  EXPECT_DOUBLE_EQ(forward_flops(config, shape), 4.0 * 16 * pairs);
  EXPECT_DOUBLE_EQ(backward_flops(config, shape), 2.5 * 4.0 * 16 * pairs);
}

}  // namespace
}  // namespace longnet
