// `mpirun -np P longnet attend` writes the same file as one process, for P in
// {1, 2, 3, 4, 8}: N not a multiple of P, segments longer than a shard, causal and not,
// both offset schemes, with and without do. Each rank reads only its shard and writes
// only its slice, so a wrong hyperslab or a wrong shard shows as a mismatch here.
// Tolerance 1e-5 relative L2, the kernels' own (dk and dv are sums in another order).
#include "runtime/hdf5_file.hpp"
#include "tests/support/run_process.hpp"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <set>

namespace longnet {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr double kTolerance = 1e-5;

struct MpiCase {
  const char* name;
  Shape shape;  // [B, N, H, D] of q
  std::vector<int64_t> w, r;
  bool causal;
  const char* offsets;
  bool with_do;
  int64_t kv_heads = 0;  // heads of k and v (grouped-query attention); 0: H
};

const MpiCase kCases[] = {
    {"N1000_segments_longer_than_shards_causal_grouped",
     {1, 1000, 3, 16},
     {64, 300, 2048},
     {1, 3, 4},
     true,
     "grouped",
     true},
    {"B2_N257_uncovered_rows_noncausal_interleaved",
     {2, 257, 4, 8},
     {32, 96, 512},
     {2, 3, 4},
     false,
     "interleaved",
     true},
    {"N45_forward_only_causal_interleaved",
     {1, 45, 2, 8},
     {8, 16},
     {1, 2},
     true,
     "interleaved",
     false},
    // Grouped-query attention: 6 query heads over 2 kv heads, r = 4 not dividing H.
    {"N300_grouped_query_H6_kv2_causal_grouped",
     {1, 300, 6, 8},
     {32, 128, 512},
     {1, 4, 8},
     true,
     "grouped",
     true,
     2},
};

Shape key_shape(const MpiCase& c) {
  return {c.shape[0], c.shape[1], c.kv_heads > 0 ? c.kv_heads : c.shape[2], c.shape[3]};
}

void PrintTo(const MpiCase& c, std::ostream* os) { *os << c.name; }

Tensor random_tensor(const Shape& shape, unsigned seed) {
  Tensor t(shape, DType::float32);
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  for (float& x : t.span<float>()) x = normal(rng);
  return t;
}

void write_input(const fs::path& path, const MpiCase& c) {
  H5File file = H5File::create(path);
  const char* names[] = {"q", "k", "v", "do"};
  for (unsigned i = 0; i < (c.with_do ? 4u : 3u); ++i) {
    const bool key_side = i == 1 || i == 2;
    file.write_tensor(names[i], random_tensor(key_side ? key_shape(c) : c.shape, i + 1));
  }
  file.write_attr_int64_array("segment_lengths", c.w);
  file.write_attr_int64_array("dilation_rates", c.r);
  file.write_attr_int64("causal", c.causal ? 1 : 0);
  file.write_attr_string("head_offsets", c.offsets);
  file.close();
}

class AttendMpiFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    // Open MPI refuses root without these; one OpenMP thread per rank on 2 cores.
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    setenv("OMP_NUM_THREADS", "1", 1);
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = info->name();
    for (char& ch : name) ch = std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
    root_ =
        fs::temp_directory_path() / fmt::format("longnet_test_attend_mpi_{}_{}", ::getpid(), name);
    fs::remove_all(root_);
    fs::create_directories(root_ / "work");
    fs::create_directories(root_ / "logs");
  }
  void TearDown() override { fs::remove_all(root_); }

  fs::path work(const char* file) const { return root_ / "work" / file; }

  test::RunResult run(int ranks, const std::vector<std::string>& args) const {
    std::vector<std::string> argv;
    if (ranks > 0) {
      argv = {LONGNET_MPIEXEC, "-n", std::to_string(ranks)};
      if (std::string(LONGNET_MPIEXEC_OVERSUBSCRIBE).size() > 0) {
        argv.push_back(LONGNET_MPIEXEC_OVERSUBSCRIBE);
      }
    }
    argv.push_back(LONGNET_BINARY);
    argv.insert(argv.end(), args.begin(), args.end());
    return test::run_process(argv, root_ / "logs");
  }

  fs::path root_;
};

// got against want in relative L2 (infinities, the lse of uncovered rows, must match
// exactly); `against` says what want is.
void expect_close(const Tensor& g, const Tensor& w, const std::string& name, const char* against) {
  ASSERT_EQ(g.shape(), w.shape()) << name;
  double diff2 = 0, ref2 = 0;
  int64_t infinity_mismatches = 0;
  for (int64_t i = 0; i < w.numel(); ++i) {
    const double a = g.data<float>()[i], b = w.data<float>()[i];
    if (std::isinf(b) || std::isinf(a)) {
      infinity_mismatches += a == b ? 0 : 1;
      continue;
    }
    diff2 += (a - b) * (a - b);
    ref2 += b * b;
  }
  EXPECT_EQ(infinity_mismatches, 0) << name;
  EXPECT_LE(std::sqrt(diff2 / ref2), kTolerance) << name << ": relative L2 against " << against;
}

void expect_same_dataset(const H5File& got, const H5File& want, const char* name) {
  expect_close(got.read_tensor_f32(name), want.read_tensor_f32(name), name, "one process");
}

class AttendMpiTest : public AttendMpiFixture,
                      public ::testing::WithParamInterface<std::tuple<MpiCase, int>> {};

TEST_P(AttendMpiTest, RanksWriteTheSameFileAsOneProcess) {
  const auto& [c, ranks] = GetParam();
  write_input(work("in.h5"), c);
  const auto single = run(0, {"attend", "--in", work("in.h5"), "--out", work("one.h5"), "--quiet"});
  ASSERT_EQ(single.status, 0) << single.err;
  const auto many =
      run(ranks, {"attend", "--in", work("in.h5"), "--out", work("many.h5"), "--stats"});
  ASSERT_EQ(many.status, 0) << many.out << many.err;
  EXPECT_THAT(many.out, HasSubstr(fmt::format("{} rank(s)", ranks)));
  EXPECT_THAT(many.out, HasSubstr("gather_recv"));

  const H5File one = H5File::open_read(work("one.h5")), got = H5File::open_read(work("many.h5"));
  for (const char* name : {"o", "lse"}) expect_same_dataset(got, one, name);
  EXPECT_EQ(got.has_dataset("dq"), c.with_do);
  if (c.with_do) {
    for (const char* name : {"dq", "dk", "dv"}) expect_same_dataset(got, one, name);
  }
  EXPECT_EQ(got.read_attr_int64_array("segment_lengths"), c.w);
  // Only the inputs and the two outputs: no temporary file left behind.
  std::set<std::string> files;
  for (const auto& entry : fs::directory_iterator(root_ / "work")) {
    files.insert(entry.path().filename().string());
  }
  EXPECT_EQ(files, (std::set<std::string>{"in.h5", "one.h5", "many.h5"}));
}

INSTANTIATE_TEST_SUITE_P(Grid, AttendMpiTest,
                         ::testing::Combine(::testing::ValuesIn(kCases),
                                            ::testing::Values(1, 2, 3, 4, 8)),
                         [](const auto& param_info) {
                           return fmt::format("{}_np{}", std::get<0>(param_info.param).name,
                                              std::get<1>(param_info.param));
                         });

TEST_F(AttendMpiFixture, MoreRanksThanTokensIsRefusedOnceAndLeavesNothing) {
  const MpiCase tiny{"tiny", {1, 3, 2, 8}, {2}, {1}, false, "interleaved", false};
  write_input(work("in.h5"), tiny);
  const auto result = run(4, {"attend", "--in", work("in.h5"), "--out", work("out.h5")});
  EXPECT_EQ(result.status, 2) << result.err;
  EXPECT_THAT(result.err, HasSubstr("4 ranks for a sequence of 3 tokens"));
  EXPECT_THAT(result.err, HasSubstr("use at most 3 ranks"));
  EXPECT_FALSE(fs::exists(work("out.h5")));
  std::set<std::string> files;
  for (const auto& entry : fs::directory_iterator(root_ / "work")) {
    files.insert(entry.path().filename().string());
  }
  EXPECT_EQ(files, (std::set<std::string>{"in.h5"}));
}

// Ranks that read different inputs or options (mpirun's MPMD form gives each rank its
// own command line) must fail together, naming what differs, the ranks and the values:
// before, different N or patterns spun forever in mismatched collectives and different
// H or --out failed at write time with confusing messages.
TEST_F(AttendMpiFixture, RanksThatDisagreeFailNamingTheRanksAndTheValues) {
  const MpiCase base{"base", {1, 40, 2, 8}, {8, 16}, {1, 2}, true, "interleaved", false};
  MpiCase longer = base, other_patterns = base, more_heads = base;
  longer.shape[1] = 48;
  other_patterns.w = {8, 32};
  more_heads.shape[2] = 3;
  write_input(work("in.h5"), base);
  write_input(work("longer.h5"), longer);
  write_input(work("patterns.h5"), other_patterns);
  write_input(work("heads.h5"), more_heads);
  struct Case {
    const char* rank1_input;
    const char* rank1_output;
    std::string keyword;
  };
  for (const Case& c :
       {Case{"longer.h5", "out.h5", "ranks disagree on the shape"},
        Case{"patterns.h5", "out.h5", "ranks disagree on the configuration"},
        Case{"heads.h5", "out.h5", "rank 1 has 'B=1 N=40 H=3 D=8'"},
        Case{"in.h5", "elsewhere.h5", "rank 1 has '" + work("elsewhere.h5").string()}}) {
    SCOPED_TRACE(c.rank1_input);
    std::vector<std::string> argv{LONGNET_MPIEXEC, "-n", "1"};
    const std::string oversubscribe = LONGNET_MPIEXEC_OVERSUBSCRIBE;
    if (!oversubscribe.empty()) argv.push_back(oversubscribe);
    for (const std::string& part :
         {std::string(LONGNET_BINARY), std::string("attend"), std::string("--in"),
          work("in.h5").string(), std::string("--out"), work("out.h5").string(), std::string(":"),
          std::string("-n"), std::string("1"), std::string(LONGNET_BINARY), std::string("attend"),
          std::string("--in"), work(c.rank1_input).string(), std::string("--out"),
          work(c.rank1_output).string()}) {
      argv.push_back(part);
    }
    const auto result = test::run_process(argv, root_ / "logs");
    EXPECT_EQ(result.status, 2) << result.err;
    EXPECT_THAT(result.err, HasSubstr(c.keyword));
    EXPECT_THAT(result.err, HasSubstr("rank 0 has"));
    // Once (rank 0 reports an error every rank agreed on), whatever mpirun adds.
    const std::string error = "longnet attend: error: ";
    EXPECT_EQ(result.err.find(error), result.err.rfind(error)) << result.err;
    EXPECT_FALSE(fs::exists(work("out.h5")));
    EXPECT_FALSE(fs::exists(work("elsewhere.h5")));
  }
}

// Grouped-query attention is multi-head attention on per-query-head copies of k and v,
// with the copies' key gradients summed per kv head: `attend` on a grouped file and on its
// expanded twin agree (o, lse, dq equal; dk, dv the group sums), and a k whose heads do
// not divide q's is refused naming both shapes.
TEST_F(AttendMpiFixture, GroupedQueryEqualsMultiHeadOnCopiesOfTheKeys) {
  const MpiCase grouped = kCases[std::size(kCases) - 1];
  ASSERT_EQ(grouped.kv_heads, 2);
  write_input(work("grouped.h5"), grouped);
  const int64_t heads = grouped.shape[2], group = heads / grouped.kv_heads;
  {
    const H5File in = H5File::open_read(work("grouped.h5"));
    H5File expanded = H5File::create(work("expanded.h5"));
    for (const char* name : {"q", "do"}) expanded.write_tensor(name, in.read_tensor_f32(name));
    for (const char* name : {"k", "v"}) {
      const Tensor kv = in.read_tensor_f32(name);
      Tensor copies(grouped.shape, DType::float32);
      const int64_t rows = grouped.shape[0] * grouped.shape[1], d = grouped.shape[3];
      for (int64_t row = 0; row < rows; ++row)
        for (int64_t h = 0; h < heads; ++h)
          for (int64_t e = 0; e < d; ++e)
            copies.data<float>()[(row * heads + h) * d + e] =
                kv.data<float>()[(row * grouped.kv_heads + h / group) * d + e];
      expanded.write_tensor(name, copies);
    }
    expanded.write_attr_int64_array("segment_lengths", grouped.w);
    expanded.write_attr_int64_array("dilation_rates", grouped.r);
    expanded.write_attr_int64("causal", 1);
    expanded.write_attr_string("head_offsets", grouped.offsets);
    expanded.close();
  }
  for (const char* name : {"grouped", "expanded"}) {
    const auto r = run(0, {"attend", "--in", work(fmt::format("{}.h5", name).c_str()), "--out",
                           work(fmt::format("{}_out.h5", name).c_str()), "--quiet"});
    ASSERT_EQ(r.status, 0) << r.err;
  }
  const H5File got = H5File::open_read(work("grouped_out.h5"));
  const H5File want = H5File::open_read(work("expanded_out.h5"));
  for (const char* name : {"o", "lse", "dq"}) expect_same_dataset(got, want, name);
  for (const char* name : {"dk", "dv"}) {
    const Tensor g = got.read_tensor_f32(name), w = want.read_tensor_f32(name);
    ASSERT_EQ(g.shape(), key_shape(grouped)) << name;
    const int64_t rows = grouped.shape[0] * grouped.shape[1], d = grouped.shape[3];
    double diff2 = 0, ref2 = 0;
    for (int64_t row = 0; row < rows; ++row)
      for (int64_t kv = 0; kv < grouped.kv_heads; ++kv)
        for (int64_t e = 0; e < d; ++e) {
          double sum = 0;
          for (int64_t j = 0; j < group; ++j)
            sum += w.data<float>()[(row * heads + kv * group + j) * d + e];
          const double a = g.data<float>()[(row * grouped.kv_heads + kv) * d + e];
          diff2 += (a - sum) * (a - sum);
          ref2 += sum * sum;
        }
    EXPECT_LE(std::sqrt(diff2 / ref2), kTolerance) << name << ": against the summed copies";
  }

  MpiCase indivisible = grouped;
  indivisible.kv_heads = 4;  // 6 query heads
  write_input(work("indivisible.h5"), indivisible);
  const auto refused =
      run(0, {"attend", "--in", work("indivisible.h5"), "--out", work("never.h5")});
  EXPECT_EQ(refused.status, 2);
  EXPECT_THAT(refused.err, HasSubstr("dataset 'k' has shape [1, 300, 4, 8] but q has shape "
                                     "[1, 300, 6, 8]"));
  EXPECT_FALSE(fs::exists(work("never.h5")));
}

// Packed documents: `attend` on a file with document_lengths equals `attend` on each
// document alone, stitched together; bad lengths and mpirun are refused with the reason.
TEST_F(AttendMpiFixture, PackedDocumentsEqualEachDocumentAlone) {
  const Shape shape{1, 100, 2, 8};
  const std::vector<int64_t> w{16, 64}, r{1, 2}, lengths{30, 70};
  const char* names[] = {"q", "k", "v", "do"};
  std::vector<Tensor> inputs;
  for (unsigned i = 0; i < 4; ++i) inputs.push_back(random_tensor(shape, 10 + i));
  const auto write = [&](const fs::path& path, int64_t first, int64_t length,
                         const std::vector<int64_t>* documents) {
    H5File file = H5File::create(path);
    for (unsigned i = 0; i < 4; ++i) {
      Tensor part({1, length, shape[2], shape[3]}, DType::float32);
      const int64_t row = shape[2] * shape[3];
      std::copy_n(inputs[i].data<float>() + first * row, length * row, part.data<float>());
      file.write_tensor(names[i], part);
    }
    if (documents != nullptr) {
      file.write_matrix_i64("document_lengths",
                            {1, static_cast<int64_t>(documents->size()), *documents});
    }
    file.write_attr_int64_array("segment_lengths", w);
    file.write_attr_int64_array("dilation_rates", r);
    file.write_attr_int64("causal", 1);
    file.write_attr_string("head_offsets", "grouped");
    file.close();
  };
  write(work("packed.h5"), 0, 100, &lengths);
  write(work("doc0.h5"), 0, 30, nullptr);
  write(work("doc1.h5"), 30, 70, nullptr);
  for (const char* name : {"packed", "doc0", "doc1"}) {
    const auto result = run(0, {"attend", "--in", work(fmt::format("{}.h5", name).c_str()), "--out",
                                work(fmt::format("{}_out.h5", name).c_str()), "--quiet"});
    ASSERT_EQ(result.status, 0) << result.err;
  }
  const H5File packed = H5File::open_read(work("packed_out.h5"));
  const H5File doc0 = H5File::open_read(work("doc0_out.h5"));
  const H5File doc1 = H5File::open_read(work("doc1_out.h5"));
  for (const char* name : {"o", "lse", "dq", "dk", "dv"}) {
    const Tensor got = packed.read_tensor_f32(name);
    const Tensor first = doc0.read_tensor_f32(name), second = doc1.read_tensor_f32(name);
    ASSERT_EQ(got.numel(), first.numel() + second.numel()) << name;
    Tensor stitched(got.shape(), DType::float32);  // the documents' outputs, in order
    std::copy_n(first.data<float>(), first.numel(), stitched.data<float>());
    std::copy_n(second.data<float>(), second.numel(), stitched.data<float>() + first.numel());
    expect_close(got, stitched, name, "the documents alone");
  }

  const std::vector<int64_t> short_row{30, 60};
  write(work("short.h5"), 0, 100, &short_row);
  const auto refused = run(0, {"attend", "--in", work("short.h5"), "--out", work("never.h5")});
  EXPECT_EQ(refused.status, 2);
  EXPECT_THAT(refused.err, HasSubstr("document_lengths row 0 sums to 90"));
  const auto ranks = run(2, {"attend", "--in", work("packed.h5"), "--out", work("never.h5")});
  EXPECT_EQ(ranks.status, 2);
  EXPECT_THAT(ranks.err, HasSubstr("run on one rank for now"));
  EXPECT_FALSE(fs::exists(work("never.h5")));
}

}  // namespace
}  // namespace longnet
