// `longnet train` across ranks (run under mpirun with 1, 2 and 4 ranks):
//   - sequence-parallel training equals single-rank training, step by step;
//   - a run stopped and resumed continues bit for bit; resumed on another rank count it
//     continues within float tolerance;
//   - SIGUSR1 (a scheduler's preemption) writes a checkpoint at the next step boundary.
#include "comm/mpi_communicator.hpp"
#include "model/training/checkpoint.hpp"
#include "model/training/token_shards.hpp"
#include "model/training/trainer.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <thread>

namespace longnet {
namespace {

namespace fs = std::filesystem;

// A small corpus of synthetic source files, prepared once per test by rank 0 into a
// directory every rank sees (the same name on all ranks).
fs::path prepare_corpus(Communicator& world, const std::string& tag) {
  std::vector<int64_t> id{static_cast<int64_t>(::getpid())};
  world.broadcast<int64_t>(id, 0);
  const fs::path root = fs::temp_directory_path() / fmt::format("longnet_train_{}_{}", tag, id[0]);
  if (world.rank() == 0) {
    fs::remove_all(root);
    fs::create_directories(root / "src");
    for (int f = 0; f < 40; ++f) {
      std::ofstream out(root / "src" / fmt::format("file{:02}.go", f));
      for (int line = 0; line < 60; ++line) {
        out << fmt::format("func f{}_{}(x int) int {{ return x*{} + {} }}\n", f, line, line % 7,
                           (f * line) % 13);
      }
    }
    PrepareOptions options;
    options.inputs = {root / "src"};
    options.extensions = {".go"};
    options.out_dir = root / "data";
    options.val_fraction = 0.2;
    prepare_token_data(options);
  }
  world.barrier();
  return root;
}

TrainConfig small_config(const fs::path& root, const std::string& checkpoints) {
  TrainConfig c;
  c.model.dim = 32;
  c.model.heads = 4;
  c.model.layers = 2;
  c.model.ffn_dim = 64;
  c.model.segment_lengths = {16, 32, 64};
  c.model.dilation_rates = {1, 2, 4};
  // Every feature the sequence split must reproduce: xPos, bias, dropout.
  c.model.use_xpos = true;
  c.model.use_rel_pos_bias = true;
  c.model.rel_pos_buckets = 16;
  c.model.rel_pos_max_distance = 64;
  c.model.dropout = 0.1;
  c.model.init_std = 0.1;
  c.data.dir = (root / "data").string();
  c.data.seq_len = 64;
  c.data.batch_size = 2;
  c.optimizer.max_steps = 6;
  c.optimizer.warmup_steps = 2;
  c.eval.every = 0;
  c.eval.batches = 2;
  c.log.every = 1;
  c.checkpoint.dir = (root / checkpoints).string();
  c.checkpoint.every = 0;
  c.checkpoint.keep_last = 3;
  return c;
}

TrainOptions quiet() {
  TrainOptions o;
  o.quiet = true;
  return o;
}

CheckpointState final_state(const TrainConfig& c) {
  const auto file = latest_checkpoint(c.checkpoint.dir);
  EXPECT_TRUE(file.has_value()) << "no checkpoint in " << c.checkpoint.dir;
  return read_checkpoint(*file);
}

// Relative L2 distance of all parameters taken together. (Per tensor, a bias whose
// gradient is rounding noise can differ more: Adam scales any gradient, noise included,
// to a step of about lr.)
double relative_difference(const CheckpointState& a, const CheckpointState& b) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.params.size(); ++i) {
    const auto x = a.params[i].tensor.span<float>(), y = b.params[i].tensor.span<float>();
    for (std::size_t e = 0; e < x.size(); ++e) {
      num += (double(x[e]) - y[e]) * (double(x[e]) - y[e]);
      den += double(y[e]) * y[e];
    }
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

bool bitwise_equal(const CheckpointState& a, const CheckpointState& b) {
  for (std::size_t i = 0; i < a.params.size(); ++i) {
    const auto x = a.params[i].tensor.span<float>(), y = b.params[i].tensor.span<float>();
    if (!std::equal(x.begin(), x.end(), y.begin())) return false;
  }
  return true;
}

// Multi-head, and grouped-query attention (4 heads over 2 kv heads).
TEST(Training, SequenceParallelEqualsOneRank) {
  auto world = MpiCommunicator::world();
  const fs::path root = prepare_corpus(*world, "sp");
  for (const int64_t kv_heads : {0, 2}) {
    SCOPED_TRACE(fmt::format("model.kv_heads = {}", kv_heads));
    const std::string tag = fmt::format("kv{}", kv_heads);
    TrainConfig parallel = small_config(root, "ckpt_parallel_" + tag);
    parallel.model.kv_heads = kv_heads;
    parallel.parallel.sp = world->size();
    const TrainResult distributed = train(parallel, *world, quiet());

    // The same job on one rank: rank 0 alone, on a communicator of its own.
    auto alone =
        world->split(world->rank() == 0 ? std::optional<int>(0) : std::nullopt, 0, "alone");
    if (world->rank() == 0) {
      TrainConfig single = small_config(root, "ckpt_single_" + tag);
      single.model.kv_heads = kv_heads;
      const TrainResult one = train(single, *alone, quiet());
      // EXPECT, not ASSERT: returning here would leave the other ranks in the barrier.
      EXPECT_EQ(one.steps.size(), distributed.steps.size());
      for (std::size_t s = 0; s < std::min(one.steps.size(), distributed.steps.size()); ++s) {
        EXPECT_NEAR(distributed.steps[s].loss, one.steps[s].loss, 1e-5 * one.steps[s].loss)
            << "step " << s + 1;
      }
      EXPECT_LT(relative_difference(final_state(parallel), final_state(single)), 1e-5);
      if (kv_heads > 0) {  // the checkpoint holds the grouped projections
        const CheckpointState state = final_state(single);
        bool found = false;
        for (const auto& p : state.params) {
          if (p.name.ends_with(".wk")) {
            EXPECT_EQ(p.tensor.shape(), Shape({kv_heads * 32 / 4, 32})) << p.name;
            found = true;
          }
        }
        EXPECT_TRUE(found) << "no .wk parameter in the checkpoint";
      }
    }
    world->barrier();
  }
  if (world->rank() == 0) fs::remove_all(root);
  world->barrier();
}

// Both resume tests: the whole run on every rank (checkpoints in ckpt_whole), and the
// first three steps of the same run stopped with a checkpoint (in ckpt_split).
struct InterruptedRun {
  TrainConfig whole, split;
  TrainResult uninterrupted;
};

InterruptedRun run_whole_and_first_half(Communicator& world, const fs::path& root) {
  InterruptedRun run{small_config(root, "ckpt_whole"), small_config(root, "ckpt_split"), {}};
  run.whole.parallel.sp = world.size();
  run.split.parallel.sp = world.size();
  run.uninterrupted = train(run.whole, world, quiet());
  TrainOptions first = quiet();
  first.stop_at = 3;
  EXPECT_EQ(train(run.split, world, first).last_step, 3);
  return run;
}

TEST(Training, ResumeContinuesBitForBit) {
  auto world = MpiCommunicator::world();
  const fs::path root = prepare_corpus(*world, "resume");
  const auto [whole, split, uninterrupted] = run_whole_and_first_half(*world, root);
  TrainOptions second = quiet();
  second.resume = "auto";
  const TrainResult part2 = train(split, *world, second);
  EXPECT_EQ(part2.first_step, 3);
  ASSERT_EQ(part2.steps.size(), 3u);
  for (std::size_t s = 0; s < 3; ++s) {
    EXPECT_EQ(part2.steps[s].loss, uninterrupted.steps[s + 3].loss) << "step " << s + 4;
  }
  if (world->rank() == 0) {
    EXPECT_TRUE(bitwise_equal(final_state(split), final_state(whole)));
  }
  world->barrier();
  if (world->rank() == 0) fs::remove_all(root);
}

TEST(Training, ResumeOnAnotherRankCountContinuesWithinTolerance) {
  auto world = MpiCommunicator::world();
  const fs::path root = prepare_corpus(*world, "rerank");
  // Three steps on every rank, the rest on rank 0 alone.
  const auto [whole, split, uninterrupted] = run_whole_and_first_half(*world, root);
  auto alone = world->split(world->rank() == 0 ? std::optional<int>(0) : std::nullopt, 0, "alone");
  if (world->rank() == 0) {
    TrainConfig single = split;
    single.parallel.sp = 1;
    TrainOptions second = quiet();
    second.resume = "auto";
    const TrainResult rest = train(single, *alone, second);
    ASSERT_EQ(rest.steps.size(), 3u);
    for (std::size_t s = 0; s < 3; ++s) {
      EXPECT_NEAR(rest.steps[s].loss, uninterrupted.steps[s + 3].loss, 1e-5 * rest.steps[s].loss);
    }
    EXPECT_LT(relative_difference(final_state(single), final_state(whole)), 1e-5);
    fs::remove_all(root);
  }
  world->barrier();
}

TEST(Training, PreemptionSignalWritesACheckpointAndResumeFinishes) {
  auto world = MpiCommunicator::world();
  const fs::path root = prepare_corpus(*world, "signal");
  TrainConfig c = small_config(root, "ckpt");
  c.parallel.sp = world->size();
  c.optimizer.max_steps = 100000;  // only the signal ends this run
  // SIGUSR1 on rank 0 shortly after the start; every rank must stop at the same step.
  std::thread preempt;
  if (world->rank() == 0) {
    preempt = std::thread([] {
      std::this_thread::sleep_for(std::chrono::milliseconds(1500));
      std::raise(SIGUSR1);
    });
  }
  const TrainResult stopped = train(c, *world, quiet());
  if (preempt.joinable()) preempt.join();
  EXPECT_TRUE(stopped.interrupted);
  EXPECT_GT(stopped.last_step, 0);
  const auto file = latest_checkpoint(c.checkpoint.dir);
  ASSERT_TRUE(file.has_value());
  EXPECT_EQ(read_checkpoint(*file).step, stopped.last_step);

  c.optimizer.max_steps = stopped.last_step + 2;
  TrainOptions again = quiet();
  again.resume = "auto";
  const TrainResult resumed = train(c, *world, again);
  EXPECT_EQ(resumed.first_step, stopped.last_step);
  EXPECT_EQ(resumed.last_step, stopped.last_step + 2);
  EXPECT_FALSE(resumed.interrupted);
  world->barrier();
  if (world->rank() == 0) fs::remove_all(root);
}

}  // namespace
}  // namespace longnet
