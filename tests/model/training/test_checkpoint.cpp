// Checkpoints: bit-exact round trip, keep_last, temporaries never taken for checkpoints,
// a writer killed mid-write leaves the previous checkpoint intact, and damaged files
// give errors that name the file (never a crash, never silently different weights).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <hdf5.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <thread>

#include "model/training/checkpoint.hpp"
#include "runtime/error.hpp"
#include "runtime/hdf5_file.hpp"
#include "tests/support/temp_dir.hpp"

namespace longnet {
namespace {

namespace fs = std::filesystem;
using test::error_of;
using test::read_file;
using test::TempDir;
using test::write_file;
using ::testing::AllOf;
using ::testing::HasSubstr;

// Random floats with the values a careless writer would change: -0, subnormals, the
// largest float, infinities and a NaN with a payload.
Tensor random_tensor(const Shape& shape, std::mt19937& rng) {
  Tensor t(shape, DType::float32);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& x : t.span<float>()) x = normal(rng);
  const float specials[] = {
      -0.0f, std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::max(),
      -std::numeric_limits<float>::infinity(), std::bit_cast<float>(0x7FC01234u)};
  auto data = t.span<float>();
  for (std::size_t i = 0; i < std::size(specials) && i < data.size(); ++i)
    data[i * 3 % data.size()] = specials[i];
  return t;
}

// Names deliberately out of alphabetical order: they must come back in written order.
const std::vector<std::pair<std::string, Shape>> kParams = {
    {"embed.weight", {256, 16}},  {"layers.0.attn.wq", {16, 16}},
    {"layers.0.norm.bias", {16}}, {"layers.1.ffn.w1", {7, 13}},
    {"final.scale", {}},          {"a.first_in_names", {3}}};

CheckpointState make_state(int64_t step, uint32_t seed,
                           const std::vector<std::pair<std::string, Shape>>& params = kParams) {
  std::mt19937 rng(seed);
  CheckpointState s;
  s.config_toml = "# config\n[model]\ndim = 16\nname = \"é \\\"quoted\\\"\"\n";
  s.step = step;
  s.data_parallel = 2;
  s.sequence_parallel = 3;
  for (const auto& [name, shape] : params) {
    s.params.push_back({name, random_tensor(shape, rng)});
    s.adam_m.push_back({name, random_tensor(shape, rng)});
    s.adam_v.push_back({name, random_tensor(shape, rng)});
  }
  s.rng_state = {0, std::numeric_limits<uint64_t>::max(), uint64_t{1} << 63, rng()};
  s.data_position = std::numeric_limits<uint64_t>::max() - 5;  // beyond int64
  return s;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() &&
         std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

void expect_same_state(const CheckpointState& a, const CheckpointState& b) {
  EXPECT_EQ(a.config_toml, b.config_toml);
  EXPECT_EQ(a.step, b.step);
  EXPECT_EQ(a.data_parallel, b.data_parallel);
  EXPECT_EQ(a.sequence_parallel, b.sequence_parallel);
  EXPECT_EQ(a.rng_state, b.rng_state);
  EXPECT_EQ(a.data_position, b.data_position);
  for (const auto& [x, y] : {std::pair{&a.params, &b.params}, std::pair{&a.adam_m, &b.adam_m},
                             std::pair{&a.adam_v, &b.adam_v}}) {
    ASSERT_EQ(x->size(), y->size());
    for (std::size_t i = 0; i < x->size(); ++i) {
      EXPECT_EQ((*x)[i].name, (*y)[i].name);
      EXPECT_TRUE(same_bits((*x)[i].tensor, (*y)[i].tensor)) << (*x)[i].name;
    }
  }
}

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir))
    names.push_back(entry.path().filename().string());
  std::ranges::sort(names);
  return names;
}

TEST(Checkpoint, RoundTripIsBitExact) {
  const TempDir tmp;
  const CheckpointState state = make_state(42, 1);
  const fs::path file = write_checkpoint(tmp / "ckpt", state, 2);
  EXPECT_EQ(file, tmp / "ckpt" / "ckpt_00000042.h5");
  expect_same_state(read_checkpoint(file), state);
}

TEST(Checkpoint, LayoutIsSelfDescribing) {
  const TempDir tmp;
  const fs::path file = write_checkpoint(tmp.path(), make_state(7, 2), 1);
  const H5File h5 = H5File::open_read(file);
  EXPECT_EQ(h5.read_attr_string("format"), "longnet-checkpoint");
  EXPECT_EQ(h5.read_attr_int64("version"), 1);
  EXPECT_EQ(h5.read_attr_int64("step"), 7);
  EXPECT_EQ(h5.read_attr_int64("data_parallel"), 2);
  EXPECT_EQ(h5.read_attr_int64("sequence_parallel"), 3);
  EXPECT_EQ(h5.read_attr_uint64("data_position"), std::numeric_limits<uint64_t>::max() - 5);
  EXPECT_THAT(h5.read_attr_string("config"), HasSubstr("dim = 16"));
  EXPECT_EQ(h5.dataset_shape("params/layers.0.attn.wq"), (Shape{16, 16}));
  EXPECT_EQ(h5.dataset_shape("adam_v/layers.1.ffn.w1"), (Shape{7, 13}));
  EXPECT_EQ(h5.read_dataset_u64("rng").size(), 4u);
  EXPECT_EQ(h5.list_group("adam_m").front(), "embed.weight");
  EXPECT_EQ(h5.list_group("/"), (std::vector<std::string>{"adam_m", "adam_v", "params", "rng"}));
}

// The layout's names are part of the file format: every checkpoint already written is
// found by exactly these strings, so changing one is a format change, not a rename.
TEST(Checkpoint, LayoutNamesAreThoseOfCheckpointsAlreadyWritten) {
  namespace layout = checkpoint_layout;
  EXPECT_STREQ(layout::kParams, "params");
  EXPECT_STREQ(layout::kAdamM, "adam_m");
  EXPECT_STREQ(layout::kAdamV, "adam_v");
  EXPECT_STREQ(layout::kRng, "rng");
  EXPECT_STREQ(layout::kFormat, "format");
  EXPECT_STREQ(layout::kVersion, "version");
  EXPECT_STREQ(layout::kStep, "step");
  EXPECT_STREQ(layout::kDataParallel, "data_parallel");
  EXPECT_STREQ(layout::kSequenceParallel, "sequence_parallel");
  EXPECT_STREQ(layout::kDataPosition, "data_position");
  EXPECT_STREQ(layout::kConfig, "config");
}

TEST(Checkpoint, KeepLastDeletesTheOldest) {
  const TempDir tmp;
  for (const int64_t step : {10, 20, 30, 40}) write_checkpoint(tmp.path(), make_state(step, 3), 2);
  EXPECT_EQ(names_in(tmp.path()),
            (std::vector<std::string>{"ckpt_00000030.h5", "ckpt_00000040.h5"}));
  write_checkpoint(tmp.path(), make_state(50, 3), 1);
  EXPECT_EQ(names_in(tmp.path()), (std::vector<std::string>{"ckpt_00000050.h5"}));
}

TEST(Checkpoint, KeepLastNeverDeletesTheCheckpointJustWritten) {
  const TempDir tmp;
  write_checkpoint(tmp.path(), make_state(100, 3), 1);
  // A run restarted from an earlier step writes a lower step than the newest file.
  write_checkpoint(tmp.path(), make_state(60, 3), 1);
  EXPECT_EQ(names_in(tmp.path()), (std::vector<std::string>{"ckpt_00000060.h5"}));
}

TEST(Checkpoint, LatestIgnoresTemporariesAndOtherFiles) {
  const TempDir tmp;
  EXPECT_EQ(latest_checkpoint(tmp / "does_not_exist"), std::nullopt);
  EXPECT_EQ(latest_checkpoint(tmp.path()), std::nullopt);
  for (const char* name : {".tmp_ckpt_00000099.1234.h5", "ckpt_abc.h5", "ckpt_00000077.h5.bak",
                           "notes.txt", "ckpt_.h5"}) {
    write_file(tmp / name, "not a checkpoint");
  }
  fs::create_directories(tmp / "ckpt_00000088.h5");  // a directory, not a file
  EXPECT_EQ(latest_checkpoint(tmp.path()), std::nullopt);
  write_checkpoint(tmp.path(), make_state(5, 4), 5);
  write_checkpoint(tmp.path(), make_state(20, 4), 5);
  EXPECT_EQ(latest_checkpoint(tmp.path()), tmp / "ckpt_00000020.h5");
  // Steps compare as numbers, also past eight digits.
  write_checkpoint(tmp.path(), make_state(100'000'000, 4), 5);
  EXPECT_EQ(latest_checkpoint(tmp.path()), tmp / "ckpt_100000000.h5");
}

TEST(Checkpoint, NextWriteDeletesStaleTemporariesOfEarlierSteps) {
  const TempDir tmp;
  write_file(tmp / ".tmp_ckpt_00000003.999.h5", "left by a killed writer");
  write_file(tmp / ".tmp_ckpt_00000009.999.h5", "a later step: maybe another writer's");
  write_checkpoint(tmp.path(), make_state(5, 5), 2);
  EXPECT_EQ(names_in(tmp.path()),
            (std::vector<std::string>{".tmp_ckpt_00000009.999.h5", "ckpt_00000005.h5"}));
}

// A writer SIGKILLed while it writes a 256 MiB checkpoint: the previous checkpoint is
// still the latest and loads; the temporary is never taken for a checkpoint.
TEST(Checkpoint, WriterKilledMidWriteLeavesThePreviousCheckpoint) {
  const TempDir tmp;
  const CheckpointState previous = make_state(1, 6);
  write_checkpoint(tmp.path(), previous, 2);

  const pid_t child = ::fork();
  ASSERT_GE(child, 0) << std::strerror(errno);
  if (child == 0) {
    // No OpenMP here (a forked child must not use the parent's thread pool): plain loops.
    CheckpointState big = make_state(2, 7);
    Tensor huge(Shape{64, 1024, 1024}, DType::float32);
    std::ranges::fill(huge.span<float>(), 0.25f);
    big.params.push_back({"huge", huge});
    big.adam_m.push_back({"huge", huge});
    big.adam_v.push_back({"huge", huge});
    try {
      write_checkpoint(tmp.path(), big, 2);
    } catch (...) {
      ::_exit(3);
    }
    ::_exit(0);
  }
  // Kill as soon as the temporary exists: the child then has ~768 MiB still to write.
  bool seen = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!seen && std::chrono::steady_clock::now() < deadline) {
    for (const std::string& name : names_in(tmp.path()))
      seen = seen || name.starts_with(".tmp_ckpt_00000002");
    if (!seen) std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  ::kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(seen) << "the child never started writing";
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "the child finished before it was killed; the test needs a larger checkpoint";

  const std::vector<std::string> left = names_in(tmp.path());
  ASSERT_EQ(left.size(), 2u);
  EXPECT_TRUE(left[0].starts_with(".tmp_ckpt_00000002.")) << left[0];  // the torn write
  EXPECT_EQ(latest_checkpoint(tmp.path()), tmp / "ckpt_00000001.h5");
  expect_same_state(read_checkpoint(*latest_checkpoint(tmp.path())), previous);

  // The next successful write of that step replaces the temporary.
  write_checkpoint(tmp.path(), make_state(2, 8), 2);
  EXPECT_EQ(names_in(tmp.path()),
            (std::vector<std::string>{"ckpt_00000001.h5", "ckpt_00000002.h5"}));
}

TEST(Checkpoint, TruncatedFileIsAnErrorNamingTheFile) {
  const TempDir tmp;
  const fs::path file = write_checkpoint(tmp.path(), make_state(3, 9), 1);
  const std::string bytes = read_file(file);
  for (const double keep : {0.0, 0.001, 0.1, 0.5, 0.9, 0.999}) {
    const auto length = static_cast<std::size_t>(keep * static_cast<double>(bytes.size()));
    const fs::path cut = tmp / "cut.h5";
    write_file(cut, bytes.substr(0, length));
    EXPECT_THAT(error_of([&] { read_checkpoint(cut); }),
                AllOf(HasSubstr("cannot read checkpoint"), HasSubstr(cut.string())))
        << "kept " << length << " of " << bytes.size() << " bytes";
  }
  EXPECT_THAT(error_of([&] { read_checkpoint(tmp / "missing.h5"); }), HasSubstr("no such file"));
}

// The file offset of a dataset's contiguous data.
haddr_t data_offset(const fs::path& file, const std::string& dataset) {
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  const hid_t d = H5Dopen2(f, dataset.c_str(), H5P_DEFAULT);
  const haddr_t offset = H5Dget_offset(d);
  H5Dclose(d);
  H5Fclose(f);
  return offset;
}

TEST(Checkpoint, FlippedBitInAWeightIsCaughtByTheChecksum) {
  const TempDir tmp;
  const fs::path file = write_checkpoint(tmp.path(), make_state(3, 10), 1);
  const haddr_t offset = data_offset(file, "params/layers.0.attn.wq");
  ASSERT_NE(offset, HADDR_UNDEF);
  std::string bytes = read_file(file);
  bytes[offset + 4 * 37 + 1] ^= 0x04;  // one mantissa bit of element 37
  write_file(file, bytes);
  EXPECT_THAT(error_of([&] { read_checkpoint(file); }),
              AllOf(HasSubstr(file.string()), HasSubstr("checksum")));
}

// A byte flipped anywhere in the file (one position in every 97, header and HDF5
// metadata included) is an error naming the file: the header's checksum is checked
// before HDF5, which may crash or hang on damaged metadata, parses anything.
TEST(Checkpoint, FlippedByteAnywhereIsAnErrorNamingTheFile) {
  const TempDir tmp;
  const std::string bytes = read_file(write_checkpoint(tmp / "good", make_state(3, 11), 1));
  const fs::path damaged = tmp / "damaged.h5";
  for (std::size_t position = 0; position < bytes.size(); position += 97) {
    std::string flipped = bytes;
    flipped[position] = static_cast<char>(~flipped[position]);
    write_file(damaged, flipped);
    EXPECT_THAT(error_of([&] { read_checkpoint(damaged); }),
                AllOf(HasSubstr(damaged.string()), HasSubstr("checkpoint")))
        << "byte " << position;
  }
}

TEST(Checkpoint, ResealAcceptsADeliberateEdit) {
  const TempDir tmp;
  const fs::path file = write_checkpoint(tmp.path(), make_state(3, 16), 1);
  {
    H5File h5 = H5File::open_read_write(file);
    h5.write_attr_int64("data_parallel", 4);
    h5.close();
  }
  EXPECT_THAT(error_of([&] { read_checkpoint(file); }), HasSubstr("checksum"));
  reseal_checkpoint(file);
  EXPECT_EQ(read_checkpoint(file).data_parallel, 4);
  write_file(tmp / "text.h5", "not HDF5");
  EXPECT_THAT(error_of([&] { reseal_checkpoint(tmp / "text.h5"); }),
              AllOf(HasSubstr("cannot reseal"), HasSubstr("text.h5")));
}

// Opens `file` read-write and deletes the link `name`.
void delete_link(const fs::path& file, const std::string& name) {
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  ASSERT_GE(H5Ldelete(f, name.c_str(), H5P_DEFAULT), 0);
  H5Fclose(f);
  reseal_checkpoint(file);  // an edit on purpose, past the checksum to the checks behind it
}

TEST(Checkpoint, MissingOrWrongPartsAreNamed) {
  const TempDir tmp;
  const auto fresh = [&] { return write_checkpoint(tmp.path(), make_state(4, 12), 1); };

  fs::path file = fresh();
  delete_link(file, "adam_v");
  EXPECT_THAT(error_of([&] { read_checkpoint(file); }),
              AllOf(HasSubstr(file.string()), HasSubstr("the group '/adam_v' is missing")));

  file = fresh();
  delete_link(file, "rng");
  EXPECT_THAT(error_of([&] { read_checkpoint(file); }), HasSubstr("'/rng' is missing"));

  file = fresh();
  delete_link(file, "adam_m/layers.0.norm.bias");
  EXPECT_THAT(error_of([&] { read_checkpoint(file); }),
              AllOf(HasSubstr("adam_m holds 5 tensors but params holds 6")));

  file = fresh();
  {
    H5File h5 = H5File::open_read_write(file);
    h5.write_tensor("adam_v/a.first_in_names", Tensor::zeros({4}));  // the last one: order kept
    h5.close();
  }
  reseal_checkpoint(file);
  EXPECT_THAT(error_of([&] { read_checkpoint(file); }),
              HasSubstr("adam_v/a.first_in_names has shape [4] but its parameter has shape [3]"));

  file = fresh();
  {
    H5File h5 = H5File::open_read_write(file);
    h5.write_attr_int64("version", 2);
    h5.close();
  }
  reseal_checkpoint(file);
  EXPECT_THAT(error_of([&] { read_checkpoint(file); }),
              AllOf(HasSubstr(file.string()), HasSubstr("checkpoint version 2")));

  {
    H5File h5 = H5File::create(tmp / "plain.h5");
    h5.write_attr_string("format", "longnet-checkpoint");
    h5.close();
  }
  EXPECT_THAT(error_of([&] { read_checkpoint(tmp / "plain.h5"); }),
              HasSubstr("does not start with the longnet checkpoint header"));
  EXPECT_THAT(error_of([&] { reseal_checkpoint(tmp / "plain.h5"); }),
              HasSubstr("user block of 0 bytes"));  // refused: it would overwrite HDF5's superblock
  EXPECT_NO_THROW(H5File::open_read(tmp / "plain.h5"));

  {
    H5File h5 = H5File::create_with_user_block(tmp / "other.h5", 512);
    h5.write_attr_string("format", "longnet-tokens");
    h5.close();
  }
  reseal_checkpoint(tmp / "other.h5");
  EXPECT_THAT(error_of([&] { read_checkpoint(tmp / "other.h5"); }),
              HasSubstr("format attribute is 'longnet-tokens'"));

  write_file(tmp / "text.h5", "just text, no HDF5 here");
  EXPECT_THAT(error_of([&] { read_checkpoint(tmp / "text.h5"); }),
              AllOf(HasSubstr("text.h5"), HasSubstr("not a readable checkpoint file")));
}

TEST(Checkpoint, WriteRejectsInconsistentStates) {
  const TempDir tmp;
  CheckpointState s = make_state(1, 13);
  s.adam_m[2].tensor = Tensor::zeros({17});
  EXPECT_THAT(
      error_of([&] { write_checkpoint(tmp.path(), s, 1); }),
      HasSubstr("adam_m/layers.0.norm.bias has shape [17] but its parameter has shape [16]"));
  s = make_state(1, 13);
  s.params[1].name = "embed.weight";
  EXPECT_THAT(error_of([&] { write_checkpoint(tmp.path(), s, 1); }),
              HasSubstr("two tensors named 'embed.weight'"));
  s = make_state(1, 13);
  s.params[0].name = s.adam_m[0].name = s.adam_v[0].name = "layers/0";
  EXPECT_THAT(error_of([&] { write_checkpoint(tmp.path(), s, 1); }), HasSubstr("'layers/0'"));
  s = make_state(1, 13);
  s.params[0].tensor = s.params[0].tensor.cast(DType::float64);
  EXPECT_THAT(error_of([&] { write_checkpoint(tmp.path(), s, 1); }), HasSubstr("float32 host"));
  EXPECT_THAT(error_of([&] { write_checkpoint(tmp.path(), make_state(1, 13), 0); }),
              HasSubstr("keep_last = 0"));
  EXPECT_TRUE(names_in(tmp.path()).empty());  // nothing half-written
}

TEST(CheckpointMatches, AcceptsTheSameParameters) {
  const CheckpointState s = make_state(1, 14);
  EXPECT_NO_THROW(check_checkpoint_matches(s, s.params));
  // Matched by name, so the model may list its parameters in another order.
  std::vector<NamedTensor> reversed(s.params.rbegin(), s.params.rend());
  EXPECT_NO_THROW(check_checkpoint_matches(s, reversed));
}

TEST(CheckpointMatches, NamesTheFirstMismatch) {
  const CheckpointState s = make_state(1, 15);
  std::vector<NamedTensor> model = s.params;
  model[1].tensor = Tensor::zeros({16, 32});
  EXPECT_THAT(error_of([&] { check_checkpoint_matches(s, model); }),
              HasSubstr("parameter 'layers.0.attn.wq' has shape [16, 16] in the checkpoint but "
                        "[16, 32] in the model"));
  model = s.params;
  model.push_back({"layers.2.attn.wq", Tensor::zeros({16, 16})});
  EXPECT_THAT(error_of([&] { check_checkpoint_matches(s, model); }),
              HasSubstr("no parameter 'layers.2.attn.wq'"));
  model = s.params;
  model.erase(model.begin() + 3);
  EXPECT_THAT(error_of([&] { check_checkpoint_matches(s, model); }),
              HasSubstr("parameter 'layers.1.ffn.w1' is not in the model"));
}

}  // namespace
}  // namespace longnet
