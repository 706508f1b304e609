// What keeps a training run's files safe: the checkpoint directory lock, temporaries no
// planted link can redirect, non-finite state never checkpointed, a JSON log whose write
// errors are reported, outputs refused before the work, resume config differences.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>

#include "model/training/checkpoint.hpp"
#include "model/training/config_diff.hpp"
#include "model/training/directory_lock.hpp"
#include "model/training/json_log.hpp"
#include "model/training/private_file.hpp"
#include "model/training/token_shards.hpp"
#include "tests/support/temp_dir.hpp"

namespace longnet {
namespace {

namespace fs = std::filesystem;
using test::error_of;
using test::read_file;
using test::TempDir;
using test::write_file;
using ::testing::HasSubstr;

std::string host_name() {
  char name[256] = {};
  ::gethostname(name, sizeof name - 1);
  return name;
}

CheckpointState small_state(int64_t step) {
  CheckpointState s;
  s.config_toml = "# config\n";
  s.step = step;
  for (const char* name : {"a", "b"}) {
    Tensor t = Tensor::zeros({2, 3});
    for (float& v : t.span<float>()) v = 0.5f;
    s.params.push_back({name, t});
    s.adam_m.push_back({name, Tensor::zeros({2, 3})});
    s.adam_v.push_back({name, Tensor::zeros({2, 3})});
  }
  s.rng_state = {1};
  return s;
}

// ---- the checkpoint directory lock ---------------------------------------------------

TEST(DirectoryLock, ASecondRunIsRefusedNamingTheHoldersHostAndPid) {
  const TempDir tmp;
  const DirectoryLock first(tmp / "ckpt");
  // flock locks belong to an open file description: a second open in this process
  // conflicts just as another process's would.
  const std::string message = error_of([&] { DirectoryLock second(tmp / "ckpt"); });
  EXPECT_THAT(message, HasSubstr("in use by another training run"));
  EXPECT_THAT(message, HasSubstr(fmt::format("host {}, pid {}", host_name(), ::getpid())));
}

TEST(DirectoryLock, IsFreeAgainOnceReleased) {
  const TempDir tmp;
  { const DirectoryLock first(tmp / "ckpt"); }
  EXPECT_NO_THROW(DirectoryLock again(tmp / "ckpt"));
}

// A run killed with its lock: the kernel dropped the flock; the file's text is stale.
TEST(DirectoryLock, AStaleLockFileOfAGoneProcessDoesNotBlock) {
  const TempDir tmp;
  write_file(lock_file_of(tmp / "ckpt"), "some-host 999999\n");
  const DirectoryLock lock(tmp / "ckpt");
  EXPECT_EQ(read_file(lock.file()), fmt::format("{} {}\n", host_name(), ::getpid()));
}

TEST(DirectoryLock, AnUncreatableDirectoryIsRefused) {
  const TempDir tmp;
  write_file(tmp / "file", "a regular file");  // root can write anywhere, not under a file
  EXPECT_THAT(error_of([&] { DirectoryLock lock(tmp / "file" / "ckpt"); }),
              HasSubstr("cannot create checkpoint directory"));
}

TEST(DirectoryLock, AReadOnlyDirectoryIsRefusedEvenWithALockFileInIt) {
  if (::geteuid() == 0) GTEST_SKIP() << "root writes read-only directories";
  const TempDir tmp;
  { const DirectoryLock earlier(tmp / "ckpt"); }  // leaves ckpt/.lock behind
  fs::permissions(tmp / "ckpt", fs::perms::owner_read | fs::perms::owner_exec);
  const std::string message = error_of([&] { DirectoryLock lock(tmp / "ckpt"); });
  fs::permissions(tmp / "ckpt", fs::perms::owner_all);
  EXPECT_THAT(message, HasSubstr("cannot write in checkpoint directory"));
}

TEST(DirectoryLock, ALinkPlantedAsTheLockFileIsNotWrittenThrough) {
  const TempDir tmp;
  write_file(tmp / "victim", "precious");
  fs::create_directories(tmp / "ckpt");
  fs::create_symlink(tmp / "victim", lock_file_of(tmp / "ckpt"));
  EXPECT_THAT(error_of([&] { DirectoryLock lock(tmp / "ckpt"); }),
              HasSubstr("cannot write in checkpoint directory"));
  EXPECT_TRUE(read_file(tmp / "victim") == "precious")
      << "the file behind the link was overwritten";
}

// ---- temporaries -----------------------------------------------------------------------

TEST(PrivateTemporary, NamesAreUnpredictableAndNewFiles) {
  const TempDir tmp;
  const fs::path a = create_private_temporary(tmp.path(), ".x.");
  const fs::path b = create_private_temporary(tmp.path(), ".x.");
  EXPECT_NE(a, b);
  EXPECT_TRUE(is_regular_file_not_link(a));
  EXPECT_EQ(fs::file_size(a), 0u);
  EXPECT_THAT(a.filename().string(), ::testing::StartsWith(".x."));
}

// The name the writer used to pick, and any other temporary-like name, linked to a file
// outside: the checkpoint is written, the file outside is untouched.
TEST(PrivateTemporary, ACheckpointWriteNeverFollowsAPlantedLink) {
  const TempDir tmp;
  write_file(tmp / "victim", "precious");
  fs::create_directories(tmp / "ckpt");
  fs::create_symlink(tmp / "victim",
                     tmp / "ckpt" / fmt::format(".tmp_ckpt_00000003.{}.h5", ::getpid()));
  fs::create_symlink(tmp / "victim", tmp / "ckpt" / ".tmp_ckpt_00000002.abcdef");
  const fs::path written = write_checkpoint(tmp / "ckpt", small_state(3), 2);
  EXPECT_EQ(read_checkpoint(written).step, 3);
  EXPECT_TRUE(read_file(tmp / "victim") == "precious")
      << "the file behind the link was overwritten";
  // Stale-temporary cleanup leaves links (and their targets) alone.
  EXPECT_TRUE(fs::exists(tmp / "victim"));
}

TEST(PrivateTemporary, DataPrepareNeverFollowsAPlantedLink) {
  const TempDir tmp;
  write_file(tmp / "victim", "precious");
  write_file(tmp / "src" / "a.go", "package a\n");
  write_file(tmp / "src" / "b.go", "package b\n");
  fs::create_directories(tmp / "out");
  fs::create_symlink(tmp / "victim", tmp / "out" / fmt::format(".train.h5.tmp-{}", ::getpid()));
  fs::create_symlink(tmp / "victim", tmp / "out" / fmt::format(".val.h5.tmp-{}", ::getpid()));
  PrepareOptions options;
  options.inputs = {tmp / "src"};
  options.out_dir = tmp / "out";
  options.val_fraction = 0;
  const PrepareSummary summary = prepare_token_data(options);
  EXPECT_EQ(summary.train_tokens, 22);
  EXPECT_TRUE(read_file(tmp / "victim") == "precious")
      << "the file behind the link was overwritten";
}

TEST(PrivateTemporary, DataPrepareRemovesStaleTemporariesButNotLinks) {
  const TempDir tmp;
  write_file(tmp / "victim", "precious");
  write_file(tmp / "src" / "a.go", "package a\n");
  write_file(tmp / "out" / ".train.h5.tmp-Ab3xYz", "left by a killed run");
  write_file(tmp / "out" / ".val.h5.tmp-4242", "left by an older version");
  write_file(tmp / "out" / "notes.txt", "not ours");
  fs::create_symlink(tmp / "victim", tmp / "out" / ".train.h5.tmp-planted");
  PrepareOptions options;
  options.inputs = {tmp / "src"};
  options.out_dir = tmp / "out";
  options.val_fraction = 0;
  prepare_token_data(options);
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(tmp / "out")) {
    names.push_back(entry.path().filename().string());
  }
  std::ranges::sort(names);
  EXPECT_EQ(names,
            (std::vector<std::string>{".train.h5.tmp-planted", "notes.txt", "train.h5", "val.h5"}));
  EXPECT_TRUE(read_file(tmp / "victim") == "precious");
}

// ---- outputs refused before the work --------------------------------------------------

// The inputs do not exist either: the refusal must name the output, found first.
TEST(DataPrepareRefusals, AnUncreatableOutputDirectoryIsRefusedBeforeReadingInputs) {
  const TempDir tmp;
  write_file(tmp / "file", "a regular file");
  PrepareOptions options;
  options.inputs = {tmp / "no such input"};
  options.out_dir = tmp / "file" / "sub";
  EXPECT_THAT(error_of([&] { prepare_token_data(options); }),
              HasSubstr(fmt::format("cannot create output directory '{}'",
                                    (tmp / "file" / "sub").string())));
}

TEST(DataPrepareRefusals, AnUnwritableOutputDirectoryIsRefusedBeforeReadingInputs) {
  if (::geteuid() == 0) GTEST_SKIP() << "root writes read-only directories";
  const TempDir tmp;
  fs::create_directories(tmp / "out");
  fs::permissions(tmp / "out", fs::perms::owner_read | fs::perms::owner_exec);
  PrepareOptions options;
  options.inputs = {tmp / "no such input"};
  options.out_dir = tmp / "out";
  const std::string message = error_of([&] { prepare_token_data(options); });
  fs::permissions(tmp / "out", fs::perms::owner_all);
  EXPECT_THAT(message, HasSubstr("cannot write in output directory"));
}

// ---- non-finite state --------------------------------------------------------------------

TEST(CheckpointFinite, ANaNOrInfinityIsNamed) {
  CheckpointState s = small_state(7);
  EXPECT_NO_THROW(check_checkpoint_finite(s));
  s.adam_v[1].tensor.span<float>()[4] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THAT(error_of([&] { check_checkpoint_finite(s); }),
              HasSubstr("adam_v/b holds nan at flat index 4"));
  s.adam_v[1].tensor.span<float>()[4] = 0;
  s.params[0].tensor.span<float>()[0] = -std::numeric_limits<float>::infinity();
  EXPECT_THAT(error_of([&] { check_checkpoint_finite(s); }),
              HasSubstr("params/a holds -inf at flat index 0"));
}

// ---- the JSON log ----------------------------------------------------------------------

TEST(JsonLog, AFullDiskIsAFailureNotASilentlyTruncatedLog) {
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  JsonLog log("/dev/full");
  ::testing::internal::CaptureStderr();
  log.write(R"({"step": 1})");
  log.write(R"({"step": 2})");
  const std::string warnings = ::testing::internal::GetCapturedStderr();
  log.close();
  ASSERT_TRUE(log.failure().has_value());
  EXPECT_THAT(*log.failure(), HasSubstr("cannot write the JSON log '/dev/full'"));
  EXPECT_THAT(*log.failure(), HasSubstr(std::strerror(ENOSPC)));
  EXPECT_THAT(warnings, HasSubstr("WARNING"));
  EXPECT_EQ(warnings.find("WARNING"), warnings.rfind("WARNING")) << "one warning, not one a line";
}

TEST(JsonLog, RecordsAreWrittenOneALine) {
  const TempDir tmp;
  JsonLog log((tmp / "log.json").string());
  log.write(R"({"step": 1})");
  log.write(R"({"step": 2})");
  log.close();
  EXPECT_FALSE(log.failure().has_value());
  EXPECT_EQ(read_file(tmp / "log.json"), "{\"step\": 1}\n{\"step\": 2}\n");
}

TEST(JsonLog, AnUncreatableFileIsRefusedAtOnce) {
  const TempDir tmp;
  write_file(tmp / "file", "a regular file");
  EXPECT_THAT(error_of([&] { JsonLog log((tmp / "file" / "log.json").string()); }),
              HasSubstr("cannot write the JSON log"));
}

// ---- resume with another config ---------------------------------------------------------

TEST(ConfigChanges, ListsEveryDifferenceAndRefusesTheMeaningfulOnes) {
  TrainConfig saved, now;
  now.optimizer.lr = 5e-4;
  now.seed = 99;
  now.data.seq_len = 512;
  now.model.segment_lengths = {64, 256, 512};
  const std::vector<ConfigChange> changes = config_changes(saved, now);
  ASSERT_EQ(changes.size(), 4u);
  EXPECT_EQ(changes[0].field, "seed");
  EXPECT_EQ(changes[0].old_value, "1234");
  EXPECT_EQ(changes[0].new_value, "99");
  EXPECT_TRUE(changes[0].refused);
  EXPECT_EQ(changes[1].field, "model.segment_lengths");
  EXPECT_TRUE(changes[1].refused);
  EXPECT_EQ(changes[2].field, "data.seq_len");
  EXPECT_TRUE(changes[2].refused);
  EXPECT_EQ(changes[3].field, "optimizer.lr");
  EXPECT_EQ(changes[3].old_value, "0.001");
  EXPECT_EQ(changes[3].new_value, "0.0005");
  EXPECT_FALSE(changes[3].refused);
  EXPECT_TRUE(config_changes(saved, saved).empty());
}

TEST(ConfigChanges, StepsLogIntervalsAndTheRankLayoutMayChange) {
  for (const char* field : {"optimizer.max_steps", "optimizer.lr", "log.every", "eval.every",
                            "parallel.sp", "checkpoint.every", "data.batch_size"}) {
    EXPECT_FALSE(change_refused_on_resume(field)) << field;
  }
}

}  // namespace
}  // namespace longnet
