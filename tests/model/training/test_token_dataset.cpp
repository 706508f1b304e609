// TokenDataset: training windows are a deterministic function of (seed, step, group,
// row), different across groups; validation windows are fixed and spread evenly.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>

#include "model/training/token_dataset.hpp"
#include "model/training/token_shards.hpp"
#include "runtime/error.hpp"
#include "runtime/hdf5_file.hpp"
#include "tests/support/temp_dir.hpp"

namespace longnet {
namespace {

using test::error_of;
using test::TempDir;
using test::write_file;
using ::testing::AllOf;
using ::testing::HasSubstr;

// 10007 random bytes (a prime length, so nothing lines up with powers of two).
TokenDataset random_dataset(int64_t n = 10007, uint32_t seed = 17) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> tokens(static_cast<std::size_t>(n));
  for (uint8_t& t : tokens) t = static_cast<uint8_t>(rng() & 0xFF);
  return TokenDataset(std::move(tokens), "random tokens");
}

// Row r of a [batch, seq_len + 1] batch must be tokens[offset, offset + seq_len + 1).
void expect_rows_are_windows(const TokenDataset& data, const std::vector<int32_t>& batch,
                             int64_t seq_len, const std::vector<int64_t>& offsets) {
  ASSERT_EQ(batch.size(), offsets.size() * static_cast<std::size_t>(seq_len + 1));
  for (std::size_t r = 0; r < offsets.size(); ++r) {
    ASSERT_GE(offsets[r], 0);
    ASSERT_LE(offsets[r] + seq_len + 1, data.size());
    for (int64_t i = 0; i <= seq_len; ++i) {
      ASSERT_EQ(batch[r * static_cast<std::size_t>(seq_len + 1) + static_cast<std::size_t>(i)],
                data.tokens()[static_cast<std::size_t>(offsets[r] + i)])
          << "row " << r << " position " << i;
    }
  }
}

TEST(TokenDataset, SampleBatchRowsAreWindowsAtTheHashedOffsets) {
  const TokenDataset data = random_dataset();
  constexpr int64_t kBatch = 5, kSeqLen = 97;
  std::vector<int32_t> batch;
  data.sample_batch(1234, 7, 2, kBatch, kSeqLen, batch);
  std::vector<int64_t> offsets;
  for (int64_t r = 0; r < kBatch; ++r)
    offsets.push_back(data.sample_offset(1234, 7, 2, r, kSeqLen));
  expect_rows_are_windows(data, batch, kSeqLen, offsets);
}

TEST(TokenDataset, SampleBatchIsAFunctionOfSeedStepGroupAndRow) {
  const TokenDataset data = random_dataset();
  const TokenDataset same_tokens = random_dataset();
  std::vector<int32_t> a, b;
  data.sample_batch(1, 42, 0, 4, 64, a);
  same_tokens.sample_batch(1, 42, 0, 4, 64, b);
  EXPECT_EQ(a, b);  // resuming at step 42 gives the batch of step 42

  // Any one coordinate changed gives different windows.
  for (const auto& [seed, step, group] :
       std::vector<std::tuple<uint64_t, uint64_t, int64_t>>{{2, 42, 0}, {1, 43, 0}, {1, 42, 1}}) {
    data.sample_batch(seed, step, group, 4, 64, b);
    EXPECT_NE(a, b) << "seed " << seed << " step " << step << " group " << group;
  }
  // Rows of one batch differ from each other.
  std::set<int64_t> offsets;
  for (int64_t r = 0; r < 4; ++r) offsets.insert(data.sample_offset(1, 42, 0, r, 64));
  EXPECT_EQ(offsets.size(), 4u);
}

TEST(TokenDataset, DataParallelGroupsDrawDifferentWindows) {
  const TokenDataset data = random_dataset(1'000'003);
  constexpr int64_t kGroups = 8, kRows = 16, kSeqLen = 128;
  std::set<int64_t> offsets;
  for (uint64_t step = 0; step < 4; ++step) {
    for (int64_t g = 0; g < kGroups; ++g) {
      for (int64_t r = 0; r < kRows; ++r)
        offsets.insert(data.sample_offset(9, step, g, r, kSeqLen));
    }
  }
  // 512 draws from ~10^6 offsets: a repeat has probability ~13 %; two would be suspicious.
  EXPECT_GE(offsets.size(), 4u * kGroups * kRows - 1);
}

TEST(TokenDataset, OffsetsCoverEveryWindowUniformly) {
  const TokenDataset data = random_dataset(1000);
  constexpr int64_t kSeqLen = 899;  // 101 possible windows, offsets 0 .. 100
  std::vector<int> hits(101, 0);
  constexpr int kDraws = 101 * 200;
  for (int step = 0; step < kDraws; ++step) {
    const int64_t offset = data.sample_offset(3, static_cast<uint64_t>(step), 0, 0, kSeqLen);
    ASSERT_GE(offset, 0);
    ASSERT_LE(offset, 100);
    ++hits[static_cast<std::size_t>(offset)];
  }
  // Binomial(20200, 1/101): mean 200, standard deviation 14; 5 of them either side.
  for (std::size_t o = 0; o < hits.size(); ++o) {
    EXPECT_NEAR(hits[o], 200, 70) << "offset " << o;
  }
}

TEST(TokenDataset, LongestWindowStartsAtZero) {
  const TokenDataset data = random_dataset(300);
  std::vector<int32_t> batch;
  data.sample_batch(5, 0, 0, 3, 299, batch);
  expect_rows_are_windows(data, batch, 299, {0, 0, 0});
  data.validation_batch(4, 2, 299, batch);
  expect_rows_are_windows(data, batch, 299, {0, 0});
}

TEST(TokenDataset, ValidationBatchesAreFixedAndShareTheirWindowSequence) {
  const TokenDataset data = random_dataset();
  constexpr int64_t kSeqLen = 50;
  std::vector<int32_t> first, again, wide;
  data.validation_batch(0, 4, kSeqLen, first);
  random_dataset().validation_batch(0, 4, kSeqLen, again);
  EXPECT_EQ(first, again);
  std::vector<int64_t> offsets;
  for (int64_t w = 0; w < 4; ++w) offsets.push_back(data.validation_offset(w, kSeqLen));
  expect_rows_are_windows(data, first, kSeqLen, offsets);

  // Batch 1 of size 4 holds windows 4..7: the second half of batch 0 of size 8.
  std::vector<int32_t> second;
  data.validation_batch(1, 4, kSeqLen, second);
  data.validation_batch(0, 8, kSeqLen, wide);
  const auto half = static_cast<std::ptrdiff_t>(4 * (kSeqLen + 1));
  EXPECT_EQ(std::vector<int32_t>(wide.begin(), wide.begin() + half), first);
  EXPECT_EQ(std::vector<int32_t>(wide.begin() + half, wide.end()), second);
}

TEST(TokenDataset, ValidationWindowsSpreadEvenlyOverTheSplit) {
  const TokenDataset data = random_dataset(100'000);
  constexpr int64_t kSeqLen = 1000;
  const auto range = static_cast<double>(data.size() - kSeqLen);
  for (const int64_t count : {8, 32, 100}) {
    std::vector<int64_t> starts;
    for (int64_t w = 0; w < count; ++w) starts.push_back(data.validation_offset(w, kSeqLen));
    starts.push_back(static_cast<int64_t>(range));  // close the last gap at the end
    std::ranges::sort(starts);
    int64_t widest = starts.front();  // the gap before the first window
    for (std::size_t i = 1; i < starts.size(); ++i)
      widest = std::max(widest, starts[i] - starts[i - 1]);
    // Golden-ratio points: no gap wider than phi^2 / count of the range (three-gap theorem).
    EXPECT_LE(static_cast<double>(widest), 2.62 * range / static_cast<double>(count) + 1)
        << count << " windows";
  }
}

TEST(TokenDataset, SplitShorterThanOneWindowIsAnError) {
  const TokenDataset data = random_dataset(100);
  std::vector<int32_t> batch;
  EXPECT_THAT(error_of([&] { data.sample_batch(1, 0, 0, 1, 100, batch); }),
              AllOf(HasSubstr("random tokens holds 100 tokens"),
                    HasSubstr("fewer than seq_len + 1 = 101")));
  EXPECT_THAT(error_of([&] { data.validation_batch(0, 1, 100, batch); }),
              HasSubstr("fewer than seq_len + 1"));
  EXPECT_THAT(error_of([&] { data.sample_batch(1, 0, 0, 0, 10, batch); }),
              HasSubstr("must be positive"));
  EXPECT_THAT(error_of([&] { data.sample_batch(1, 0, -1, 1, 10, batch); }), HasSubstr("group -1"));
}

TEST(TokenDataset, OpensWhatDataPrepareWrote) {
  const TempDir tmp;
  std::mt19937 rng(4);
  for (int i = 0; i < 30; ++i) {
    std::string text(static_cast<std::size_t>(50 + i), 'a');
    for (char& c : text) c = static_cast<char>('a' + rng() % 26);
    write_file(tmp / "src" / fmt::format("f{:02}.go", i), text);
  }
  PrepareOptions options;
  options.inputs = {tmp / "src"};
  options.out_dir = tmp / "data";
  options.val_fraction = 0.3;
  const PrepareSummary summary = prepare_token_data(options);

  const TokenDataset train(tmp / "data", "train");
  const TokenDataset val(tmp / "data", "val");
  EXPECT_EQ(train.size(), summary.train_tokens);
  EXPECT_EQ(val.size(), summary.val_tokens);
  EXPECT_EQ(train.file_count(), summary.train_files);
  EXPECT_DOUBLE_EQ(train.unigram_entropy_nats(), summary.train_entropy.nats);
  const TokenDataset in_memory(std::vector<uint8_t>(train.tokens().begin(), train.tokens().end()),
                               "copy");
  EXPECT_DOUBLE_EQ(in_memory.unigram_entropy_bits(), train.unigram_entropy_bits());
  EXPECT_EQ(H5File::open_read(tmp / "data" / "train.h5").read_dataset_u8("tokens"),
            std::vector<uint8_t>(train.tokens().begin(), train.tokens().end()));
}

TEST(TokenDataset, OpeningSomethingElseIsAnError) {
  const TempDir tmp;
  EXPECT_THAT(error_of([&] { TokenDataset(tmp.path(), "train"); }),
              AllOf(HasSubstr("train.h5"), HasSubstr("longnet data prepare")));
  EXPECT_THAT(error_of([&] { TokenDataset(tmp.path(), "test"); }),
              HasSubstr("unknown token split 'test'"));
  {
    H5File other = H5File::create(tmp / "train.h5");
    other.write_attr_string("format", "longnet-checkpoint");
    other.close();
  }
  EXPECT_THAT(error_of([&] { TokenDataset(tmp.path(), "train"); }),
              AllOf(HasSubstr("is not token data"), HasSubstr("longnet-checkpoint")));
}

}  // namespace
}  // namespace longnet
