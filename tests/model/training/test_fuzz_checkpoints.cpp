// Mutated checkpoints never crash, hang or load silently wrong: a few hundred mutations
// of one valid checkpoint, with a fixed seed, each of which read_checkpoint (followed by
// the resume checks the trainer runs: the model's parameter names and shapes, the saved
// TOML) must turn into a longnet::Error or load exactly what was written.
//
// Mutations of the file's bytes (bit flips, truncations) must all be refused: the
// checksum in the user block covers every byte. Structural edits made through HDF5
// (declared shapes up to sizes that overflow int64, missing datasets and groups, hostile
// root attributes) are resealed afterwards, as a user editing a checkpoint with h5py
// would, so that they reach the reader's own checks past the checksum.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <hdf5.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "model/training/checkpoint.hpp"
#include "model/training/train_config.hpp"
#include "runtime/error.hpp"
#include "runtime/hdf5_file.hpp"
#include "tests/support/mutations.hpp"
#include "tests/support/temp_dir.hpp"

namespace longnet {
namespace {

namespace fs = std::filesystem;

constexpr unsigned kSeed = 20261206;
constexpr int kMutations = 400;
constexpr double kCaseSeconds = 10;

Tensor counting(const Shape& shape, float start) {
  Tensor t(shape, DType::float32);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = start + 0.25f * float(i);
  return t;
}

// A small state with every part a checkpoint has; the config is the tiny training config
// as to_toml writes it (what the trainer stores).
CheckpointState valid_state() {
  CheckpointState s;
  s.config_toml =
      to_toml(parse_train_config_file((fs::path(LONGNET_CONFIGS_DIR) / "tiny.toml").string()));
  s.step = 12;
  s.data_position = 12;
  const std::pair<const char*, Shape> params[] = {
      {"embed", {16, 8}}, {"layers.0.attn.wq", {8, 8}}, {"norm.bias", {8}}};
  float start = 1;
  for (const auto& [name, shape] : params) {
    s.params.push_back({name, counting(shape, start)});
    s.adam_m.push_back({name, counting(shape, -start)});
    s.adam_v.push_back({name, counting(shape, start * 2)});
    start += 100;
  }
  s.rng_state = {7, 11};
  return s;
}

bool same_tensors(const std::vector<NamedTensor>& a, const std::vector<NamedTensor>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].name != b[i].name || a[i].tensor.shape() != b[i].tensor.shape()) return false;
    for (int64_t e = 0; e < a[i].tensor.numel(); ++e) {
      if (a[i].tensor.data<float>()[e] != b[i].tensor.data<float>()[e]) return false;
    }
  }
  return true;
}

const char* pick(std::initializer_list<const char*> names, std::mt19937_64& rng) {
  const auto at = std::uniform_int_distribution<std::size_t>(0, names.size() - 1)(rng);
  return names.begin()[at];
}

const char* any_dataset(std::mt19937_64& rng) {
  return pick(
      {"params/embed", "params/norm.bias", "adam_m/layers.0.attn.wq", "adam_v/embed", "rng"}, rng);
}

// Replaces `name` by a chunked dataset (float32, or uint64 for the rng) declaring random
// extents, some of which overflow int64 when multiplied, storing nothing.
void redeclare_dataset(const fs::path& path, const char* name, std::mt19937_64& rng) {
  const hsize_t choices[] = {0, 1, 3, 8, 16, 1ULL << 31, 1ULL << 40, 1ULL << 62, ~0ULL >> 1};
  const int rank = std::uniform_int_distribution<int>(1, 4)(rng);
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  for (hsize_t& d : dims) {
    d = choices[std::uniform_int_distribution<std::size_t>(0, std::size(choices) - 1)(rng)];
  }
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  H5Ldelete(file, name, H5P_DEFAULT);
  const hid_t space = H5Screate_simple(rank, dims.data(), nullptr);
  const hid_t props = H5Pcreate(H5P_DATASET_CREATE);
  const std::vector<hsize_t> chunk(dims.size(), 1);
  H5Pset_chunk(props, rank, chunk.data());
  const hid_t type = std::string(name) == "rng" ? H5T_STD_U64LE : H5T_IEEE_F32LE;
  const hid_t dataset = H5Dcreate2(file, name, type, space, H5P_DEFAULT, props, H5P_DEFAULT);
  if (dataset >= 0) H5Dclose(dataset);
  H5Pclose(props);
  H5Sclose(space);
  H5Fclose(file);
}

void delete_link(const fs::path& path, const char* name) {
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  H5Ldelete(file, name, H5P_DEFAULT);
  H5Fclose(file);
}

// Replaces one root attribute by a hostile value or one of the wrong type.
void replace_attribute(const fs::path& path, std::mt19937_64& rng) {
  namespace layout = checkpoint_layout;
  H5File file = H5File::open_read_write(path);
  const int64_t huge = int64_t{1} << 62;
  switch (std::uniform_int_distribution<int>(0, 7)(rng)) {
    case 0:
      file.write_attr_int64(layout::kStep,
                            std::uniform_int_distribution<int>(0, 1)(rng) ? -1 : huge);
      break;
    case 1:
      file.write_attr_int64(layout::kVersion, 99);
      break;
    case 2:
      file.write_attr_string(layout::kFormat, "longnet-checkpoint\xff");
      break;
    case 3:
      file.write_attr_int64(pick({layout::kDataParallel, layout::kSequenceParallel}, rng),
                            std::uniform_int_distribution<int>(0, 1)(rng) ? 0 : -huge);
      break;
    case 4:
      file.write_attr_string(layout::kStep, "12");
      break;
    case 5:
      file.write_attr_double(layout::kStep, std::nan(""));
      break;
    case 6: {
      std::string toml = file.read_attr_string(layout::kConfig);
      file.write_attr_string(layout::kConfig, test::flip_bits(toml, rng));
      break;
    }
    default:
      file.write_attr_string(layout::kConfig, "[model]\ndim = 1e308\n");
  }
  file.close();
}

class CheckpointFuzz : public ::testing::Test {
 protected:
  test::TempDir dir_;
};

TEST_F(CheckpointFuzz, MutatedCheckpointsAreErrorsOrLoadExactlyWhatWasWritten) {
  const CheckpointState original = valid_state();
  const fs::path written = write_checkpoint(dir_ / "saved", original, 1);
  const std::string bytes = test::read_file(written);
  std::mt19937_64 rng(kSeed);
  int errors = 0, loaded = 0;
  for (int i = 0; i < kMutations; ++i) {
    const fs::path file = dir_ / "ckpt_00000012.h5";
    test::write_file(file, bytes);
    const int kind = std::uniform_int_distribution<int>(0, 5)(rng);
    std::string what;
    switch (kind) {
      case 0:
        test::write_file(file, test::flip_bits(bytes, rng));
        what = "bit flips";
        break;
      case 1:
        test::write_file(file, test::truncate(bytes, rng));
        what = "truncation";
        break;
      case 2:
        redeclare_dataset(file, any_dataset(rng), rng);
        reseal_checkpoint(file);
        what = "declared shape, resealed";
        break;
      case 3:
        delete_link(file, std::uniform_int_distribution<int>(0, 1)(rng)
                              ? any_dataset(rng)
                              : pick({"params", "adam_m", "adam_v"}, rng));
        reseal_checkpoint(file);
        what = "missing dataset or group, resealed";
        break;
      case 4:
        replace_attribute(file, rng);
        reseal_checkpoint(file);
        what = "attribute, resealed";
        break;
      default:
        replace_attribute(file, rng);  // not resealed: the checksum must catch it
        what = "attribute, not resealed";
    }
    const std::string mutated = test::read_file(file);
    const bool unchanged = mutated == bytes;
    SCOPED_TRACE(fmt::format("mutation {} ({})", i, what));
    const auto start = std::chrono::steady_clock::now();
    try {
      const CheckpointState state = read_checkpoint(file);
      check_checkpoint_matches(state, original.params);
      const TrainConfig saved = parse_train_config_string(state.config_toml);
      validate(saved);
      ++loaded;
      // Loaded: it must be what was written, or an attribute edit the reader cannot know
      // was not meant (a resealed file is accepted on purpose), never different tensors.
      EXPECT_TRUE(same_tensors(state.params, original.params));
      EXPECT_TRUE(same_tensors(state.adam_m, original.adam_m));
      EXPECT_TRUE(same_tensors(state.adam_v, original.adam_v));
      EXPECT_EQ(state.rng_state, original.rng_state);
      if (kind <= 1 || kind == 5) EXPECT_TRUE(unchanged) << "a damaged file loaded";
    } catch (const Error& e) {
      ++errors;
      EXPECT_FALSE(unchanged) << "the unchanged checkpoint was refused: " << e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not a longnet::Error: " << e.what();
    }
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
              kCaseSeconds);
  }
  // Both outcomes occur, or the mutations test only one path.
  EXPECT_GT(errors, kMutations / 2);
  EXPECT_GT(loaded, 0);
}

}  // namespace
}  // namespace longnet
