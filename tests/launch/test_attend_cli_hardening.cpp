// `longnet attend` against hostile or mistaken inputs, run as the real binary: each
// case ends in exit 2 with one `error:` line naming the problem (or, where the user
// asked for it, a result), never a signal, a hang or a write through a planted file.
//
//  * Shapes whose products overflow or cannot fit in memory are refused before any
//    allocation; --threads beyond what the machine allows is refused up front.
//  * Outputs that must not or cannot be written (empty, the input itself by any path,
//    a read-only file system) are refused before computing; a full disk during HDF5's
//    close is an error, not a segfault at exit.
//  * NaN or Inf in q, k, v or do is refused with the tensor and its first index, unless
//    --allow-nonfinite.
//  * An HDF5 group where a dataset belongs is named as a group.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <hdf5.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "runtime/hdf5_file.hpp"
#include "tests/support/run_process.hpp"

namespace longnet {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr int kExitUsageOrInput = 2;
const Shape kShape{1, 24, 2, 8};

Tensor random_tensor(const Shape& shape, unsigned seed) {
  Tensor t(shape, DType::float32);
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  for (float& x : t.span<float>()) x = normal(rng);
  return t;
}

// A valid input; `edit` may then change it.
fs::path write_input(const fs::path& path, const std::function<void(H5File&)>& edit = {}) {
  H5File file = H5File::create(path);
  file.write_tensor("q", random_tensor(kShape, 1));
  file.write_tensor("k", random_tensor(kShape, 2));
  file.write_tensor("v", random_tensor(kShape, 3));
  file.write_attr_int64_array("segment_lengths", std::vector<int64_t>{8, 16});
  file.write_attr_int64_array("dilation_rates", std::vector<int64_t>{1, 2});
  file.write_attr_int64("causal", 1);
  file.write_attr_string("head_offsets", "interleaved");
  if (edit) edit(file);
  file.close();
  return path;
}

// Replaces dataset `name` of `path` by a chunked float32 dataset that declares `dims`
// but stores (almost) nothing: a file of a few KiB that claims an enormous tensor.
void declare_huge_dataset(const fs::path& path, const char* name, std::vector<hsize_t> dims) {
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  H5Ldelete(file, name, H5P_DEFAULT);
  const hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
  const hid_t props = H5Pcreate(H5P_DATASET_CREATE);
  std::vector<hsize_t> chunk(dims.size(), 1);
  H5Pset_chunk(props, static_cast<int>(chunk.size()), chunk.data());
  const hid_t dataset =
      H5Dcreate2(file, name, H5T_IEEE_F32LE, space, H5P_DEFAULT, props, H5P_DEFAULT);
  ASSERT_GE(dataset, 0) << "HDF5 refused to declare the shape";
  H5Dclose(dataset);
  H5Pclose(props);
  H5Sclose(space);
  H5Fclose(file);
}

class AttendHardeningTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = info->name();
    for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
    root_ = fs::temp_directory_path() /
            fmt::format("longnet_test_attend_hardening_{}_{}", ::getpid(), name);
    fs::remove_all(root_);
    fs::create_directories(work());
    fs::create_directories(logs());
  }
  void TearDown() override {
    if (mounted_) ::umount2(mount_point().c_str(), MNT_DETACH);
    fs::remove_all(root_);
  }

  fs::path work() const { return root_ / "work"; }
  fs::path logs() const { return root_ / "logs"; }
  fs::path mount_point() const { return root_ / "mnt"; }

  test::RunResult run(std::vector<std::string> args) const {
    args.insert(args.begin(), LONGNET_BINARY);
    return test::run_process(args, logs());
  }
  // attend --in in --out out, expected to be refused with `keyword`.
  void expect_refused(const std::vector<std::string>& args, const std::string& keyword) {
    const test::RunResult r = run(args);
    EXPECT_EQ(r.status, kExitUsageOrInput) << r.err;
    EXPECT_THAT(r.err, StartsWith("longnet attend: error: "));
    EXPECT_THAT(r.err, HasSubstr(keyword));
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(r.out, "");
  }
  // A small tmpfs of `bytes` at mount_point() (with `extra` options, e.g. "ro"); false
  // where this process may not mount (not root, or in a container without the right).
  bool mount_small_tmpfs(std::size_t bytes, const std::string& extra = "") {
    fs::create_directories(mount_point());
    const std::string options = fmt::format("size={}", bytes);
    unsigned long flags = extra == "ro" ? MS_RDONLY : 0;
    if (::mount("tmpfs", mount_point().c_str(), "tmpfs", flags, options.c_str()) != 0) {
      mount_error_ = std::strerror(errno);
      return false;
    }
    mounted_ = true;
    return true;
  }

  fs::path root_;
  bool mounted_ = false;
  std::string mount_error_;
};

// ---- shapes and threads -------------------------------------------------------------------

TEST_F(AttendHardeningTest, ShapeWhoseElementCountOverflowsIsRefusedNamingItsDimensions) {
  const fs::path in = write_input(work() / "in.h5");
  for (const char* name : {"q", "k", "v"}) declare_huge_dataset(in, name, {1, 1ULL << 62, 4, 1});
  expect_refused({"attend", "--in", in.string(), "--out", (work() / "out.h5").string()},
                 "shape [1, 4611686018427387904, 4, 1] has more elements than a 64-bit count");
  EXPECT_FALSE(fs::exists(work() / "out.h5"));
}

TEST_F(AttendHardeningTest, ShapeLargerThanThisMachinesMemoryIsRefusedBeforeAllocating) {
  const fs::path in = write_input(work() / "in.h5");
  for (const char* name : {"q", "k", "v"}) declare_huge_dataset(in, name, {1, 1ULL << 40, 4, 1});
  expect_refused({"attend", "--in", in.string(), "--out", (work() / "out.h5").string()},
                 "GiB of memory");
}

TEST_F(AttendHardeningTest, ThreadsBeyondWhatTheMachineAllowsAreRefused) {
  const fs::path in = write_input(work() / "in.h5");
  const test::RunResult r = run(
      {"attend", "--in", in.string(), "--out", (work() / "out.h5").string(), "--threads", "65536"});
  EXPECT_EQ(r.status, kExitUsageOrInput) << r.err;
  EXPECT_THAT(r.err, HasSubstr("--threads"));
  EXPECT_THAT(r.err, HasSubstr("this machine allows"));
  EXPECT_FALSE(fs::exists(work() / "out.h5"));
}

// ---- outputs --------------------------------------------------------------------------------

TEST_F(AttendHardeningTest, EmptyOutIsRefused) {
  const fs::path in = write_input(work() / "in.h5");
  expect_refused({"attend", "--in", in.string(), "--out", ""}, "--out is empty");
}

TEST_F(AttendHardeningTest, OutputThatIsTheInputIsRefusedAndTheInputKept) {
  const fs::path in = write_input(work() / "in.h5");
  const std::string before = test::read_text(in);
  fs::create_symlink(in, work() / "link.h5");
  fs::create_directory(work() / "sub");
  for (const fs::path& out : {in, work() / "link.h5", work() / "sub" / ".." / "in.h5"}) {
    SCOPED_TRACE(out.string());
    expect_refused({"attend", "--in", in.string(), "--out", out.string()}, "is the input file");
  }
  EXPECT_EQ(test::read_text(in), before);
}

TEST_F(AttendHardeningTest, ReadOnlyOutputFileSystemIsRefusedBeforeComputing) {
  if (!mount_small_tmpfs(1 << 20, "ro")) GTEST_SKIP() << "cannot mount a tmpfs: " << mount_error_;
  const fs::path in = write_input(work() / "in.h5");
  expect_refused({"attend", "--in", in.string(), "--out", (mount_point() / "out.h5").string()},
                 "cannot create the temporary");
}

// The HDF5 close (the final flush) is what fails with a few KiB free; before the fix the
// right message was printed, then HDF5's exit handler closed the file again: status 139.
TEST_F(AttendHardeningTest, FullDiskDuringTheWriteIsAnErrorNotACrash) {
  constexpr std::size_t kSize = 1 << 20;
  if (!mount_small_tmpfs(kSize)) GTEST_SKIP() << "cannot mount a tmpfs: " << mount_error_;
  const fs::path in = write_input(
      work() / "in.h5", [](H5File& f) { f.write_tensor("do", random_tensor(kShape, 4)); });
  bool any_full = false;
  for (std::size_t free_kib : {0, 2, 4, 6, 8, 12}) {
    SCOPED_TRACE(fmt::format("{} KiB free", free_kib));
    for (const auto& entry : fs::directory_iterator(mount_point())) fs::remove(entry.path());
    {
      std::ofstream filler(mount_point() / "filler", std::ios::binary);
      const std::vector<char> zeros(kSize - free_kib * 1024, 0);
      filler.write(zeros.data(), static_cast<std::streamsize>(zeros.size()));
    }
    const test::RunResult r = run(
        {"attend", "--in", in.string(), "--out", (mount_point() / "out.h5").string(), "--quiet"});
    if (r.status == 0) continue;  // it fitted
    any_full = true;
    EXPECT_EQ(r.status, kExitUsageOrInput) << r.err;
    EXPECT_THAT(r.err, StartsWith("longnet attend: error: "));
    EXPECT_THAT(r.err, HasSubstr("No space left on device"));
    EXPECT_EQ(std::set<fs::path>(fs::directory_iterator(mount_point()), {}),
              std::set<fs::path>{mount_point() / "filler"})
        << "a temporary or partial output was left behind";
  }
  EXPECT_TRUE(any_full) << "no case filled the disk; the test tests nothing";
}

// ---- non-finite inputs ------------------------------------------------------------------------

TEST_F(AttendHardeningTest, NonFiniteInputIsRefusedNamingTheTensorAndTheFirstIndex) {
  struct Case {
    const char* tensor;
    float value;
    Shape index;  // [b, n, h, d]
    const char* printed;
  };
  const float inf = std::numeric_limits<float>::infinity();
  for (const Case& c :
       {Case{"v", inf, {0, 5, 1, 3}, "inf"}, Case{"q", std::nanf(""), {0, 23, 0, 7}, "nan"},
        Case{"do", -inf, {0, 0, 1, 0}, "-inf"}}) {
    SCOPED_TRACE(c.tensor);
    const fs::path in = write_input(work() / "in.h5", [&](H5File& f) {
      Tensor t = random_tensor(kShape, 9);
      const int64_t at =
          ((c.index[0] * kShape[1] + c.index[1]) * kShape[2] + c.index[2]) * kShape[3] + c.index[3];
      t.data<float>()[at] = c.value;
      t.data<float>()[at + 1 < t.numel() ? at + 1 : at] = c.value;  // a later one too
      if (std::string(c.tensor) != "do") f.write_tensor("do", random_tensor(kShape, 4));
      f.write_tensor(c.tensor, t);
    });
    expect_refused({"attend", "--in", in.string(), "--out", (work() / "out.h5").string()},
                   fmt::format("input '{}' holds {} at [{}, {}, {}, {}]", c.tensor, c.printed,
                               c.index[0], c.index[1], c.index[2], c.index[3]));
    EXPECT_FALSE(fs::exists(work() / "out.h5"));
  }
}

TEST_F(AttendHardeningTest, AllowNonfiniteComputesAnyway) {
  const fs::path in = write_input(work() / "in.h5", [](H5File& f) {
    Tensor v = random_tensor(kShape, 3);
    v.data<float>()[0] = std::numeric_limits<float>::infinity();
    f.write_tensor("v", v);
  });
  const fs::path out = work() / "out.h5";
  const test::RunResult r =
      run({"attend", "--in", in.string(), "--out", out.string(), "--allow-nonfinite", "--quiet"});
  ASSERT_EQ(r.status, 0) << r.err;
  // Token 0 of batch 0, head 0 sees v[0] (causal, first in every segment): its output
  // is not finite, as documented.
  const Tensor o = H5File::open_read(out).read_tensor_f32("o");
  EXPECT_FALSE(std::isfinite(o.data<float>()[0]));
}

// ---- datasets that are not datasets ---------------------------------------------------------

TEST_F(AttendHardeningTest, GroupWhereADatasetBelongsIsNamedAsAGroup) {
  const fs::path in = work() / "in.h5";
  {
    H5File f = H5File::create(in);
    f.write_tensor("q/data", random_tensor(kShape, 1));
    f.write_tensor("q/extra", random_tensor(kShape, 1));
    f.write_tensor("k", random_tensor(kShape, 2));
    f.write_tensor("v", random_tensor(kShape, 3));
    f.write_attr_int64_array("segment_lengths", std::vector<int64_t>{8});
    f.write_attr_int64_array("dilation_rates", std::vector<int64_t>{1});
    f.write_attr_int64("causal", 1);
    f.write_attr_string("head_offsets", "interleaved");
    f.close();
  }
  expect_refused({"attend", "--in", in.string(), "--out", (work() / "out.h5").string()},
                 "'q' is a group, not a dataset (it holds: data, extra)");
}

}  // namespace
}  // namespace longnet
