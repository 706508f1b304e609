// `longnet data prepare`: files found and filtered, split by path hash, concatenated with
// a NUL after each, written with their attributes; every error names its cause.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <random>

#include "launch/data_command.hpp"
#include "model/training/token_shards.hpp"
#include "runtime/error.hpp"
#include "runtime/hdf5_file.hpp"
#include "tests/support/temp_dir.hpp"

namespace longnet {
namespace {

using test::error_of;
using test::read_file;
using test::TempDir;
using test::write_file;
using ::testing::AllOf;
using ::testing::HasSubstr;

// Printable text without NUL, of a length drawn from the generator.
std::string random_text(std::mt19937& rng, int max_length) {
  std::uniform_int_distribution<int> length(1, max_length), byte(9, 126);
  std::string text(static_cast<std::size_t>(length(rng)), ' ');
  for (char& c : text) c = static_cast<char>(byte(rng));
  return text;
}

// A source tree of `count` .go files in nested directories, plus .txt files that the
// extension filter must drop. Returns the .go files' relative paths.
std::vector<std::string> make_tree(const std::filesystem::path& root, int count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::string> go_files;
  for (int i = 0; i < count; ++i) {
    const std::string relative = fmt::format("pkg{}/sub{}/file_{:03}.go", i % 3, i % 5, i);
    write_file(root / relative, random_text(rng, 300));
    go_files.push_back(relative);
    if (i % 4 == 0) write_file(root / fmt::format("pkg{}/notes_{}.txt", i % 3, i), "not go\n");
  }
  std::ranges::sort(go_files);
  return go_files;
}

// What prepare must write for one split: the files of that split in sorted order, each
// followed by the separator.
std::vector<uint8_t> expected_tokens(const std::filesystem::path& root,
                                     const std::vector<std::string>& sorted_files, bool val,
                                     double fraction, uint64_t seed) {
  std::vector<uint8_t> tokens;
  for (const std::string& relative : sorted_files) {
    if (in_validation_split(relative, fraction, seed) != val) continue;
    const std::string bytes = read_file(root / relative);
    tokens.insert(tokens.end(), bytes.begin(), bytes.end());
    tokens.push_back(kDocumentSeparator);
  }
  return tokens;
}

PrepareOptions options_for(const std::filesystem::path& input, const std::filesystem::path& out,
                           double fraction, uint64_t seed = 0) {
  PrepareOptions options;
  options.inputs = {input};
  options.extensions = {".go"};
  options.out_dir = out;
  options.val_fraction = fraction;
  options.seed = seed;
  return options;
}

TEST(UnigramEntropy, MatchesClosedForms) {
  std::vector<uint8_t> every_byte(256);
  for (int i = 0; i < 256; ++i) every_byte[static_cast<std::size_t>(i)] = static_cast<uint8_t>(i);
  // 256 terms summed in double: a few ulps of 8 each.
  EXPECT_NEAR(unigram_entropy(every_byte).bits, 8.0, 1e-12);
  EXPECT_NEAR(unigram_entropy(every_byte).nats, std::log(256.0), 1e-12);
  EXPECT_DOUBLE_EQ(unigram_entropy(std::vector<uint8_t>{7, 7, 7}).bits, 0.0);
  EXPECT_DOUBLE_EQ(unigram_entropy(std::vector<uint8_t>{1, 2, 1, 2}).bits, 1.0);
  // p = (1/2, 1/4, 1/4): 1.5 bits.
  EXPECT_DOUBLE_EQ(unigram_entropy(std::vector<uint8_t>{0, 0, 1, 2}).bits, 1.5);
  EXPECT_EQ(unigram_entropy({}).bits, 0.0);
}

TEST(ValidationSplit, IsAFunctionOfPathFractionAndSeed) {
  constexpr int kNames = 20000;
  constexpr double kFraction = 0.3;
  int in_val = 0, moved_by_seed = 0;
  for (int i = 0; i < kNames; ++i) {
    const std::string name = fmt::format("src/pkg{}/file{}.go", i % 97, i);
    const bool val = in_validation_split(name, kFraction, 1);
    EXPECT_FALSE(in_validation_split(name, 0.0, 1));
    in_val += val ? 1 : 0;
    moved_by_seed += val != in_validation_split(name, kFraction, 2) ? 1 : 0;
  }
  // Binomial(20000, 0.3): standard deviation 65; 5 of them is a loose bound.
  EXPECT_NEAR(in_val, kFraction * kNames, 5 * std::sqrt(kNames * kFraction * (1 - kFraction)));
  // Independent splits disagree on 2 p (1 - p) = 42 % of the files.
  EXPECT_NEAR(moved_by_seed, 0.42 * kNames, 400);
}

TEST(DataPrepare, WritesEachSplitAsItsFilesInSortedOrderWithSeparators) {
  const TempDir tmp;
  const std::vector<std::string> go_files = make_tree(tmp / "src", 40, 11);
  constexpr double kFraction = 0.25;
  constexpr uint64_t kSeed = 5;
  const PrepareSummary summary =
      prepare_token_data(options_for(tmp / "src", tmp / "out", kFraction, kSeed));

  const auto train = expected_tokens(tmp / "src", go_files, false, kFraction, kSeed);
  const auto val = expected_tokens(tmp / "src", go_files, true, kFraction, kSeed);
  ASSERT_FALSE(val.empty()) << "the test tree should put some files in val";
  EXPECT_EQ(summary.train_files + summary.val_files, 40);
  EXPECT_EQ(summary.train_tokens, static_cast<int64_t>(train.size()));
  EXPECT_EQ(summary.val_tokens, static_cast<int64_t>(val.size()));
  EXPECT_EQ(summary.bytes + 40, summary.train_tokens + summary.val_tokens);  // one NUL per file

  const H5File train_file = H5File::open_read(tmp / "out" / "train.h5");
  EXPECT_EQ(train_file.read_dataset_u8("tokens"), train);
  EXPECT_EQ(train_file.read_attr_string("format"), "longnet-tokens");
  EXPECT_EQ(train_file.read_attr_int64("version"), 1);
  EXPECT_EQ(train_file.read_attr_string("split"), "train");
  EXPECT_EQ(train_file.read_attr_int64("files"), summary.train_files);
  EXPECT_EQ(train_file.read_attr_int64("tokens"), summary.train_tokens);
  EXPECT_EQ(train_file.read_attr_int64("separator"), 0);
  EXPECT_EQ(train_file.read_attr_uint64("split_seed"), kSeed);
  EXPECT_THAT(train_file.read_attr_string("source"), HasSubstr(".go"));
  EXPECT_DOUBLE_EQ(train_file.read_attr_double("unigram_entropy_bits"),
                   unigram_entropy(train).bits);
  EXPECT_DOUBLE_EQ(train_file.read_attr_double("unigram_entropy_nats"),
                   unigram_entropy(train).nats);
  EXPECT_DOUBLE_EQ(summary.train_entropy.nats, unigram_entropy(train).nats);

  const H5File val_file = H5File::open_read(tmp / "out" / "val.h5");
  EXPECT_EQ(val_file.read_dataset_u8("tokens"), val);
  EXPECT_EQ(val_file.read_attr_string("split"), "val");
  EXPECT_EQ(val_file.read_attr_int64("files"), summary.val_files);

  // No temporary is left behind.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(tmp / "out"),
                          std::filesystem::directory_iterator()),
            2);
}

TEST(DataPrepare, ExtensionFilterKeepsOnlyMatchingFilesInDirectories) {
  const TempDir tmp;
  make_tree(tmp / "src", 12, 3);  // 12 .go and 3 .txt files
  PrepareOptions options = options_for(tmp / "src", tmp / "out", 0.0);
  options.extensions = {"txt"};  // the dot is optional
  EXPECT_EQ(prepare_token_data(options).train_files, 3);
  options.extensions = {".go", ".txt"};
  EXPECT_EQ(prepare_token_data(options).train_files, 15);
  options.extensions = {};
  EXPECT_EQ(prepare_token_data(options).train_files, 15);
}

TEST(DataPrepare, FileNamedOnTheCommandLineIsKeptWhateverItsExtension) {
  const TempDir tmp;
  write_file(tmp / "README", "hello\n");
  write_file(tmp / "dir" / "a.go", "package a\n");
  PrepareOptions options = options_for(tmp / "README", tmp / "out", 0.0);
  options.inputs.push_back(tmp / "dir");
  const PrepareSummary summary = prepare_token_data(options);
  EXPECT_EQ(summary.train_files, 2);
  const std::string expected = std::string("hello\n") + '\0' + "package a\n" + '\0';
  const auto tokens = H5File::open_read(summary.train_path).read_dataset_u8("tokens");
  EXPECT_EQ(std::string(tokens.begin(), tokens.end()), expected);
}

TEST(DataPrepare, ValidationFractionZeroWritesAnEmptyValSplit) {
  const TempDir tmp;
  make_tree(tmp / "src", 5, 1);
  const PrepareSummary summary = prepare_token_data(options_for(tmp / "src", tmp / "out", 0.0));
  EXPECT_EQ(summary.val_files, 0);
  EXPECT_EQ(summary.val_tokens, 0);
  EXPECT_TRUE(H5File::open_read(summary.val_path).read_dataset_u8("tokens").empty());
}

TEST(DataPrepare, ErrorsNameTheirCause) {
  const TempDir tmp;
  std::filesystem::create_directories(tmp / "empty");
  EXPECT_THAT(error_of([&] { prepare_token_data(options_for(tmp / "empty", tmp / "out", 0.1)); }),
              AllOf(HasSubstr("no input files"), HasSubstr("empty"), HasSubstr(".go")));
  EXPECT_THAT(error_of([&] { prepare_token_data(options_for(tmp / "missing", tmp / "out", 0.1)); }),
              AllOf(HasSubstr("missing"), HasSubstr("does not exist")));

  make_tree(tmp / "src", 3, 2);
  EXPECT_THAT(error_of([&] { prepare_token_data(options_for(tmp / "src", tmp / "out", 1e-9)); }),
              HasSubstr("no file fell into the validation split"));
  EXPECT_THAT(error_of([&] { prepare_token_data(options_for(tmp / "src", tmp / "out", 1.0)); }),
              HasSubstr("--val-fraction 1 is out of range"));

  write_file(tmp / "a_file", "x");
  EXPECT_THAT(error_of([&] { prepare_token_data(options_for(tmp / "src", tmp / "a_file", 0.0)); }),
              AllOf(HasSubstr("cannot create output directory"), HasSubstr("a_file")));
  EXPECT_THAT(error_of([&] {
                PrepareOptions options = options_for(tmp / "src", tmp / "out", 0.0);
                options.extensions = {""};
                prepare_token_data(options);
              }),
              HasSubstr("--ext '' is empty"));
}

TEST(DataPrepare, UnreadableFileIsNamed) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads files whatever their permissions";
  const TempDir tmp;
  write_file(tmp / "src" / "secret.go", "package secret\n");
  std::filesystem::permissions(tmp / "src" / "secret.go", std::filesystem::perms::none);
  EXPECT_THAT(error_of([&] { prepare_token_data(options_for(tmp / "src", tmp / "out", 0.0)); }),
              AllOf(HasSubstr("cannot read input file"), HasSubstr("secret.go")));
}

TEST(DataCommand, PreparesThroughTheCommandLine) {
  const TempDir tmp;
  make_tree(tmp / "src", 30, 8);
  CLI::App app{"test", "longnet"};
  add_data_command(app);
  const std::string input = (tmp / "src").string(), out = (tmp / "out").string();
  const std::vector<const char*> argv = {
      "longnet", "data",      "prepare",        "--input", input.c_str(), "--ext", ".go",
      "--out",   out.c_str(), "--val-fraction", "0.3",     "--seed",      "3"};
  ::testing::internal::CaptureStdout();
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (...) {
    ::testing::internal::GetCapturedStdout();  // so that GoogleTest's report is seen
    throw;
  }
  const std::string printed = ::testing::internal::GetCapturedStdout();
  EXPECT_THAT(printed, AllOf(HasSubstr("read 30/30 files"), HasSubstr("data prepare: 30 files"),
                             HasSubstr("bits/byte")));
  const H5File train = H5File::open_read(tmp / "out" / "train.h5");
  EXPECT_EQ(train.read_attr_uint64("split_seed"), 3u);
  EXPECT_DOUBLE_EQ(train.read_attr_double("val_fraction"), 0.3);

  CLI::App without_out{"test", "longnet"};
  add_data_command(without_out);
  const std::vector<const char*> no_out = {"longnet", "data", "prepare", "--input", input.c_str()};
  EXPECT_THROW(without_out.parse(static_cast<int>(no_out.size()), no_out.data()),
               CLI::RequiredError);
}

// The default corpus, when Debian's golang-1.19-src is installed.
TEST(DataPrepare, GoStandardLibraryIsTheDefaultCorpus) {
  if (!std::filesystem::is_directory(std::string(kDefaultGoSourceDir))) {
    GTEST_SKIP() << kDefaultGoSourceDir << " is absent (apt-get install golang-1.19-src)";
  }
  const TempDir tmp;
  PrepareOptions options;
  options.out_dir = tmp / "out";
  const PrepareSummary summary = prepare_token_data(options);
  EXPECT_GT(summary.train_files, 1000);
  EXPECT_GT(summary.val_files, 50);
  EXPECT_GT(summary.train_tokens, 10'000'000);
  // Source code: far from uniform bytes (8 bits), far from constant (0).
  EXPECT_GT(summary.train_entropy.bits, 4.0);
  EXPECT_LT(summary.train_entropy.bits, 6.0);
  EXPECT_NEAR(summary.train_entropy.nats, summary.train_entropy.bits * std::numbers::ln2, 1e-12);
}

}  // namespace
}  // namespace longnet
