// `longnet train` refusing what would waste or lose work (run under mpirun, 1 and 2
// ranks): a diverged run stops without checkpointing NaN; a locked, uncreatable or
// unwritable output is refused before training; ranks that disagree on the config or
// see different newest checkpoints are stopped or made to agree; a resume under a
// changed config says what changed and refuses what would make it meaningless.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "comm/collective_step.hpp"
#include "comm/mpi_communicator.hpp"
#include "model/training/checkpoint.hpp"
#include "model/training/directory_lock.hpp"
#include "model/training/token_shards.hpp"
#include "model/training/trainer.hpp"

namespace longnet {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// A corpus prepared by rank 0 into a directory every rank sees (the same name on all).
fs::path prepare_corpus(Communicator& world, const std::string& tag) {
  std::vector<int64_t> id{static_cast<int64_t>(::getpid())};
  world.broadcast<int64_t>(id, 0);
  const fs::path root = fs::temp_directory_path() / fmt::format("longnet_guard_{}_{}", tag, id[0]);
  if (world.rank() == 0) {
    fs::remove_all(root);
    fs::create_directories(root / "src");
    for (int f = 0; f < 30; ++f) {
      std::ofstream out(root / "src" / fmt::format("file{:02}.go", f));
      for (int line = 0; line < 40; ++line) {
        out << fmt::format("func f{}_{}(x int) int {{ return x*{} }}\n", f, line, line % 7);
      }
    }
    std::ofstream(root / "file") << "a regular file: nothing can be created under it\n";
    PrepareOptions options;
    options.inputs = {root / "src"};
    options.out_dir = root / "data";
    options.val_fraction = 0.2;
    prepare_token_data(options);
  }
  world.barrier();
  return root;
}

TrainConfig small_config(const fs::path& root, const std::string& checkpoints) {
  TrainConfig c;
  c.model.dim = 16;
  c.model.heads = 2;
  c.model.layers = 1;
  c.model.ffn_dim = 32;
  c.model.segment_lengths = {16, 32};
  c.model.dilation_rates = {1, 2};
  c.model.rel_pos_buckets = 8;
  c.model.rel_pos_max_distance = 32;
  c.data.dir = (root / "data").string();
  c.data.seq_len = 32;
  c.data.batch_size = 2;
  c.optimizer.max_steps = 4;
  c.optimizer.warmup_steps = 1;
  c.eval.every = 0;
  c.eval.batches = 1;
  c.checkpoint.dir = (root / checkpoints).string();
  c.checkpoint.every = 1;
  c.checkpoint.keep_last = 2;
  return c;
}

TrainOptions quiet() {
  TrainOptions o;
  o.quiet = true;
  return o;
}

// The AgreedError message of a train() call; fails the test when it succeeds.
std::string train_error(const TrainConfig& c, Communicator& world, const TrainOptions& o) {
  try {
    train(c, world, o);
  } catch (const AgreedError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected the run to be refused";
  return "";
}

// ---- divergence ------------------------------------------------------------------------

// A run whose state overflows on the next step: one step trained and checkpointed, then
// its parameters scaled to 1e30 (finite, but their products are not) and written back
// as that step's checkpoint, from which the run resumes.
TrainConfig diverging(Communicator& world, const fs::path& root) {
  TrainConfig c = small_config(root, "ckpt");
  c.optimizer.max_steps = 12;
  TrainOptions first = quiet();
  first.stop_at = 1;
  train(c, world, first);
  if (world.rank() == 0) {
    CheckpointState state = read_checkpoint(*latest_checkpoint(c.checkpoint.dir));
    for (NamedTensor& p : state.params) {
      for (float& v : p.tensor.span<float>()) v = v * 1e30f + 1e30f;
    }
    fs::remove(*latest_checkpoint(c.checkpoint.dir));
    write_checkpoint(c.checkpoint.dir, state, 2);
  }
  world.barrier();
  return c;
}

TrainOptions resume_auto() {
  TrainOptions o = quiet();
  o.resume = "auto";
  return o;
}

TEST(Divergence, ANonFiniteLossStopsTheRunAndNoNaNCheckpointIsWritten) {
  auto world = MpiCommunicator::world();
  const fs::path root = prepare_corpus(*world, "diverge");
  const TrainConfig c = diverging(*world, root);
  const std::string message = train_error(c, *world, resume_auto());
  EXPECT_THAT(message, HasSubstr("the training diverged"));
  EXPECT_THAT(message,
              ::testing::ContainsRegex("step 2: the (loss|gradient norm) is (-?nan|-?inf)"));
  EXPECT_THAT(message, HasSubstr("on_nonfinite = \"skip\""));
  // Nothing was checkpointed after the divergence: the newest checkpoint is the one the
  // run resumed from, and the message names it.
  if (world->rank() == 0) {
    const auto newest = latest_checkpoint(c.checkpoint.dir);
    ASSERT_TRUE(newest.has_value());
    EXPECT_EQ(read_checkpoint(*newest).step, 1);
    EXPECT_THAT(message, HasSubstr(newest->string()));
  }
  world->barrier();
}

TEST(Divergence, SkipModeCountsSkippedStepsAndStopsAfterTooManyInARow) {
  auto world = MpiCommunicator::world();
  const fs::path root = prepare_corpus(*world, "skip");
  TrainConfig c = diverging(*world, root);
  c.optimizer.on_nonfinite = "skip";
  c.optimizer.max_skipped_steps = 3;
  // The skipped steps leave the state as it was, so each next step overflows again.
  TrainOptions o = resume_auto();
  o.log_json = (root / "log.json").string();
  const std::string message = train_error(c, *world, o);
  EXPECT_THAT(message, HasSubstr("step 5: the"));
  EXPECT_THAT(message, HasSubstr("after 3 skipped steps in a row"));
  if (world->rank() == 0) {
    // The skipped steps were checkpointed (every = 1): their state is the finite one.
    const auto newest = latest_checkpoint(c.checkpoint.dir);
    ASSERT_TRUE(newest.has_value());
    const CheckpointState state = read_checkpoint(*newest);
    EXPECT_EQ(state.step, 4);
    EXPECT_NO_THROW(check_checkpoint_finite(state));
    // Each skipped step is logged as such, with null (JSON has no NaN) for its values.
    std::ifstream log(root / "log.json");
    std::vector<std::string> lines;
    for (std::string line; std::getline(log, line);) lines.push_back(line);
    ASSERT_EQ(lines.size(), 3u);
    for (std::size_t i = 0; i < lines.size(); ++i) {
      EXPECT_THAT(lines[i], HasSubstr(fmt::format(R"({{"step": {}, "loss": null,)", i + 2)));
      EXPECT_THAT(lines[i], HasSubstr(R"("grad_norm": null)"));
      EXPECT_THAT(lines[i], HasSubstr(R"("skipped": true)"));
    }
  }
  world->barrier();
}

// ---- outputs refused before the work ---------------------------------------------------

// data.dir does not exist either: the refusal must be the output's, checked first.
TEST(EarlyRefusals, AnUncreatableCheckpointDirectoryIsRefusedFirst) {
  auto world = MpiCommunicator::world();
  const fs::path root = prepare_corpus(*world, "ckptdir");
  TrainConfig c = small_config(root, "file/sub");
  c.data.dir = (root / "no such data").string();
  EXPECT_THAT(train_error(c, *world, quiet()), HasSubstr("cannot create checkpoint directory"));
}

TEST(EarlyRefusals, AnUnwritableJsonLogIsRefusedFirst) {
  auto world = MpiCommunicator::world();
  const fs::path root = prepare_corpus(*world, "jsonpath");
  TrainConfig c = small_config(root, "ckpt");
  c.data.dir = (root / "no such data").string();
  TrainOptions o = quiet();
  o.log_json = (root / "file" / "log.json").string();
  EXPECT_THAT(train_error(c, *world, o), HasSubstr("cannot write the JSON log"));
}

TEST(EarlyRefusals, StopAtZeroOrNegativeIsRefused) {
  auto world = MpiCommunicator::world();
  const fs::path root = prepare_corpus(*world, "stopat");
  for (const int64_t stop : {0, -3}) {
    TrainOptions o = quiet();
    o.stop_at = stop;
    EXPECT_THAT(train_error(small_config(root, "ckpt"), *world, o),
                HasSubstr(fmt::format("--stop-at {} must be a step >= 1", stop)));
  }
}

TEST(LockedDirectory, ASecondRunInTheSameCheckpointDirectoryIsRefused) {
  auto world = MpiCommunicator::world();
  const fs::path root = prepare_corpus(*world, "lock");
  const TrainConfig c = small_config(root, "ckpt");
  std::optional<DirectoryLock> other_run;
  if (world->rank() == 0) other_run.emplace(c.checkpoint.dir);
  const std::string message = train_error(c, *world, quiet());
  EXPECT_THAT(message, HasSubstr("in use by another training run"));
  std::vector<int64_t> holder{static_cast<int64_t>(::getpid())};  // rank 0 holds the lock
  world->broadcast<int64_t>(holder, 0);
  EXPECT_THAT(message, HasSubstr(fmt::format("pid {}", holder[0])));
  other_run.reset();
  EXPECT_NO_THROW(train(c, *world, quiet()));  // free again once the holder is gone
}

TEST(JsonLog, AFullDiskFailsTheRunAtTheEnd) {
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  auto world = MpiCommunicator::world();
  const fs::path root = prepare_corpus(*world, "devfull");
  TrainOptions o = quiet();
  o.log_json = "/dev/full";
  const std::string message = train_error(small_config(root, "ckpt"), *world, o);
  EXPECT_THAT(message, HasSubstr("cannot write the JSON log '/dev/full'"));
  EXPECT_THAT(message, HasSubstr("the training finished (last checkpoint at step 4)"));
}

// ---- resume under another config ---------------------------------------------------------

TEST(ResumeConfig, AChangedSeedIsRefusedAChangedLearningRateIsAllowed) {
  auto world = MpiCommunicator::world();
  const fs::path root = prepare_corpus(*world, "resumecfg");
  TrainConfig c = small_config(root, "ckpt");
  TrainOptions o = quiet();
  o.stop_at = 2;
  train(c, *world, o);
  TrainOptions resume = quiet();
  resume.resume = "auto";
  TrainConfig reseeded = c;
  reseeded.seed = 7;
  EXPECT_THAT(train_error(reseeded, *world, resume), HasSubstr("seed (1234 -> 7)"));
  TrainOptions too_early = resume;
  too_early.stop_at = 2;
  EXPECT_THAT(train_error(c, *world, too_early), HasSubstr("--stop-at 2 is not after step 2"));
  TrainConfig retuned = c;
  retuned.optimizer.lr = 5e-4;
  retuned.optimizer.min_lr = 5e-5;
  EXPECT_EQ(train(retuned, *world, resume).first_step, 2);
}

// ---- ranks agree -------------------------------------------------------------------------

TEST(RankAgreement, RanksWithDifferentSequenceLengthsAreStoppedNamingTheValues) {
  auto world = MpiCommunicator::world();
  if (world->size() < 2) GTEST_SKIP() << "needs two ranks";
  const fs::path root = prepare_corpus(*world, "cfgagree");
  TrainConfig c = small_config(root, "ckpt");
  if (world->rank() == 1) c.data.seq_len = 16;
  EXPECT_THAT(train_error(c, *world, quiet()),
              HasSubstr("rank 1 has data.seq_len = 16 (rank 0: 32)"));
}

TEST(RankAgreement, RanksWithDifferentStopAtAreStopped) {
  auto world = MpiCommunicator::world();
  if (world->size() < 2) GTEST_SKIP() << "needs two ranks";
  const fs::path root = prepare_corpus(*world, "stopagree");
  TrainOptions o = quiet();
  o.stop_at = world->rank() == 1 ? 3 : 2;
  EXPECT_THAT(train_error(small_config(root, "ckpt"), *world, o),
              HasSubstr("rank 1 has --stop-at = 3 (rank 0: 2)"));
}

// Node-local checkpoint directories: the same relative checkpoint.dir, a different
// working directory per rank, so each rank sees its own files under one name.
class RankLocalDirectory {
 public:
  RankLocalDirectory(const fs::path& root, int rank)
      : previous_(fs::current_path()), dir_(root / fmt::format("node{}", rank)) {
    fs::create_directories(dir_ / "ckpt");
    fs::current_path(dir_);
  }
  ~RankLocalDirectory() { fs::current_path(previous_); }
  const fs::path& dir() const { return dir_; }

 private:
  fs::path previous_, dir_;
};

// Checkpoints of steps 2 and 4 of one run, in root/shared.
void shared_checkpoints(Communicator& world, const fs::path& root) {
  TrainConfig c = small_config(root, "shared");
  c.checkpoint.keep_last = 5;
  TrainOptions o = quiet();
  o.stop_at = 4;
  train(c, world, o);
}

TEST(RankAgreement, EveryRankResumesFromRankZerosChoice) {
  auto world = MpiCommunicator::world();
  if (world->size() < 2) GTEST_SKIP() << "needs two ranks";
  const fs::path root = prepare_corpus(*world, "ckptagree");
  shared_checkpoints(*world, root);
  // Rank 0 sees up to step 2; rank 1 also sees a newer one, step 4.
  for (int r = 0; r < world->size(); ++r) {
    if (world->rank() != 0) continue;
    fs::create_directories(root / fmt::format("node{}", r) / "ckpt");
    for (const int64_t step : r == 0 ? std::vector<int64_t>{2} : std::vector<int64_t>{2, 4}) {
      fs::copy_file(root / "shared" / checkpoint_file_name(step),
                    root / fmt::format("node{}", r) / "ckpt" / checkpoint_file_name(step));
    }
  }
  world->barrier();
  TrainConfig c = small_config(root, "unused");
  c.checkpoint.dir = "ckpt";
  c.optimizer.max_steps = 6;
  TrainOptions o = quiet();
  o.resume = "auto";
  TrainResult result;
  {
    const RankLocalDirectory local(root, world->rank());
    result = train(c, *world, o);
  }
  EXPECT_EQ(result.first_step, 2);
  EXPECT_EQ(result.last_step, 6);
}

TEST(RankAgreement, ARankThatCannotSeeTheChosenCheckpointStopsTheJob) {
  auto world = MpiCommunicator::world();
  if (world->size() < 2) GTEST_SKIP() << "needs two ranks";
  const fs::path root = prepare_corpus(*world, "ckptmissing");
  shared_checkpoints(*world, root);
  if (world->rank() == 0) {
    fs::create_directories(root / "node0" / "ckpt");
    fs::copy_file(root / "shared" / checkpoint_file_name(4),
                  root / "node0" / "ckpt" / checkpoint_file_name(4));
  }
  world->barrier();
  TrainConfig c = small_config(root, "unused");
  c.checkpoint.dir = "ckpt";
  c.optimizer.max_steps = 6;
  TrainOptions o = quiet();
  o.resume = "auto";
  const RankLocalDirectory local(root, world->rank());
  EXPECT_THAT(train_error(c, *world, o),
              HasSubstr("cannot see checkpoint 'ckpt/ckpt_00000004.h5', which rank 0 chose"));
}

}  // namespace
}  // namespace longnet
