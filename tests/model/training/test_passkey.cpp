// The passkey probe without a model: the prompt layout, the distance buckets, the option
// checks, and the scoring against scorers whose answers are known: an induction oracle
// (copies what followed the last earlier occurrence of its context, so it finds every
// key), the same oracle blind beyond a distance, and a scorer that never copies.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <string>

#include "model/training/passkey.hpp"
#include "model/training/token_dataset.hpp"
#include "tests/support/error_of.hpp"

namespace longnet {
namespace {

using test::error_of;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr int64_t kPrefix = sizeof(kPasskeyPrefix) - 1;

// Go-like filler: lines of identifiers, 20000 bytes.
TokenDataset filler() {
  std::string text;
  for (int line = 0; text.size() < 20000; ++line) {
    text += "\tx" + std::to_string(line * 7919 % 1000) + " := f(y" + std::to_string(line) + ")\n";
  }
  return TokenDataset(std::vector<uint8_t>(text.begin(), text.end()), "go-like filler");
}

std::string text_of(const std::vector<int32_t>& window, int64_t at, int64_t length) {
  std::string s;
  for (int64_t i = at; i < at + length; ++i) s += static_cast<char>(window[i]);
  return s;
}

TEST(Passkey, DefaultBucketsDoubleUpToTheLongestDistance) {
  PasskeyOptions options;  // 1024 tokens, 5 digits
  EXPECT_EQ(passkey_min_distance(5), 5 + 1 + kPrefix);
  EXPECT_EQ(passkey_max_distance(1024, 5), 1025 - 5 - kPrefix);
  EXPECT_THAT(passkey_bucket_edges(options), ElementsAre(32, 64, 128, 256, 512, 1007));
  options.bucket_edges = {20, 100, 1000};
  EXPECT_THAT(passkey_bucket_edges(options), ElementsAre(20, 100, 1000));
}

TEST(Passkey, PromptHoldsTheNeedleAtItsDistanceAndTheQuestionAtTheEnd) {
  const TokenDataset text = filler();
  PasskeyOptions options;
  options.seq_len = 512;
  const std::vector<int64_t> edges = passkey_bucket_edges(options);
  for (int64_t bucket = 0; bucket + 1 < static_cast<int64_t>(edges.size()); ++bucket) {
    for (int64_t trial = 0; trial < 8; ++trial) {
      const PasskeyPrompt p = make_passkey_prompt(text, options, bucket, trial);
      ASSERT_EQ(p.window.size(), 513u);
      ASSERT_EQ(p.key.size(), 5u);
      for (char c : p.key) EXPECT_TRUE(c >= '0' && c <= '9');
      EXPECT_GE(p.distance, edges[bucket]);
      EXPECT_LT(p.distance, edges[bucket + 1]);
      const int64_t answer = 513 - 5;
      EXPECT_EQ(text_of(p.window, answer - kPrefix, kPrefix + 5), kPasskeyPrefix + p.key);
      const int64_t needle = answer - p.distance;
      EXPECT_EQ(text_of(p.window, needle - kPrefix, kPrefix + 6), kPasskeyPrefix + p.key + "\n");
      // Deterministic: the same (seed, bucket, trial) gives the same prompt.
      EXPECT_EQ(make_passkey_prompt(text, options, bucket, trial).window, p.window);
    }
  }
  // Another seed, other keys.
  PasskeyOptions reseeded = options;
  reseeded.seed = 99;
  EXPECT_NE(
      make_passkey_prompt(text, reseeded, 0, 0).key + make_passkey_prompt(text, reseeded, 1, 0).key,
      make_passkey_prompt(text, options, 0, 0).key + make_passkey_prompt(text, options, 1, 0).key);
}

TEST(Passkey, BadOptionsNameTheFix) {
  PasskeyOptions options;
  options.seq_len = 30;
  EXPECT_THAT(error_of([&] { check_passkey_options(options); }),
              HasSubstr("cannot hold a 5-digit needle"));
  options = {};
  options.key_digits = 0;
  EXPECT_THAT(error_of([&] { check_passkey_options(options); }), HasSubstr("--key-digits 0"));
  options = {};
  options.bucket_edges = {100, 50};
  EXPECT_THAT(error_of([&] { check_passkey_options(options); }), HasSubstr("must increase"));
  options.bucket_edges = {10, 50};
  EXPECT_THAT(error_of([&] { check_passkey_options(options); }), HasSubstr("must lie inside"));
  options.bucket_edges = {100, 2000};
  EXPECT_THAT(error_of([&] { check_passkey_options(options); }), HasSubstr("must lie inside"));
}

// Predicts, for each answer position, the token that followed the most recent earlier
// occurrence (at most `reach` tokens back) of the last `context` tokens; loss 0 when it
// is right, 10 nats when wrong, ln 256 when it finds nothing.
PasskeyScorer induction_oracle(int64_t reach, int64_t context = 8) {
  return [=](std::span<const int32_t> windows, int64_t rows, int64_t answer, std::span<double> loss,
             std::span<int32_t> predicted) {
    const int64_t n = static_cast<int64_t>(windows.size()) / rows - 1;
    for (int64_t r = 0; r < rows; ++r) {
      const int32_t* w = windows.data() + r * (n + 1);
      for (int64_t i = 0; i < answer; ++i) {
        const int64_t t = n - answer + i;  // input position; target w[t + 1]
        int32_t guess = -1;
        for (int64_t j = t - 1; j >= std::max<int64_t>(context - 1, t - reach); --j) {
          bool match = true;
          for (int64_t c = 0; c < context && match; ++c) match = w[j - c] == w[t - c];
          if (match) {
            guess = w[j + 1];
            break;
          }
        }
        predicted[r * answer + i] = guess;
        loss[r * answer + i] = guess < 0 ? std::log(256.0) : (guess == w[t + 1] ? 0.0 : 10.0);
      }
    }
  };
}

TEST(Passkey, AnInductionOracleFindsEveryKey) {
  const TokenDataset text = filler();
  PasskeyOptions options;
  options.seq_len = 1024;
  options.trials = 12;
  const PasskeyReport report = evaluate_passkey(text, options, 5, induction_oracle(1 << 20));
  ASSERT_EQ(report.buckets.size(), 5u);
  for (const PasskeyBucket& b : report.buckets) {
    EXPECT_EQ(b.trials, 12);
    EXPECT_EQ(b.key_accuracy, 1.0) << b.first;
    EXPECT_EQ(b.digit_accuracy, 1.0);
    EXPECT_EQ(b.key_loss, 0.0);
  }
  EXPECT_DOUBLE_EQ(report.chance_key_accuracy, 1e-5);
  EXPECT_DOUBLE_EQ(report.chance_key_loss, std::numbers::ln10);
  EXPECT_THAT(passkey_table(report), HasSubstr("[512, 1007)"));
  EXPECT_THAT(passkey_csv(report), HasSubstr("512,1007,12,1.000000,1.000000,0.000000\n"));
}

// Accuracy is credited to the right distances: an oracle that sees 200 tokens back finds
// every key planted less than 128 tokens away and none planted 256 or more away.
TEST(Passkey, AnOracleBlindBeyondADistanceFailsOnlyThere) {
  const TokenDataset text = filler();
  PasskeyOptions options;
  options.trials = 10;
  const PasskeyReport report = evaluate_passkey(text, options, 3, induction_oracle(200));
  ASSERT_EQ(report.buckets.size(), 5u);
  EXPECT_EQ(report.buckets[0].key_accuracy, 1.0);  // [32, 64)
  EXPECT_EQ(report.buckets[1].key_accuracy, 1.0);  // [64, 128)
  EXPECT_EQ(report.buckets[3].key_accuracy, 0.0);  // [256, 512)
  EXPECT_EQ(report.buckets[4].key_accuracy, 0.0);  // [512, 1007)
  EXPECT_GT(report.buckets[4].key_loss, 1.0);
}

TEST(Passkey, AScorerThatNeverCopiesIsAtChance) {
  const TokenDataset text = filler();
  PasskeyOptions options;
  options.trials = 40;
  const PasskeyScorer always_zero = [](std::span<const int32_t>, int64_t, int64_t,
                                       std::span<double> loss, std::span<int32_t> predicted) {
    std::ranges::fill(predicted, '0');
    std::ranges::fill(loss, std::numbers::ln10);
  };
  const PasskeyReport report = evaluate_passkey(text, options, 8, always_zero);
  for (const PasskeyBucket& b : report.buckets) {
    EXPECT_EQ(b.key_accuracy, 0.0);
    // 200 digits per bucket, each '0' with probability 1/10.
    EXPECT_GT(b.digit_accuracy, 0.03);
    EXPECT_LT(b.digit_accuracy, 0.2);
    EXPECT_NEAR(b.key_loss, std::numbers::ln10, 1e-12);
  }
}

}  // namespace
}  // namespace longnet
