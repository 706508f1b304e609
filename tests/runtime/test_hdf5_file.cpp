// runtime/hdf5_file: tensors and attributes survive a round trip bit for bit, the
// attribute forms other tools write are read, slices read exactly their range, and
// every failure is a longnet::Error that names the problem (and prints nothing).
#include "runtime/hdf5_file.hpp"
#include "tests/support/error_of.hpp"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <hdf5.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <tuple>
#include <vector>

namespace longnet {
namespace {

using test::error_of;

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// A fresh directory per test, removed afterwards.
class Hdf5FileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           fmt::format("longnet_test_hdf5_{}_{}", ::getpid(), info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path file(const std::string& name) const { return dir_ / name; }

  fs::path dir_;
};

Tensor random_f32(const Shape& shape, unsigned seed) {
  Tensor t(shape, DType::float32);
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  for (float& x : t.span<float>()) x = normal(rng);
  return t;
}

// Element i holds the value i, so a slice's contents say where they came from.
Tensor iota_f32(const Shape& shape) {
  Tensor t(shape, DType::float32);
  float next = 0;
  for (float& x : t.span<float>()) x = next++;
  return t;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() &&
         std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

TEST_F(Hdf5FileTest, TensorRoundTripIsBitwise) {
  const Tensor a = random_f32({2, 7, 3, 5}, 1);
  Tensor b(Shape{3, 4}, DType::float64);
  b.fill(0.1);  // not exact in float32: a float64 write must not narrow
  {
    H5File out = H5File::create(file("t.h5"));
    out.write_tensor("a", a);
    out.write_tensor("b", b);
    out.close();
  }
  const H5File in = H5File::open_read(file("t.h5"));
  EXPECT_TRUE(same_bits(in.read_tensor_f32("a"), a));
  EXPECT_EQ(in.dataset_shape("a"), (Shape{2, 7, 3, 5}));
  EXPECT_EQ(in.dataset_shape("b"), (Shape{3, 4}));
}

TEST_F(Hdf5FileTest, RewritingADatasetReplacesIt) {
  H5File out = H5File::create(file("t.h5"));
  out.write_tensor("x", random_f32({4, 4}, 1));
  const Tensor second = random_f32({2, 3}, 2);
  out.write_tensor("x", second);
  EXPECT_TRUE(same_bits(out.read_tensor_f32("x"), second));
}

TEST_F(Hdf5FileTest, DatasetPathsCreateAndFindGroups) {
  H5File out = H5File::create(file("t.h5"));
  const Tensor o = random_f32({1, 3, 2, 4}, 3);
  out.write_tensor("expected/o", o);
  EXPECT_TRUE(out.has_dataset("expected/o"));
  EXPECT_TRUE(out.has_dataset("/expected/o"));
  EXPECT_FALSE(out.has_dataset("expected"));  // a group, not a dataset
  EXPECT_FALSE(out.has_dataset("expected/lse"));
  EXPECT_FALSE(out.has_dataset("missing/o"));
  EXPECT_FALSE(out.has_dataset("expected/o/deeper"));  // o is not a group
  EXPECT_FALSE(out.has_dataset(""));
  EXPECT_TRUE(same_bits(out.read_tensor_f32("expected/o"), o));
}

TEST_F(Hdf5FileTest, SliceReadsExactlyItsTokenRange) {
  const Shape shape{2, 11, 3, 4};  // [B, N, H, D]
  {
    H5File out = H5File::create(file("t.h5"));
    out.write_tensor("q", iota_f32(shape));
    out.close();
  }
  const H5File in = H5File::open_read(file("t.h5"));
  const Tensor slice = in.read_tensor_f32_slice("q", 1, 3, 8);
  ASSERT_EQ(slice.shape(), (Shape{2, 5, 3, 4}));
  const float* s = slice.data<float>();
  for (int64_t b = 0; b < 2; ++b) {
    for (int64_t n = 0; n < 5; ++n) {
      for (int64_t hd = 0; hd < 12; ++hd) {
        const float expected = static_cast<float>((b * 11 + (n + 3)) * 12 + hd);
        ASSERT_EQ(s[(b * 5 + n) * 12 + hd], expected) << "b=" << b << " n=" << n;
      }
    }
  }
  // The whole range is the whole dataset; other axes slice too.
  EXPECT_TRUE(same_bits(in.read_tensor_f32_slice("q", 1, 0, 11), in.read_tensor_f32("q")));
  const Tensor batch1 = in.read_tensor_f32_slice("q", 0, 1, 2);
  EXPECT_EQ(batch1.shape(), (Shape{1, 11, 3, 4}));
  EXPECT_EQ(batch1.data<float>()[0], 11.0f * 12.0f);
  EXPECT_EQ(in.read_tensor_f32_slice("q", 3, 2, 3).data<float>()[1], 6.0f);  // (0,0,1,2)
  EXPECT_EQ(in.read_tensor_f32_slice("q", 1, 4, 4).shape(), (Shape{2, 0, 3, 4}));
}

TEST_F(Hdf5FileTest, SliceOutsideTheExtentIsAnError) {
  H5File out = H5File::create(file("t.h5"));
  out.write_tensor("q", iota_f32({1, 5, 2, 2}));
  EXPECT_THAT(error_of([&] { out.read_tensor_f32_slice("q", 1, 3, 6); }),
              HasSubstr("slice [3, 6) of axis 1 lies outside its extent 5"));
  EXPECT_THAT(error_of([&] { out.read_tensor_f32_slice("q", 1, 3, 2); }), HasSubstr("outside"));
  EXPECT_THAT(error_of([&] { out.read_tensor_f32_slice("q", 4, 0, 1); }), HasSubstr("no axis 4"));
}

TEST_F(Hdf5FileTest, SlicesWrittenInTurnEqualTheWholeTensor) {
  const Shape shape{2, 11, 3, 4};
  const Tensor whole = random_f32(shape, 9);
  {
    H5File out = H5File::create(file("t.h5"));
    out.create_dataset_f32("o", shape);
    out.close();
    H5File in = H5File::create(file("in.h5"));
    in.write_tensor("x", whole);
    in.close();
  }
  // Three "ranks" write their token ranges one after another, each reopening the file.
  for (auto [begin, end] : {std::pair<int64_t, int64_t>{0, 4}, {4, 8}, {8, 11}}) {
    const Tensor shard = H5File::open_read(file("in.h5")).read_tensor_f32_slice("x", 1, begin, end);
    H5File out = H5File::open_read_write(file("t.h5"));
    out.write_tensor_f32_slice("o", 1, begin, shard);
    out.close();
  }
  EXPECT_TRUE(same_bits(H5File::open_read(file("t.h5")).read_tensor_f32("o"), whole));
}

TEST_F(Hdf5FileTest, SliceThatDoesNotFitIsRefused) {
  H5File out = H5File::create(file("t.h5"));
  out.create_dataset_f32("o", {1, 5, 2, 2});
  EXPECT_THAT(error_of([&] {
                out.write_tensor_f32_slice("o", 1, 4, iota_f32({1, 2, 2, 2}));
              }),
              HasSubstr("does not fit"));
  EXPECT_THAT(error_of([&] {
                out.write_tensor_f32_slice("o", 1, 0, iota_f32({1, 2, 3, 2}));
              }),
              HasSubstr("does not fit"));
  EXPECT_THAT(error_of([] { H5File::open_read_write("/nonexistent/file.h5"); }),
              HasSubstr("no such file"));
}

TEST_F(Hdf5FileTest, AttributesRoundTrip) {
  const std::vector<int64_t> lengths{2048, 4096, int64_t{1} << 40};
  {
    H5File out = H5File::create(file("t.h5"));
    out.write_attr_int64_array("segment_lengths", lengths);
    out.write_attr_int64_array("empty", std::vector<int64_t>{});
    out.write_attr_int64("causal", 1);
    out.write_attr_double("scale", 0.125);
    out.write_attr_string("head_offsets", "grouped");
    out.write_attr_string("unicode", "w\xc2\xb7r");  // "w·r" in UTF-8
    out.write_attr_int64("causal", 0);               // replaces the first value
    out.close();
  }
  const H5File in = H5File::open_read(file("t.h5"));
  EXPECT_TRUE(in.has_attribute("causal"));
  EXPECT_FALSE(in.has_attribute("dilation_rates"));
  EXPECT_EQ(in.read_attr_int64_array("segment_lengths"), lengths);
  EXPECT_TRUE(in.read_attr_int64_array("empty").empty());
  EXPECT_EQ(in.read_attr_int64("causal"), 0);
  EXPECT_EQ(in.read_attr_int64_array("causal"), std::vector<int64_t>{0});  // a scalar is 1 long
  EXPECT_EQ(in.read_attr_double("scale"), 0.125);
  EXPECT_EQ(in.read_attr_double("causal"), 0.0);  // integers read as numbers
  EXPECT_EQ(in.read_attr_string("head_offsets"), "grouped");
  EXPECT_EQ(in.read_attr_string("unicode"), "w\xc2\xb7r");
}

TEST_F(Hdf5FileTest, RewritingAnAttributeMayChangeItsType) {
  H5File out = H5File::create(file("t.h5"));
  out.write_attr_int64_array("x", std::vector<int64_t>{1, 2, 3});
  out.write_attr_string("x", "now a string");
  EXPECT_EQ(out.read_attr_string("x"), "now a string");
  out.write_attr_double("x", 2.5);
  EXPECT_EQ(out.read_attr_double("x"), 2.5);
  EXPECT_THAT(error_of([&] { out.read_attr_int64("x"); }),
              HasSubstr("t.h5: root attribute 'x' holds float64, expected an integer"));
}

TEST_F(Hdf5FileTest, ReadsTheAttributesH5pyWrites) {
  // The fixture was written by h5py: int64 arrays, int64 scalars and a variable-length
  // UTF-8 string.
  const H5File in = H5File::open_read(fs::path(LONGNET_TEST_FIXTURES) /
                                      "example_causal_grouped_w32-96_r2-3_N200_B1_H4_D32.h5");
  EXPECT_EQ(in.read_attr_int64_array("segment_lengths"), (std::vector<int64_t>{32, 96}));
  EXPECT_EQ(in.read_attr_int64_array("dilation_rates"), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(in.read_attr_int64("causal"), 1);
  EXPECT_EQ(in.read_attr_string("head_offsets"), "grouped");
  EXPECT_EQ(in.dataset_shape("q"), (Shape{1, 200, 4, 32}));
  EXPECT_TRUE(in.has_dataset("expected/lse"));
}

// Writes a scalar or 1-D root attribute of any HDF5 type through the C API, for the
// forms H5File's writers never produce.
// `count` 0 makes a scalar; `data` is in `memory_type`, stored as `file_type`.
void write_raw_attribute(const fs::path& path, const char* name, hid_t file_type, hid_t memory_type,
                         hsize_t count, const void* data) {
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  const hid_t space = count == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &count, nullptr);
  const hid_t a = H5Acreate2(f, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(a, 0);
  ASSERT_GE(H5Awrite(a, memory_type, data), 0);
  H5Aclose(a);
  H5Sclose(space);
  H5Fclose(f);
}

hid_t fixed_string_type(std::size_t size, H5T_str_t pad) {
  const hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, size);
  H5Tset_strpad(t, pad);
  return t;
}

TEST_F(Hdf5FileTest, ReadsOtherIntegerWidthsBoolsAndFixedLengthStrings) {
  H5File::create(file("t.h5")).close();
  const int32_t rates[3] = {1, 2, 4};
  write_raw_attribute(file("t.h5"), "int32_array", H5T_STD_I32BE, H5T_NATIVE_INT32, 3,
                      rates);  // big-endian too
  const uint8_t flag = 1;
  write_raw_attribute(file("t.h5"), "uint8", H5T_STD_U8LE, H5T_NATIVE_UINT8, 0, &flag);
  // h5py's bool: an enum over int8 with FALSE = 0 and TRUE = 1.
  const hid_t bool_type = H5Tenum_create(H5T_NATIVE_INT8);
  for (const auto& [member, value] :
       {std::pair{"FALSE", int8_t{0}}, std::pair{"TRUE", int8_t{1}}}) {
    H5Tenum_insert(bool_type, member, &value);
  }
  const int8_t flags[2] = {1, 0};
  write_raw_attribute(file("t.h5"), "bool", bool_type, bool_type, 0, &flags[0]);
  write_raw_attribute(file("t.h5"), "bool_array", bool_type, bool_type, 2, flags);
  H5Tclose(bool_type);
  const float scale = 0.5f;
  write_raw_attribute(file("t.h5"), "float32", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 0, &scale);
  for (const auto& [name, pad, bytes] : {std::tuple{"nullterm", H5T_STR_NULLTERM, "grouped\0\0\0"},
                                         std::tuple{"nullpad", H5T_STR_NULLPAD, "grouped\0\0\0"},
                                         std::tuple{"spacepad", H5T_STR_SPACEPAD, "grouped   "}}) {
    const hid_t type = fixed_string_type(10, pad);
    write_raw_attribute(file("t.h5"), name, type, type, 0, bytes);
    H5Tclose(type);
  }
  const H5File in = H5File::open_read(file("t.h5"));
  EXPECT_EQ(in.read_attr_int64_array("int32_array"), (std::vector<int64_t>{1, 2, 4}));
  EXPECT_EQ(in.read_attr_int64("uint8"), 1);
  EXPECT_EQ(in.read_attr_int64("bool"), 1);
  EXPECT_EQ(in.read_attr_int64_array("bool_array"), (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(in.read_attr_double("float32"), 0.5);
  EXPECT_EQ(in.read_attr_string("nullterm"), "grouped");
  EXPECT_EQ(in.read_attr_string("nullpad"), "grouped");
  EXPECT_EQ(in.read_attr_string("spacepad"), "grouped");
}

TEST_F(Hdf5FileTest, MissingDatasetIsNamedWithTheFilesContents) {
  H5File out = H5File::create(file("t.h5"));
  out.write_tensor("k", iota_f32({2}));
  const std::string message = error_of([&] { out.read_tensor_f32("q"); });
  EXPECT_THAT(message, HasSubstr("no dataset 'q'"));
  EXPECT_THAT(message, HasSubstr("root holds: k"));
  EXPECT_THAT(message, HasSubstr("t.h5"));
  EXPECT_THAT(error_of([&] { out.dataset_shape("q"); }), HasSubstr("no dataset 'q'"));
}

// Declares dataset `name` of `type` with extents `dims`, chunked and never written (so
// nothing is stored), in a new file or, with `replace`, in place of one of that name.
void declare_unwritten(const fs::path& path, const char* name, hid_t type,
                       const std::vector<hsize_t>& dims, bool replace) {
  const hid_t f = replace ? H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT)
                          : H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  if (replace) H5Ldelete(f, name, H5P_DEFAULT);
  const int rank = static_cast<int>(dims.size());
  const std::vector<hsize_t> chunk(dims.size(), 1);
  const hid_t space = H5Screate_simple(rank, dims.data(), nullptr);
  const hid_t props = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(props, rank, chunk.data());
  const hid_t d = H5Dcreate2(f, name, type, space, H5P_DEFAULT, props, H5P_DEFAULT);
  EXPECT_GE(d, 0);
  if (d >= 0) H5Dclose(d);
  H5Pclose(props);
  H5Sclose(space);
  H5Fclose(f);
}

// A dataset declared but never written reads as HDF5's fill value (zeros) unless refused;
// so does one whose declared extent was raised after writing.
TEST_F(Hdf5FileTest, DeclaredButUnwrittenDataIsRefusedNotReadAsZeros) {
  H5File out = H5File::create(file("t.h5"));
  out.create_dataset_f32("o", {2, 3});
  out.write_dataset_u64("rng", std::vector<uint64_t>{7, 11});
  out.close();
  // A chunked u64 dataset declaring 2^40 elements and storing none.
  declare_unwritten(file("t.h5"), "rng", H5T_STD_U64LE, {hsize_t{1} << 40}, /*replace=*/true);
  const H5File in = H5File::open_read(file("t.h5"));
  EXPECT_THAT(error_of([&] { in.read_tensor_f32("o"); }),
              HasSubstr("declares 6 elements (24 bytes) but stores only 0 bytes"));
  EXPECT_THAT(error_of([&] { in.read_tensor_f32_slice("o", 0, 0, 1); }),
              HasSubstr("but stores only 0 bytes"));
  EXPECT_THAT(error_of([&] { in.read_dataset_u64("rng"); }),
              HasSubstr("declares 1099511627776 elements"));
}

// int64 matrices (attend's document_lengths): a round trip, a write with the wrong value
// count, and a read of another integer type, refused naming the dataset.
TEST_F(Hdf5FileTest, Int64MatrixRoundTripsAndOtherTypesAreRefused) {
  H5File out = H5File::create(file("m.h5"));
  out.write_matrix_i64("lengths", {2, 3, {5, -1, 0, 7, 8, 9}});
  out.write_dataset_u64("unsigned", std::vector<uint64_t>{1, 2});
  EXPECT_THAT(error_of([&] {
                out.write_matrix_i64("bad", {2, 2, {1, 2, 3}});
              }),
              HasSubstr("3 values for a 2 x 2 matrix"));
  out.close();
  const H5File in = H5File::open_read(file("m.h5"));
  const Int64Matrix m = in.read_matrix_i64("lengths");
  EXPECT_EQ(m.rows, 2);
  EXPECT_EQ(m.columns, 3);
  EXPECT_EQ(m.values, (std::vector<int64_t>{5, -1, 0, 7, 8, 9}));
  EXPECT_THAT(error_of([&] { in.read_matrix_i64("unsigned"); }),
              AllOf(HasSubstr("unsigned"), HasSubstr("expected int64")));
}

// Extents whose product overflows int64 are refused naming the dataset, before any
// allocation (a wrapped count would pass every later check).
TEST_F(Hdf5FileTest, ExtentsWhoseProductOverflowsAreRefused) {
  declare_unwritten(file("t.h5"), "q", H5T_IEEE_F32LE, {hsize_t{1} << 40, hsize_t{1} << 30, 1},
                    /*replace=*/false);
  const H5File in = H5File::open_read(file("t.h5"));
  for (const std::string& message :
       {error_of([&] { in.read_tensor_f32("q"); }), error_of([&] { in.dataset_shape("q"); })}) {
    EXPECT_THAT(message, HasSubstr("dataset 'q'"));
    EXPECT_THAT(message, HasSubstr("1099511627776"));
  }
}

TEST_F(Hdf5FileTest, Float64DatasetIsRefusedAsFloat32) {
  H5File out = H5File::create(file("t.h5"));
  out.write_tensor("q", Tensor::zeros({2, 2}, DType::float64));
  EXPECT_THAT(error_of([&] { out.read_tensor_f32("q"); }),
              HasSubstr("dataset 'q' holds float64, expected float32"));
  EXPECT_THAT(error_of([&] { out.read_tensor_f32_slice("q", 0, 0, 1); }),
              HasSubstr("holds float64, expected float32"));
}

TEST_F(Hdf5FileTest, AttributeOfTheWrongKindIsNamed) {
  H5File out = H5File::create(file("t.h5"));
  out.write_attr_string("causal", "yes");
  out.write_attr_int64_array("segment_lengths", std::vector<int64_t>{1, 2});
  out.write_attr_double("scale", 0.5);
  EXPECT_THAT(error_of([&] { out.read_attr_int64("causal"); }),
              HasSubstr("root attribute 'causal' holds string, expected an integer"));
  EXPECT_THAT(error_of([&] { out.read_attr_int64("segment_lengths"); }),
              HasSubstr("has 2 elements, expected exactly one"));
  EXPECT_THAT(error_of([&] { out.read_attr_int64_array("scale"); }),
              HasSubstr("holds float64, expected integers"));
  EXPECT_THAT(error_of([&] { out.read_attr_string("scale"); }),
              HasSubstr("holds float64, expected a string"));
  EXPECT_THAT(error_of([&] { out.read_attr_double("missing"); }),
              HasSubstr("no root attribute 'missing'"));
}

TEST_F(Hdf5FileTest, NonHdf5FileIsRefused) {
  std::ofstream(file("notes.h5")) << "not an HDF5 file\n";
  EXPECT_THAT(error_of([&] { H5File::open_read(file("notes.h5")); }),
              HasSubstr("is not an HDF5 file"));
  EXPECT_THAT(error_of([&] { H5File::open_read(file("absent.h5")); }), HasSubstr("no such file"));
  EXPECT_THAT(error_of([&] { H5File::open_read(dir_); }), HasSubstr("is a directory"));
}

TEST_F(Hdf5FileTest, LibraryFailureCarriesHdf5sMessageAndTheCall) {
  // Not pre-checked by H5File, so this message comes from the HDF5 check macro.
  const std::string message = error_of([&] { H5File::create(file("no/such/dir/t.h5")); });
  EXPECT_THAT(message, HasSubstr("cannot create"));
  EXPECT_THAT(message, HasSubstr("No such file or directory"));  // HDF5's innermost frame
  EXPECT_THAT(message, HasSubstr("H5Fcreate("));                 // the statement
  EXPECT_THAT(message, HasSubstr("hdf5_file.cpp:"));             // file:line
  EXPECT_THAT(message, HasSubstr("HDF5: "));                     // the library
  EXPECT_THAT(message, HasSubstr("[rank "));                     // the process
}

TEST_F(Hdf5FileTest, FailuresPrintNothing) {
  // HDF5 prints its error stack to stderr by default; H5File reports through Error only.
  ::testing::internal::CaptureStderr();
  error_of([&] { H5File::create(file("no/such/dir/t.h5")); });
  std::ofstream(file("notes.h5")) << "text";
  error_of([&] { H5File::open_read(file("notes.h5")); });
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
}

TEST_F(Hdf5FileTest, TypedFormsStoreWhatTheNamedFunctionsStore) {
  H5File f = H5File::create(file("typed.h5"));
  f.write_attr<int64_t>("i", -5);
  f.write_attr<uint64_t>("u", uint64_t{1} << 63);
  f.write_attr<double>("d", 0.25);
  f.write_attr<std::string>("s", "grouped");
  f.write_attr<std::vector<int64_t>>("a", {8, 16});
  const std::vector<uint8_t> bytes{1, 2, 255};
  const std::vector<uint64_t> offsets{0, uint64_t{1} << 40};
  f.write_dataset<uint8_t>("bytes", bytes);
  f.write_dataset<uint64_t>("offsets", offsets);
  f.close();
  const H5File g = H5File::open_read(file("typed.h5"));
  EXPECT_EQ(g.read_attr<int64_t>("i"), -5);
  EXPECT_EQ(g.read_attr_int64("i"), -5);
  EXPECT_EQ(g.read_attr<uint64_t>("u"), uint64_t{1} << 63);
  EXPECT_EQ(g.read_attr<double>("d"), 0.25);
  EXPECT_EQ(g.read_attr<std::string>("s"), "grouped");
  EXPECT_EQ(g.read_attr<std::vector<int64_t>>("a"), (std::vector<int64_t>{8, 16}));
  EXPECT_EQ(g.read_dataset<uint8_t>("bytes"), bytes);
  EXPECT_EQ(g.read_dataset_u64("offsets"), offsets);
  EXPECT_THROW(g.read_dataset<uint64_t>("bytes"), Error);  // uint8 is not read as uint64
}

}  // namespace
}  // namespace longnet
