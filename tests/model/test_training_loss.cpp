// A short training run on the default corpus (the Go standard library source from
// Debian's golang-1.19-src) must learn: the loss drops by more than a nat and the
// validation loss ends below the corpus's unigram byte entropy, the loss of the best
// model that ignores context. Skipped, with the reason, where the package is absent.
#include "comm/mpi_communicator.hpp"
#include "model/training/token_shards.hpp"
#include "model/training/trainer.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>

namespace longnet {
namespace {

namespace fs = std::filesystem;

TEST(TrainingOnGoSource, LossDropsBelowTheUnigramEntropy) {
  const fs::path corpus = fs::path(kDefaultGoSourceDir) / "strings";
  if (!fs::exists(corpus)) {
    GTEST_SKIP() << corpus << " is absent (Debian package golang-1.19-src, installed by "
                 << "launch/setup.sh)";
  }
  auto world = MpiCommunicator::world();
  std::vector<int64_t> id{static_cast<int64_t>(::getpid())};
  world->broadcast<int64_t>(id, 0);
  const fs::path root = fs::temp_directory_path() / fmt::format("longnet_go_loss_{}", id[0]);
  if (world->rank() == 0) {
    PrepareOptions options;
    options.inputs = {corpus, fs::path(kDefaultGoSourceDir) / "bytes"};
    options.extensions = {".go"};
    options.out_dir = root / "data";
    options.val_fraction = 0.1;
    prepare_token_data(options);
  }
  world->barrier();

  TrainConfig c;
  c.model.dim = 64;
  c.model.heads = 4;
  c.model.layers = 1;
  c.model.ffn_dim = 128;
  c.model.segment_lengths = {32, 64, 128};
  c.model.dilation_rates = {1, 2, 4};
  c.model.use_rel_pos_bias = false;
  c.data.dir = (root / "data").string();
  c.data.seq_len = 128;
  c.data.batch_size = 8;
  c.optimizer.lr = 3e-3;
  c.optimizer.min_lr = 3e-4;
  c.optimizer.max_steps = 60;
  c.optimizer.warmup_steps = 5;
  c.eval.every = 0;
  c.eval.batches = 8;
  c.checkpoint.dir = (root / "checkpoints").string();
  c.checkpoint.every = 0;
  c.parallel.sp = world->size();
  TrainOptions options;
  options.quiet = true;
  const TrainResult result = train(c, *world, options);

  ASSERT_EQ(result.steps.size(), 60u);
  double last = 0;
  for (std::size_t s = 55; s < 60; ++s) last += result.steps[s].loss / 5;
  EXPECT_LT(last, result.steps.front().loss - 1.0)
      << "first loss " << result.steps.front().loss << ", mean of the last five " << last;
  EXPECT_LT(result.validation_loss, result.unigram_entropy_nats);
  world->barrier();
  if (world->rank() == 0) fs::remove_all(root);
}

}  // namespace
}  // namespace longnet
