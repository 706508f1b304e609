// `longnet train` and `longnet data prepare` as a user runs them (the real binary, one
// process): refusals before the work, and a progress log that cannot be written is an
// error, not a silent success.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "longnet/config.hpp"
#include "tests/support/run_process.hpp"
#include "tests/support/temp_dir.hpp"

namespace longnet {
namespace {

namespace fs = std::filesystem;
using test::run_process;
using test::RunResult;
using ::testing::HasSubstr;

// TMPDIR pointed at `tmp` for one test, even when an assertion ends it early; Open MPI's
// and PMIx's session files stay in /tmp (their clean-up races with the test's TearDown).
class ScopedTemporaryDirectory {
 public:
  explicit ScopedTemporaryDirectory(const fs::path& tmp) {
    setenv("TMPDIR", tmp.c_str(), 1);
    for (const char* name : kMpiTemporaries) setenv(name, "/tmp", 1);
  }
  ~ScopedTemporaryDirectory() {
    unsetenv("TMPDIR");
    for (const char* name : kMpiTemporaries) unsetenv(name);
  }
  ScopedTemporaryDirectory(const ScopedTemporaryDirectory&) = delete;
  ScopedTemporaryDirectory& operator=(const ScopedTemporaryDirectory&) = delete;

 private:
  static constexpr const char* kMpiTemporaries[] = {"OMPI_MCA_orte_tmpdir_base",
                                                    "PMIX_SYSTEM_TMPDIR", "PMIX_SERVER_TMPDIR"};
};

class TrainCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    root_ = fs::temp_directory_path() /
            fmt::format("longnet_train_cli_{}_{}", info->name(), ::getpid());
    fs::remove_all(root_);
    fs::create_directories(root_ / "src");
    fs::create_directories(root_ / "logs");
    for (int f = 0; f < 30; ++f) {
      std::ofstream out(root_ / "src" / fmt::format("f{:02}.go", f));
      for (int line = 0; line < 40; ++line) out << fmt::format("func f{}_{}() {{}}\n", f, line);
    }
  }
  void TearDown() override { fs::remove_all(root_); }

  RunResult longnet(std::vector<std::string> args) {
    args.insert(args.begin(), LONGNET_BINARY);
    return run_process(args, root_ / "logs");
  }
  RunResult prepare() {
    return longnet({"data", "prepare", "-q", "-i", (root_ / "src").string(), "-o",
                    (root_ / "data").string(), "--val-fraction", "0.2"});
  }
  // A tiny model that trains 3 steps in well under a second.
  std::vector<std::string> train_args() {
    std::vector<std::string> args = {"train"};
    for (const char* s :
         {"model.dim=16", "model.heads=2", "model.layers=1", "model.ffn_dim=32",
          "model.segment_lengths=16,32", "model.dilation_rates=1,2", "model.rel_pos_buckets=8",
          "model.rel_pos_max_distance=32", "data.seq_len=32", "data.batch_size=2",
          "optimizer.max_steps=3", "optimizer.warmup_steps=1", "eval.every=0", "eval.batches=1"}) {
      args.insert(args.end(), {"--set", s});
    }
    args.insert(args.end(), {"--set", "data.dir=" + (root_ / "data").string(), "--set",
                             "checkpoint.dir=" + (root_ / "ckpt").string()});
    return args;
  }

  fs::path root_;
};

TEST_F(TrainCliTest, StopAtZeroOrNegativeIsRefused) {
  ASSERT_EQ(prepare().status, 0);
  for (const char* stop : {"0", "-2"}) {
    std::vector<std::string> args = train_args();
    args.insert(args.end(), {"--stop-at", stop});
    const RunResult r = longnet(args);
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_THAT(r.err, HasSubstr(fmt::format("--stop-at {} must be a step >= 1", stop)));
    EXPECT_FALSE(fs::exists(root_ / "ckpt" / "ckpt_00000003.h5"));
  }
}

// Standard output on a full disk: the training completes, the status says the log is lost.
TEST_F(TrainCliTest, AProgressLogThatCannotBeWrittenFailsTheRun) {
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  ASSERT_EQ(prepare().status, 0);
  std::string command = fmt::format("exec '{}'", LONGNET_BINARY);
  for (const std::string& a : train_args()) command += " '" + a + "'";
  const RunResult r = run_process({"/bin/sh", "-c", command + " >/dev/full"}, root_ / "logs");
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("cannot write the progress log (standard output)"));
  EXPECT_TRUE(fs::exists(root_ / "ckpt" / "ckpt_00000003.h5")) << "the training itself finished";
}

TEST_F(TrainCliTest, DataPrepareWithItsSummaryLostToAFullDiskFails) {
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  const RunResult r = run_process(
      {"/bin/sh", "-c",
       fmt::format("exec '{}' data prepare -q --val-fraction 0.2 -i '{}' -o '{}' >/dev/full",
                   LONGNET_BINARY, (root_ / "src").string(), (root_ / "data").string())},
      root_ / "logs");
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("cannot write the summary to standard output"));
}

TEST_F(TrainCliTest, DataPrepareIntoAnUncreatableDirectoryIsRefused) {
  const RunResult r = longnet({"data", "prepare", "-q", "-i", (root_ / "src").string(), "-o",
                               (root_ / "src" / "f00.go" / "sub").string()});
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("cannot create output directory"));
}

// `longnet eval passkey` on the checkpoint of a short run: the table, the CSV, and the
// refusals that name their fix. (What it measures is tested in test_passkey and, split
// across ranks, in test_passkey_mpi.)
TEST_F(TrainCliTest, EvalPasskeyReportsEveryBucketOfACheckpoint) {
  ASSERT_EQ(prepare().status, 0);
  std::vector<std::string> args = train_args();
  std::ranges::replace(args, std::string("data.seq_len=32"), std::string("data.seq_len=64"));
  const RunResult trained = longnet(args);
  ASSERT_EQ(trained.status, 0) << trained.err;

  const std::string csv = (root_ / "passkey.csv").string();
  const RunResult r = longnet({"eval", "passkey", "--checkpoint", (root_ / "ckpt").string(),
                               "--key-digits", "3", "--trials", "3", "--csv", csv});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("ckpt_00000003.h5 (step 3), 64 tokens per prompt"));
  EXPECT_THAT(r.out, HasSubstr("key accuracy"));
  EXPECT_THAT(r.out, HasSubstr("chance"));
  // 64 tokens hold distances [18, 48]: one default bucket, [32, 49).
  const std::string table = test::read_file(csv);
  EXPECT_THAT(table, ::testing::StartsWith("distance_first,distance_last,trials,key_accuracy,"));
  EXPECT_THAT(table, HasSubstr("\n32,49,3,"));

  const RunResult empty = longnet({"eval", "passkey", "--checkpoint", (root_ / "src").string()});
  EXPECT_EQ(empty.status, 2);
  EXPECT_THAT(empty.err, HasSubstr("holds no complete checkpoint"));
  const RunResult far = longnet(
      {"eval", "passkey", "--checkpoint", (root_ / "ckpt").string(), "--buckets", "20,100"});
  EXPECT_EQ(far.status, 2);
  EXPECT_THAT(far.err, HasSubstr("must lie inside the distances a 64-token prompt can hold"));
}

// `longnet bench train` times the training loop itself: the same steps from the same
// start as `longnet train` (so the same losses), in a temporary directory it removes.
TEST_F(TrainCliTest, BenchTrainTimesTheSameStepsAsTrain) {
#ifndef LONGNET_HAVE_BENCH
  GTEST_SKIP() << "this build has no benchmarks (configured with LONGNET_BENCH=OFF)";
#endif
  ASSERT_EQ(prepare().status, 0);
  std::vector<std::string> args = train_args();
  const std::string log = (root_ / "train.jsonl").string();
  args.insert(args.end(), {"--log-json", log, "--set", "log.every=1"});
  const RunResult trained = longnet(args);
  ASSERT_EQ(trained.status, 0) << trained.err;
  const std::string records = test::read_file(log);
  const auto at = records.find(R"({"step": 3, "loss": )");
  ASSERT_NE(at, std::string::npos) << records;
  const double train_loss = std::stod(records.substr(at + 20));

  // The benchmark's temporary directory goes to TMPDIR; Open MPI's and PMIx's session
  // files stay in /tmp (their clean-up races with TearDown's).
  fs::create_directories(root_ / "tmp");
  const ScopedTemporaryDirectory environment(root_ / "tmp");
  std::vector<std::string> bench = train_args();
  bench.front() = "train";
  bench.insert(bench.begin(), "bench");
  const std::string csv = (root_ / "bench.csv").string();
  bench.insert(bench.end(), {"--warmup", "1", "--steps", "2", "--label", "tiny", "--csv", csv});
  const RunResult r = longnet(bench);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("1 warm-up steps, then 2 timed steps"));
  const std::string table = test::read_file(csv);
  EXPECT_THAT(table, ::testing::StartsWith("label,ranks,threads_per_rank,dp,sp,tokens_per_step,"
                                           "median_step_s,min_step_s,max_step_s,tokens_per_s,"
                                           "matmul_gflops,last_step,last_loss\n"));
  std::vector<std::string> cells;
  std::stringstream row(table.substr(table.find('\n') + 1));
  for (std::string cell; std::getline(row, cell, ',');) cells.push_back(cell);
  ASSERT_EQ(cells.size(), 13u) << table;
  EXPECT_EQ(cells[0], "tiny");
  EXPECT_EQ(cells[5], "64");  // batch 2 x 32 tokens
  const double median = std::stod(cells[6]), fastest = std::stod(cells[7]);
  EXPECT_GT(fastest, 0.0);
  EXPECT_LE(fastest, median);
  EXPECT_NEAR(std::stod(cells[9]), 64 / median, 64 / median * 1e-3);
  EXPECT_EQ(cells[11], "3");
  EXPECT_NEAR(std::stod(cells[12]), train_loss, 1e-4);
  EXPECT_TRUE(fs::is_empty(root_ / "tmp")) << "the temporary checkpoints were left behind";

  std::ranges::replace(bench, std::string("2"), std::string("5"));  // --steps 5
  const RunResult too_long = longnet(bench);
  EXPECT_EQ(too_long.status, 2);
  EXPECT_THAT(too_long.err, HasSubstr("exceeds optimizer.max_steps = 3"));
}

}  // namespace
}  // namespace longnet
