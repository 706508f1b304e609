// Mutated inputs never crash, hang or pass silently wrong: a few hundred mutations of
// valid `longnet attend` inputs (the fixtures) and of a training config (configs/
// tiny.toml), with a fixed seed, each of which must end in a longnet::Error (what the
// CLI turns into exit 2 with an `error:` line) or in a correct result. Any other
// exception fails the test; a signal kills it; a hang trips the test main's watchdog,
// and each case must finish in kCaseSeconds.
//
// Mutations: bit flips anywhere in the bytes, truncations, and structural edits through
// HDF5 (declared shapes changed, up to sizes that overflow int64; attributes replaced
// by hostile values) or through the TOML text (values replaced by extremes).
//
// Run in-process (run_attend, as the CLI's callback calls it) because starting the
// binary costs half a second under MPI; exit-path behaviour is covered by
// test_attend_cli_hardening. Checkpoints are mutated the same way in
// test_fuzz_checkpoints (with the training tests).
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/cpu/dilated_attention_cpu.hpp"
#include "launch/attend_command.hpp"
#include "launch/attend_io.hpp"
#include "model/training/train_config.hpp"
#include "runtime/hdf5_file.hpp"
#include "tests/support/mutations.hpp"
#include "tests/support/temp_dir.hpp"

namespace longnet {
namespace {

namespace fs = std::filesystem;

constexpr unsigned kSeed = 20261205;
constexpr int kAttendMutationsPerFixture = 150;
constexpr int kConfigMutations = 500;
constexpr double kCaseSeconds = 10;
constexpr double kSameCodeTolerance = 1e-6;

// An extent a hostile file might declare.
hsize_t hostile_extent(std::mt19937_64& rng) {
  const hsize_t choices[] = {0, 1, 2, 3, 7, 1ULL << 31, 1ULL << 40, 1ULL << 62, ~0ULL >> 1};
  return choices[std::uniform_int_distribution<std::size_t>(0, std::size(choices) - 1)(rng)];
}

// Replaces dataset `name` by a chunked float32 one declaring random hostile extents
// (and a random rank), storing nothing.
void redeclare_dataset(const fs::path& path, const char* name, std::mt19937_64& rng) {
  const int rank = std::uniform_int_distribution<int>(1, 5)(rng);
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  for (hsize_t& d : dims) d = hostile_extent(rng);
  if (std::uniform_int_distribution<int>(0, 1)(rng) == 0 && rank == 4) dims[0] = 1;
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  if (file < 0) return;
  H5Ldelete(file, name, H5P_DEFAULT);
  const hid_t space = H5Screate_simple(rank, dims.data(), nullptr);
  const hid_t props = H5Pcreate(H5P_DATASET_CREATE);
  std::vector<hsize_t> chunk(dims.size(), 1);
  H5Pset_chunk(props, rank, chunk.data());
  const hid_t dataset =
      H5Dcreate2(file, name, H5T_IEEE_F32LE, space, H5P_DEFAULT, props, H5P_DEFAULT);
  if (dataset >= 0) H5Dclose(dataset);
  H5Pclose(props);
  H5Sclose(space);
  H5Fclose(file);
}

// Replaces one root attribute by a hostile value.
void replace_attribute(const fs::path& path, std::mt19937_64& rng) {
  H5File file = H5File::open_read_write(path);
  const int64_t huge = int64_t{1} << 62;
  const std::vector<int64_t> lists[] = {{}, {0}, {-8}, {huge}, {8, huge}, {1, 2, 3}, {3, 1}};
  const auto pick_list = [&] {
    return lists[std::uniform_int_distribution<std::size_t>(0, std::size(lists) - 1)(rng)];
  };
  switch (std::uniform_int_distribution<int>(0, 5)(rng)) {
    case 0:
      file.write_attr_int64_array("segment_lengths", pick_list());
      break;
    case 1:
      file.write_attr_int64_array("dilation_rates", pick_list());
      break;
    case 2:
      file.write_attr_int64("causal", pick_list().empty() ? -1 : 7);
      break;
    case 3:
      file.write_attr_string("head_offsets", "grouped\xff");
      break;
    case 4:
      file.write_attr_double("scale", std::nan(""));
      break;
    case 5:
      file.write_attr_string("segment_lengths", "8,16");
      break;
  }
  file.close();
}

// Flips random bits of the float32 values of q, k or v.
void flip_value_bits(const fs::path& path, std::mt19937_64& rng) {
  const char* names[] = {"q", "k", "v"};
  const char* name = names[std::uniform_int_distribution<int>(0, 2)(rng)];
  H5File file = H5File::open_read_write(path);
  Tensor t = file.read_tensor_f32(name);
  const std::string flipped =
      test::flip_bits(std::string(static_cast<const char*>(t.raw()), t.nbytes()), rng);
  std::copy(flipped.begin(), flipped.end(), static_cast<char*>(t.raw()));
  file.write_tensor(name, t);
  file.close();
}

// A correct result: o and lse as the kernels compute them in-process from the same file.
void expect_correct_output(const fs::path& input, const fs::path& output) {
  const H5File in = H5File::open_read(input);
  const DilatedAttentionConfig config = read_attend_config(in);
  bool has_dout = false;
  const AttentionShape shape = read_attend_shape(in, &has_dout);
  const Tensor q = in.read_tensor_f32("q"), k = in.read_tensor_f32("k"),
               v = in.read_tensor_f32("v");
  Tensor o(qkv_shape(shape), DType::float32), lse(lse_shape(shape), DType::float32);
  make_cpu_dilated_attention()->forward(config, q, k, v, o, lse);
  const H5File out = H5File::open_read(output);
  const Tensor got = out.read_tensor_f32("o");
  ASSERT_EQ(got.shape(), o.shape());
  double diff = 0, norm = 0;
  for (int64_t i = 0; i < o.numel(); ++i) {
    const double a = got.data<float>()[i], b = o.data<float>()[i];
    diff += (a - b) * (a - b);
    norm += b * b;
  }
  EXPECT_LE(std::sqrt(diff / std::max(norm, 1e-30)), kSameCodeTolerance);
}

class FuzzTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           fmt::format("longnet_test_fuzz_{}_{}", ::getpid(), info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

// Mutates `fixture` kAttendMutationsPerFixture times and runs attend on each.
void fuzz_attend(const fs::path& dir, const std::string& fixture, unsigned seed) {
  const fs::path original = fs::path(LONGNET_TEST_FIXTURES) / fixture;
  const std::string bytes = test::read_file(original);
  std::mt19937_64 rng(seed);
  int errors = 0, results = 0;
  for (int i = 0; i < kAttendMutationsPerFixture; ++i) {
    const fs::path in = dir / "in.h5", out = dir / "out.h5";
    fs::remove(out);
    const int kind = std::uniform_int_distribution<int>(0, 4)(rng);
    std::string what;
    switch (kind) {
      case 0:
        test::write_file(in, test::flip_bits(bytes, rng));
        what = "bit flips";
        break;
      case 1:
        test::write_file(in, test::truncate(bytes, rng));
        what = "truncation";
        break;
      case 2: {
        test::write_file(in, bytes);
        const char* names[] = {"q", "k", "v"};
        redeclare_dataset(in, names[std::uniform_int_distribution<int>(0, 2)(rng)], rng);
        what = "declared shape";
        break;
      }
      case 3:
        test::write_file(in, bytes);
        replace_attribute(in, rng);
        what = "attribute";
        break;
      default:
        // The fixtures are compressed, so flips in the file's bytes rarely reach the
        // values; these flip bits of the values themselves (NaN, Inf, huge, tiny).
        test::write_file(in, bytes);
        flip_value_bits(in, rng);
        what = "value bit flips";
    }
    SCOPED_TRACE(fmt::format("{} mutation {} ({})", fixture, i, what));
    AttendOptions options;
    options.input = in;
    options.output = out;
    options.quiet = true;
    std::ostringstream ignored;
    const auto start = std::chrono::steady_clock::now();
    bool ok = false;
    try {
      run_attend(options, ignored);
      ok = true;
    } catch (const Error& e) {
      ++errors;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not a longnet::Error (the CLI would exit 1, 'unexpected'): " << e.what();
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_LT(seconds, kCaseSeconds);
    if (ok) {
      ++results;
      expect_correct_output(in, out);
    } else {
      EXPECT_FALSE(fs::exists(out)) << "a failed run left an output";
    }
  }
  // Both outcomes occur, or the mutations test only one path.
  EXPECT_GT(errors, 0);
  EXPECT_GT(results, 0);
}

TEST_F(FuzzTest, MutatedAttendInputsForwardOnly) {
  fuzz_attend(dir_, "example_causal_grouped_w32-96_r2-3_N200_B1_H4_D32.h5", kSeed);
}

TEST_F(FuzzTest, MutatedAttendInputsWithGradients) {
  fuzz_attend(dir_, "example_causal_interleaved_w8-16_r1-2_N40_B1_H3_D8_grad.h5", kSeed + 1);
}

TEST_F(FuzzTest, MutatedAttendInputsTwoBatches) {
  fuzz_attend(dir_, "example_noncausal_grouped_w64-128-512_r1-2-4_N300_B2_H5_D16_grad.h5",
              kSeed + 2);
}

// Replaces the value of one random `key = value` line by an extreme.
std::string replace_value(const std::string& text, std::mt19937_64& rng) {
  std::vector<std::size_t> equals;
  for (std::size_t at = text.find(" = "); at != std::string::npos; at = text.find(" = ", at + 1)) {
    equals.push_back(at);
  }
  if (equals.empty()) return text;
  const std::size_t at =
      equals[std::uniform_int_distribution<std::size_t>(0, equals.size() - 1)(rng)] + 3;
  const std::size_t end = text.find_first_of("#\n", at);
  const char* extremes[] = {"0",
                            "-1",
                            "1099511627776",
                            "4611686018427387904",
                            "99999999999999999999",
                            "1e308",
                            "nan",
                            "inf",
                            "-inf",
                            "\"\"",
                            "[]",
                            "[0]",
                            "[1099511627776, 1]",
                            "true",
                            "{}"};
  return text.substr(0, at) +
         extremes[std::uniform_int_distribution<std::size_t>(0, std::size(extremes) - 1)(rng)] +
         " " + text.substr(end == std::string::npos ? text.size() : end);
}

TEST_F(FuzzTest, MutatedConfigsAreErrorsOrValidConfigs) {
  const std::string text = test::read_file(fs::path(LONGNET_SOURCE_DIR) / "configs" / "tiny.toml");
  ASSERT_FALSE(text.empty());
  std::mt19937_64 rng(kSeed + 3);
  int errors = 0, valid = 0;
  for (int i = 0; i < kConfigMutations; ++i) {
    const int kind = std::uniform_int_distribution<int>(0, 2)(rng);
    const std::string mutated = kind == 0   ? test::flip_bits(text, rng)
                                : kind == 1 ? test::truncate(text, rng)
                                            : replace_value(text, rng);
    SCOPED_TRACE(fmt::format("config mutation {} (kind {}):\n{}", i, kind, mutated));
    try {
      const TrainConfig config = parse_train_config_string(mutated);
      validate(config);
      // Valid: it must round-trip through its own TOML to the same configuration.
      const TrainConfig again = parse_train_config_string(to_toml(config));
      EXPECT_EQ(describe(again), describe(config));
      ++valid;
    } catch (const Error&) {
      ++errors;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not a longnet::Error: " << e.what();
    }
  }
  EXPECT_GT(errors, 0);
  EXPECT_GT(valid, 0);
}

}  // namespace
}  // namespace longnet
