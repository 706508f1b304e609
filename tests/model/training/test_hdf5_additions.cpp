// The H5File additions the training files rely on: exact-type integer datasets, unsigned
// attributes, groups listed in creation order, and the user block.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>

#include "runtime/error.hpp"
#include "runtime/hdf5_file.hpp"
#include "tests/support/temp_dir.hpp"

namespace longnet {
namespace {

using test::error_of;
using test::TempDir;
using ::testing::AllOf;
using ::testing::HasSubstr;

TEST(H5FileAdditions, IntegerDatasetsRoundTripAndRefuseOtherTypes) {
  const TempDir tmp;
  const std::vector<uint8_t> bytes = {0, 1, 127, 128, 255};
  const std::vector<uint64_t> words = {0, 1, std::numeric_limits<uint64_t>::max()};
  {
    H5File f = H5File::create(tmp / "a.h5");
    f.write_dataset_u8("g/bytes", bytes);
    f.write_dataset_u64("words", words);
    f.write_dataset_u8("empty", {});
    f.write_tensor("floats", Tensor::zeros({5}));
    f.close();
  }
  const H5File f = H5File::open_read(tmp / "a.h5");
  EXPECT_EQ(f.read_dataset_u8("g/bytes"), bytes);
  EXPECT_EQ(f.read_dataset_u64("words"), words);
  EXPECT_TRUE(f.read_dataset_u8("empty").empty());
  EXPECT_THAT(error_of([&] { f.read_dataset_u8("floats"); }),
              AllOf(HasSubstr("'floats'"), HasSubstr("holds float32, expected uint8")));
  EXPECT_THAT(error_of([&] { f.read_dataset_u64("g/bytes"); }), HasSubstr("holds uint8"));
  EXPECT_THAT(error_of([&] { f.read_dataset_u8("missing"); }), HasSubstr("no dataset 'missing'"));
}

TEST(H5FileAdditions, UnsignedAttributesKeepAll64Bits) {
  const TempDir tmp;
  {
    H5File f = H5File::create(tmp / "a.h5");
    f.write_attr_uint64("big", std::numeric_limits<uint64_t>::max());
    f.write_attr_int64("signed", 12);
    f.write_attr_int64("negative", -1);
    f.close();
  }
  const H5File f = H5File::open_read(tmp / "a.h5");
  EXPECT_EQ(f.read_attr_uint64("big"), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(f.read_attr_uint64("signed"), 12u);  // what h5py writes for a Python int
  EXPECT_THAT(error_of([&] { f.read_attr_uint64("negative"); }),
              HasSubstr("is -1, expected a non-negative integer"));
}

TEST(H5FileAdditions, GroupsListInCreationOrderWhenTheyRecordIt) {
  const TempDir tmp;
  {
    H5File f = H5File::create(tmp / "a.h5");
    f.create_group("ordered");
    f.write_tensor("implicit/zeta", Tensor::zeros({1}));  // intermediate group: name order
    for (const char* name : {"zeta", "alpha.1", "mid"}) {
      f.write_tensor(std::string("ordered/") + name, Tensor::zeros({1}));
      if (std::string(name) != "zeta")
        f.write_tensor(std::string("implicit/") + name, Tensor::zeros({1}));
    }
    EXPECT_THAT(error_of([&] { f.create_group("ordered"); }), HasSubstr("already exists"));
    f.close();
  }
  const H5File f = H5File::open_read(tmp / "a.h5");
  EXPECT_TRUE(f.has_group("ordered"));
  EXPECT_FALSE(f.has_group("ordered/zeta"));  // a dataset, not a group
  EXPECT_FALSE(f.has_group("nothing"));
  EXPECT_EQ(f.list_group("ordered"), (std::vector<std::string>{"zeta", "alpha.1", "mid"}));
  EXPECT_EQ(f.list_group("implicit"), (std::vector<std::string>{"alpha.1", "mid", "zeta"}));
  EXPECT_THAT(error_of([&] { f.list_group("nothing"); }), HasSubstr("no group 'nothing'"));
}

// has_group and has_dataset walk a path the same way: every object before the last must
// be a group, and a name ending in '/' (or the root's "" and "/") names a group.
TEST(H5FileAdditions, GroupPathsAreWalkedLikeDatasetPaths) {
  const TempDir tmp;
  H5File f = H5File::create(tmp / "a.h5");
  f.write_tensor("a/b/x", Tensor::zeros({2}));
  for (const char* group : {"", "/", "a", "/a", "a/b", "a/b/", "/a/b/"}) {
    EXPECT_TRUE(f.has_group(group)) << "'" << group << "'";
  }
  for (const char* not_group : {"a/b/x", "a/b/x/", "a/b/x/y", "a/c", "c/b"}) {
    EXPECT_FALSE(f.has_group(not_group)) << "'" << not_group << "'";
  }
  EXPECT_TRUE(f.has_dataset("/a/b/x"));
  for (const char* not_dataset : {"a/b/x/", "a/b", "a/x", "a/b/x/y", "/"}) {
    EXPECT_FALSE(f.has_dataset(not_dataset)) << "'" << not_dataset << "'";
  }
  EXPECT_EQ(f.list_group("/"), std::vector<std::string>{"a"});
  EXPECT_THAT(error_of([&] { f.list_group("a/b/x"); }),
              AllOf(HasSubstr("a.h5: no group 'a/b/x'"), HasSubstr("root holds: a")));
}

TEST(H5FileAdditions, UserBlockPrecedesTheSuperblock) {
  const TempDir tmp;
  {
    H5File f = H5File::create_with_user_block(tmp / "u.h5", 512);
    f.write_tensor("x", Tensor::filled({3}, 2.0));
    f.close();
    H5File plain = H5File::create(tmp / "plain.h5");
    plain.close();
  }
  const H5File f = H5File::open_read(tmp / "u.h5");
  EXPECT_EQ(f.user_block_bytes(), 512u);
  EXPECT_EQ(f.read_tensor_f32("x").span<float>()[2], 2.0f);
  EXPECT_EQ(H5File::open_read(tmp / "plain.h5").user_block_bytes(), 0u);
  // HDF5's signature sits at byte 512, after the block left to the application.
  const std::string bytes = test::read_file(tmp / "u.h5");
  EXPECT_EQ(bytes.substr(512, 4), "\x89HDF");
  EXPECT_THAT(error_of([&] { H5File::create_with_user_block(tmp / "bad.h5", 100); }),
              HasSubstr("bad.h5"));
}

}  // namespace
}  // namespace longnet
