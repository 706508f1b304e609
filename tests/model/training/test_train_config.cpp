// TrainConfig: defaults, strict parsing (unknown keys, wrong types, ranges, cross-field
// rules), --set overrides, and an exact round trip through to_toml.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "model/training/train_config.hpp"
#include "runtime/error.hpp"

#include "tests/support/temp_dir.hpp"

namespace longnet {
namespace {

using test::error_of;
using ::testing::AllOf;
using ::testing::HasSubstr;

std::string parse_error(const std::string& text) {
  return error_of([&] { parse_train_config_string(text); });
}

TEST(TrainConfig, TinyTomlSpellsOutTheDefaults) {
  const TrainConfig file = parse_train_config_file(LONGNET_CONFIGS_DIR "/tiny.toml");
  EXPECT_EQ(file, TrainConfig{});
  // The defaults the training job was specified with.
  EXPECT_EQ(file.model.vocab_size, 256);
  EXPECT_EQ(file.model.dim, 128);
  EXPECT_EQ(file.model.segment_lengths, (std::vector<int64_t>{64, 256, 1024}));
  EXPECT_EQ(file.model.dilation_rates, (std::vector<int64_t>{1, 4, 16}));
  EXPECT_EQ(file.model.head_offsets, "grouped");
  EXPECT_EQ(file.data.seq_len, 1024);
  EXPECT_EQ(file.optimizer.max_steps, 1000);
  EXPECT_EQ(file.checkpoint.keep_last, 2);
  EXPECT_EQ(file.seed, 1234u);
}

TEST(TrainConfig, EmptyTextGivesTheDefaults) {
  EXPECT_EQ(parse_train_config_string(""), TrainConfig{});
}

TEST(TrainConfig, MissingKeysKeepTheirDefaults) {
  const TrainConfig c = parse_train_config_string(
      "seed = 7\n[model]\ndim = 64\nsegment_lengths = [32]\ndilation_rates = [2]\n"
      "[optimizer]\nlr = 3e-4\n");
  TrainConfig expected;
  expected.seed = 7;
  expected.model.dim = 64;
  expected.model.segment_lengths = {32};
  expected.model.dilation_rates = {2};
  expected.optimizer.lr = 3e-4;
  EXPECT_EQ(c, expected);
}

TEST(TrainConfig, IntegerIsAcceptedForARealKey) {
  EXPECT_EQ(parse_train_config_string("[optimizer]\nlr = 1\nmin_lr = 0\n").optimizer.lr, 1.0);
}

TEST(TrainConfig, UnknownKeyNamesItAndListsTheTablesKeys) {
  EXPECT_THAT(parse_error("[optimizer]\nwarmup_step = 10\n"),
              AllOf(HasSubstr("unknown key 'optimizer.warmup_step'"), HasSubstr(":2"),
                    HasSubstr("lr, min_lr, beta1, beta2, eps, weight_decay, grad_clip, "
                              "warmup_steps, max_steps")));
}

TEST(TrainConfig, UnknownTableListsTheTables) {
  EXPECT_THAT(parse_error("[modle]\ndim = 4\n"),
              AllOf(HasSubstr("unknown key 'modle'"), HasSubstr("[model]"), HasSubstr("[data]"),
                    HasSubstr("seed")));
}

TEST(TrainConfig, SectionGivenAsValueIsRejected) {
  EXPECT_THAT(parse_error("model = 3\n"), AllOf(HasSubstr("'model'"), HasSubstr("table")));
}

TEST(TrainConfig, WrongTypeNamesKeyValueAndExpectedType) {
  EXPECT_THAT(parse_error("[model]\ndim = \"128\"\n"),
              AllOf(HasSubstr("model.dim = \"128\""), HasSubstr("string"),
                    HasSubstr("expected an integer in [1, 65536]")));
  EXPECT_THAT(parse_error("[model]\ncausal = 1\n"),
              AllOf(HasSubstr("model.causal = 1"), HasSubstr("true or false")));
  EXPECT_THAT(parse_error("[optimizer]\nlr = \"fast\"\n"), HasSubstr("optimizer.lr"));
  EXPECT_THAT(parse_error("[model]\nsegment_lengths = 64\n"),
              AllOf(HasSubstr("model.segment_lengths = 64"), HasSubstr("a list")));
  EXPECT_THAT(parse_error("[model]\nsegment_lengths = [64, \"a\", 256]\n"),
              HasSubstr("model.segment_lengths[1] = \"a\""));
}

TEST(TrainConfig, OutOfRangeNamesKeyValueAndRange) {
  EXPECT_THAT(parse_error("[model]\nlayers = 0\n"),
              AllOf(HasSubstr("model.layers = 0 is out of range"), HasSubstr("[1, 1024]")));
  EXPECT_THAT(parse_error("[model]\ndropout = 1.0\n"),
              AllOf(HasSubstr("model.dropout = 1.0"), HasSubstr("[0, 1)")));
  EXPECT_THAT(parse_error("[optimizer]\neps = 0.0\n"), HasSubstr("(0, 1]"));
  EXPECT_THAT(parse_error("[optimizer]\nlr = nan\n"), HasSubstr("optimizer.lr = nan"));
  EXPECT_THAT(parse_error("[model]\nhead_offsets = \"diagonal\"\n"),
              AllOf(HasSubstr("\"diagonal\""), HasSubstr("one of \"grouped\", \"interleaved\"")));
  EXPECT_THAT(parse_error("[model]\nvocab_size = 100\n"), HasSubstr("[256, "));
  EXPECT_THAT(parse_error("[model]\nsegment_lengths = []\n"), HasSubstr("1 to 16 entries"));
  EXPECT_THAT(parse_error("[model]\ndilation_rates = [1, 0, 4]\n"),
              HasSubstr("model.dilation_rates[1] = 0 is out of range"));
  EXPECT_THAT(parse_error("[data]\ndir = \"\"\n"), HasSubstr("a non-empty string"));
  EXPECT_THAT(parse_error("seed = -1\n"), HasSubstr("seed = -1 is out of range"));
}

struct CrossFieldCase {
  std::string name, toml, message;
};

class CrossFieldRule : public ::testing::TestWithParam<CrossFieldCase> {};

TEST_P(CrossFieldRule, IsRejectedWithItsReason) {
  EXPECT_THAT(parse_error(GetParam().toml), HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    TrainConfig, CrossFieldRule,
    ::testing::Values(
        CrossFieldCase{"DimNotMultipleOfHeads", "[model]\ndim = 130\n",
                       "model.dim = 130 is not a multiple of model.heads = 4"},
        CrossFieldCase{"KvHeadsNotDividingHeads", "[model]\nkv_heads = 3\n",
                       "model.kv_heads = 3 does not divide model.heads = 4"},
        CrossFieldCase{"MoreSegmentsThanRates", "[model]\nsegment_lengths = [64, 128]\n",
                       "model.segment_lengths has 2 entries but model.dilation_rates has 3"},
        CrossFieldCase{"RateAboveSegment", "[model]\nsegment_lengths = [4]\ndilation_rates = [8]\n",
                       "model.dilation_rates[0] = 8 exceeds model.segment_lengths[0] = 4"},
        CrossFieldCase{"OddHeadDimWithXpos", "[model]\ndim = 12\nheads = 4\n",
                       "model.use_xpos needs an even head dimension"},
        CrossFieldCase{"MaxDistanceInsideExactBuckets",
                       "[model]\nrel_pos_buckets = 32\nrel_pos_max_distance = 16\n",
                       "model.rel_pos_max_distance = 16 must exceed"},
        CrossFieldCase{"MinLrAboveLr", "[optimizer]\nlr = 1e-4\nmin_lr = 1e-3\n",
                       "optimizer.min_lr = 0.001 exceeds optimizer.lr = 0.0001"},
        CrossFieldCase{"WarmupLongerThanTraining", "[optimizer]\nwarmup_steps = 1400\n",
                       "optimizer.warmup_steps = 1400 exceeds optimizer.max_steps = 1000"},
        CrossFieldCase{"MoreRanksThanTokens", "[data]\nseq_len = 4\n[parallel]\nsp = 8\n",
                       "parallel.sp = 8 exceeds data.seq_len = 4"},
        // Refused before anything is allocated, naming the field and the limit.
        CrossFieldCase{"HugeSequence", "[data]\nseq_len = 1099511627776\n",
                       "data.seq_len = 1099511627776 with data.batch_size = 4 makes a batch "
                       "window of 4398046511108 tokens; the limit is 68719476736"},
        CrossFieldCase{"ActivationBytesOverflow",
                       "[data]\nseq_len = 65536\nbatch_size = 65536\n[model]\n"
                       "vocab_size = 2147483647\n",
                       "data.batch_size (65536) x data.seq_len / parallel.sp (65536) x "
                       "max(model.dim, ffn_dim, vocab_size) (2147483647) x bytes per float (4) "
                       "overflows"},
        CrossFieldCase{"UnknownNonFiniteChoice", "[optimizer]\non_nonfinite = \"ignore\"\n",
                       "on_nonfinite"}),
    [](const auto& test_info) { return test_info.param.name; });

TEST(TrainConfig, OddHeadDimIsFineWithoutXpos) {
  EXPECT_EQ(parse_train_config_string("[model]\ndim = 12\nheads = 4\nuse_xpos = false\n").model.dim,
            12);
}

TEST(TrainConfig, SyntaxErrorGivesLineAndColumn) {
  EXPECT_THAT(parse_error("[model]\ndim = = 3\n"), HasSubstr("line 2"));
}

TEST(TrainConfig, FileErrorsNameTheFileAndLine) {
  const test::TempDir tmp;
  const auto path = tmp / "train.toml";
  std::ofstream(path) << "[model]\ndim = 128\nheads = 0\n";
  const std::string message = error_of([&] { parse_train_config_file(path.string()); });
  EXPECT_THAT(message, AllOf(HasSubstr(path.string() + ":3"), HasSubstr("model.heads = 0")));
  std::filesystem::remove(path);
  EXPECT_THAT(error_of([&] { parse_train_config_file(path.string()); }),
              AllOf(HasSubstr("cannot read training configuration"), HasSubstr(path.string())));
}

// ---- --set ----------------------------------------------------------------------------

TEST(ApplyOverride, SetsEachKindOfValue) {
  TrainConfig c;
  apply_override(c, "optimizer.lr=3e-4");
  apply_override(c, "model.layers = 3");
  apply_override(c, "model.causal=false");
  apply_override(c, "model.head_offsets=interleaved");
  apply_override(c, "data.dir=\"my data\"");
  apply_override(c, "model.segment_lengths=32,64");
  apply_override(c, "model.dilation_rates=[1, 2]");
  apply_override(c, "seed=99");
  validate(c);
  EXPECT_EQ(c.optimizer.lr, 3e-4);
  EXPECT_EQ(c.model.layers, 3);
  EXPECT_FALSE(c.model.causal);
  EXPECT_EQ(c.model.head_offsets, "interleaved");
  EXPECT_EQ(c.data.dir, "my data");
  EXPECT_EQ(c.model.segment_lengths, (std::vector<int64_t>{32, 64}));
  EXPECT_EQ(c.model.dilation_rates, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(c.seed, 99u);
}

TEST(ApplyOverride, RejectsLikeTheFileAndLeavesTheConfigUnchanged) {
  TrainConfig c;
  EXPECT_THAT(error_of([&] { apply_override(c, "model.dimm=4"); }),
              AllOf(HasSubstr("--set model.dimm=4"), HasSubstr("unknown key 'model.dimm'"),
                    HasSubstr("vocab_size, dim, layers")));
  EXPECT_THAT(error_of([&] { apply_override(c, "modle.dim=4"); }), HasSubstr("[model]"));
  EXPECT_THAT(error_of([&] { apply_override(c, "model.dim=abc"); }),
              AllOf(HasSubstr("'abc'"), HasSubstr("an integer")));
  EXPECT_THAT(error_of([&] { apply_override(c, "model.layers=0"); }),
              HasSubstr("model.layers = 0 is out of range"));
  EXPECT_THAT(error_of([&] { apply_override(c, "model.dim"); }),
              HasSubstr("expected section.key=value"));
  EXPECT_EQ(c, TrainConfig{});
}

TEST(ApplyOverrides, ChangesFieldsThatGoTogether) {
  TrainConfig c;
  const std::vector<std::string> sets = {"model.segment_lengths=32,64", "model.dilation_rates=1,2"};
  apply_overrides(c, sets);
  EXPECT_EQ(c.model.segment_lengths, (std::vector<int64_t>{32, 64}));
  EXPECT_EQ(c.model.dilation_rates, (std::vector<int64_t>{1, 2}));
}

TEST(ApplyOverrides, ChecksCrossFieldRulesAndIsAllOrNothing) {
  TrainConfig c;
  // Each is valid on its own; dim = 130 breaks dim % heads == 0 with the current heads.
  const std::vector<std::string> sets = {"optimizer.lr=0.5", "model.dim=130"};
  EXPECT_THAT(error_of([&] { apply_overrides(c, sets); }),
              AllOf(HasSubstr("--set model.dim=130"), HasSubstr("not a multiple")));
  EXPECT_EQ(c, TrainConfig{});
}

// ---- to_toml ----------------------------------------------------------------------------

// A valid configuration far from the defaults, drawn from a fixed seed, with doubles
// whose shortest decimal form needs all 17 digits.
TrainConfig random_config(uint32_t seed) {
  std::mt19937_64 rng(seed);
  const auto pick = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  const auto unit = [&] { return std::uniform_real_distribution<double>(0.0, 1.0)(rng); };
  TrainConfig c;
  c.seed = rng() >> 1;  // TOML integers are signed 64-bit
  c.model.heads = pick(1, 8);
  c.model.dim = c.model.heads * 2 * pick(1, 32);
  c.model.layers = pick(1, 12);
  c.model.vocab_size = pick(256, 70000);
  c.model.ffn_dim = pick(1, 4096);
  const int64_t patterns = pick(1, 5);
  c.model.segment_lengths.clear();
  c.model.dilation_rates.clear();
  for (int64_t i = 0; i < patterns; ++i) {
    c.model.segment_lengths.push_back(pick(8, 1 << 20));
    c.model.dilation_rates.push_back(pick(1, 8));
  }
  c.model.causal = pick(0, 1) == 1;
  c.model.head_offsets = pick(0, 1) == 1 ? "interleaved" : "grouped";
  c.model.use_xpos = pick(0, 1) == 1;
  c.model.xpos_scale_base = 1 + 1000 * unit();
  c.model.use_rel_pos_bias = pick(0, 1) == 1;
  c.model.rel_pos_buckets = pick(2, 64);
  c.model.rel_pos_max_distance = pick(64, 4096);
  c.model.dropout = 0.5 * unit();
  c.model.layer_norm_eps = 1e-7 * (1 + unit());
  c.model.init_std = 0.1 * unit() + 1e-3;
  c.data.dir = "data dir/\"quoted\" \\ back\tslash \u00e9";
  c.data.seq_len = pick(16, 1 << 16);
  c.data.batch_size = pick(1, 64);
  c.data.grad_accum = pick(1, 8);
  c.optimizer.lr = 1e-2 * unit() + 1e-6;
  c.optimizer.min_lr = c.optimizer.lr * unit();
  c.optimizer.beta1 = unit() * 0.99;
  c.optimizer.beta2 = unit() * 0.999;
  c.optimizer.eps = 1e-10 * (1 + unit());
  c.optimizer.weight_decay = unit();
  c.optimizer.grad_clip = 5 * unit();
  c.optimizer.max_steps = pick(1, 100000);
  c.optimizer.warmup_steps = pick(0, c.optimizer.max_steps);
  c.parallel.sp = pick(1, 16);
  c.checkpoint.dir = "ckpt/run " + std::to_string(seed);
  c.checkpoint.every = pick(0, 1000);
  c.checkpoint.keep_last = pick(1, 10);
  c.eval.every = pick(0, 500);
  c.eval.batches = pick(1, 32);
  c.log.every = pick(1, 100);
  validate(c);
  return c;
}

TEST(ToToml, DefaultsRoundTripExactly) {
  const TrainConfig c;
  EXPECT_EQ(parse_train_config_string(to_toml(c)), c);
}

TEST(ToToml, RandomConfigsRoundTripExactly) {
  for (uint32_t seed = 0; seed < 50; ++seed) {
    const TrainConfig c = random_config(seed);
    const std::string text = to_toml(c);
    const TrainConfig back = parse_train_config_string(text);
    ASSERT_EQ(back, c) << "seed " << seed << ":\n" << text;
    EXPECT_EQ(to_toml(back), text);
  }
}

TEST(ToToml, WritesEveryKeyUnderItsTable) {
  const std::string text = to_toml(TrainConfig{});
  EXPECT_THAT(
      text, AllOf(HasSubstr("seed = 1234\n"), HasSubstr("[model]\nvocab_size = 256\n"),
                  HasSubstr("segment_lengths = [64, 256, 1024]\n"),
                  HasSubstr("xpos_scale_base = 512.0\n"), HasSubstr("head_offsets = \"grouped\"\n"),
                  HasSubstr("[log]\nevery = 50\n")));
}

TEST(Describe, SummarisesTheRunOnSeveralLines) {
  const std::string text = describe(TrainConfig{});
  EXPECT_THAT(text,
              AllOf(HasSubstr("seed 1234"), HasSubstr("dim 128"), HasSubstr("2 layers x 4 heads"),
                    HasSubstr("w = 64,256,1024 with r = 1,4,16"), HasSubstr("causal"),
                    HasSubstr("lr 0.001 -> 0.0001"), HasSubstr("4096 tokens per step"),
                    HasSubstr("every 250 steps, keeping the last 2")));
  EXPECT_GE(std::count(text.begin(), text.end(), '\n'), 8);
}

}  // namespace
}  // namespace longnet
