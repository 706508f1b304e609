// The passkey probe on a LongNet decoder with each prompt split across the ranks (run
// under mpirun with 1, 2 and 4 ranks) scores exactly what one rank holding the whole
// prompt scores: the same greedy answers, the same losses to float tolerance.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "comm/mpi_communicator.hpp"
#include "kernels/dilated_attention_factory.hpp"
#include "model/attention_core.hpp"
#include "model/longnet_decoder.hpp"
#include "model/training/passkey.hpp"
#include "model/training/passkey_scorer.hpp"

namespace longnet {
namespace {

DecoderConfig small_decoder() {
  DecoderConfig c;
  c.layers = 2;
  c.ffn_dim = 64;
  c.attention.dim = 32;
  c.attention.heads = 4;
  c.attention.segment_lengths = {16, 64, 256};
  c.attention.dilation_rates = {1, 4, 16};
  c.attention.causal = true;
  c.attention.use_xpos = true;
  c.attention.use_rel_pos_bias = true;
  c.attention.rel_pos_buckets = 8;
  c.attention.rel_pos_max_distance = 64;
  c.attention.init_std = 0.3;  // large weights: sharp, distinct predictions
  return c;
}

TokenDataset filler() {
  std::string text;
  for (int line = 0; text.size() < 8000; ++line) {
    text += "\tvar v" + std::to_string(line * 31 % 97) + " = g(" + std::to_string(line) + ")\n";
  }
  return TokenDataset(std::vector<uint8_t>(text.begin(), text.end()), "filler");
}

TEST(PasskeyMpi, SplitPromptsScoreAsOneRank) {
  auto world = MpiCommunicator::world();
  const DecoderConfig config = small_decoder();
  LongNetDecoder model(config, DType::float32, 7);
  PasskeyOptions options;
  options.seq_len = 256;
  options.trials = 6;
  options.key_digits = 4;
  constexpr int64_t kBatch = 4;  // the last call of each bucket is padded
  const AttentionShape shape{kBatch, options.seq_len, config.attention.heads,
                             config.attention.head_dim()};
  auto kernels = make_dilated_attention(Device::cpu, DType::float32);
  auto ops = make_cpu_model_ops();
  auto self = world->split(world->rank(), 0, "self");
  auto whole = make_local_attention_core(config.attention.attention_config(), shape, *kernels);
  auto split =
      make_sequence_parallel_core(*world, config.attention.attention_config(), shape, *kernels);

  const TokenDataset text = filler();
  // Score through both cores, keeping every raw score.
  std::vector<double> losses[2];
  std::vector<int32_t> answers[2];
  const auto recording = [&](PasskeyScorer inner, int which) -> PasskeyScorer {
    return [inner, which, &losses, &answers](std::span<const int32_t> windows, int64_t rows,
                                             int64_t answer, std::span<double> loss,
                                             std::span<int32_t> predicted) {
      inner(windows, rows, answer, loss, predicted);
      losses[which].insert(losses[which].end(), loss.begin(), loss.end());
      answers[which].insert(answers[which].end(), predicted.begin(), predicted.end());
    };
  };
  const PasskeyReport one = evaluate_passkey(
      text, options, kBatch, recording(make_decoder_passkey_scorer(model, *whole, *ops, *self), 0));
  const PasskeyReport all =
      evaluate_passkey(text, options, kBatch,
                       recording(make_decoder_passkey_scorer(model, *split, *ops, *world), 1));

  const auto buckets = passkey_bucket_edges(options).size() - 1;  // [32, 64, 128, 240]
  ASSERT_EQ(buckets, 3u);
  ASSERT_EQ(losses[0].size(), buckets * 6 * 4);  // buckets x trials x digits
  ASSERT_EQ(losses[1].size(), losses[0].size());
  EXPECT_EQ(answers[1], answers[0]);
  for (std::size_t i = 0; i < losses[0].size(); ++i) {
    ASSERT_TRUE(std::isfinite(losses[0][i]));
    EXPECT_NEAR(losses[1][i], losses[0][i], 1e-4 * (1 + std::abs(losses[0][i]))) << i;
  }
  ASSERT_EQ(all.buckets.size(), one.buckets.size());
  for (std::size_t b = 0; b < one.buckets.size(); ++b) {
    EXPECT_EQ(all.buckets[b].key_accuracy, one.buckets[b].key_accuracy);
    EXPECT_EQ(all.buckets[b].digit_accuracy, one.buckets[b].digit_accuracy);
    EXPECT_NEAR(all.buckets[b].key_loss, one.buckets[b].key_loss, 1e-4);
  }
}

}  // namespace
}  // namespace longnet
