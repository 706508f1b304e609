// `longnet attend`, run as the real binary (LONGNET_BINARY) the way a user runs it.
//
//  * Examples: the fixture files hold the outputs of a float64 brute-force evaluation
//    under /expected; every ISA this machine runs must match them (relative L2 1e-5,
//    the kernel tests' forward tolerance; lse = -inf and o = 0 exactly on uncovered rows).
//  * Round trips: files this test writes give the same outputs as a direct call of the
//    kernels through the library (the same code, so within 1e-6), gradients appear
//    exactly when `do` was given, and the output describes its configuration.
//  * Errors: every refusal exits 2 with one stderr line naming the problem, and leaves
//    no output and no temporary file behind.
#include "kernels/cpu/dilated_attention_cpu.hpp"
#include "runtime/hdf5_file.hpp"
#include "tests/support/run_process.hpp"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

namespace longnet {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr double kExpectedTolerance = 1e-5;  // against the float64 oracle
constexpr double kSameCodeTolerance = 1e-6;  // against the library called in-process
constexpr int kExitUsageOrInput = 2;

// ---- running the binary ---------------------------------------------------------------

using test::read_text;
using test::RunResult;

// Runs the binary with `args`; see tests/support/run_process.hpp.
RunResult run_longnet(const std::vector<std::string>& args, const fs::path& logs) {
  std::vector<std::string> argv{LONGNET_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  return test::run_process(argv, logs);
}

// A fresh directory tree per test: work/ holds the files under test, logs/ the output.
class AttendCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = fmt::format("{}_{}", info->test_suite_name(), info->name());
    for (char& c : name) {
      if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    }
    root_ = fs::temp_directory_path() / fmt::format("longnet_test_attend_{}_{}", ::getpid(), name);
    fs::remove_all(root_);
    fs::create_directories(work());
    fs::create_directories(logs());
  }
  void TearDown() override { fs::remove_all(root_); }

  fs::path work() const { return root_ / "work"; }
  fs::path logs() const { return root_ / "logs"; }
  RunResult run(const std::vector<std::string>& args) const { return run_longnet(args, logs()); }

  fs::path root_;
};

std::set<std::string> directory_listing(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    names.insert(entry.path().filename().string());
  }
  return names;
}

// ---- comparing outputs ----------------------------------------------------------------

// ||got - want|| / ||want|| over the finite entries of `want`; entries where `want` is
// infinite must be equal in `got` (a NaN anywhere makes the result NaN, which fails).
struct Comparison {
  double relative_l2 = 0;
  int64_t infinity_mismatches = 0;
};

Comparison compare(const Tensor& got, const Tensor& want) {
  Comparison c;
  double diff = 0, norm = 0;
  const auto g = got.span<float>();
  const auto w = want.span<float>();
  for (std::size_t i = 0; i < w.size(); ++i) {
    if (!std::isfinite(w[i])) {
      c.infinity_mismatches += g[i] != w[i];
      continue;
    }
    const double d = static_cast<double>(g[i]) - w[i];
    diff += d * d;
    norm += static_cast<double>(w[i]) * w[i];
  }
  c.relative_l2 = norm > 0 ? std::sqrt(diff / norm) : std::sqrt(diff);
  return c;
}

void expect_close(const Tensor& got, const Tensor& want, double tolerance,
                  const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  const Comparison c = compare(got, want);
  EXPECT_LE(c.relative_l2, tolerance) << what << ": relative L2 error";
  EXPECT_EQ(c.infinity_mismatches, 0)
      << what << ": entries where one is infinite and the other not";
}

// On every row whose lse is -inf (no pattern selects it) o must be exactly 0.
int64_t uncovered_rows_with_nonzero_o(const Tensor& o, const Tensor& lse) {
  const int64_t d = o.dim(3);
  const float* o_data = o.data<float>();
  int64_t bad = 0;
  for (int64_t row = 0; row < lse.numel(); ++row) {
    if (lse.data<float>()[row] != -std::numeric_limits<float>::infinity()) continue;
    for (int64_t j = 0; j < d; ++j) bad += o_data[row * d + j] != 0.0f ? 1 : 0;
  }
  return bad;
}

// ---- examples: the fixture files against their float64 oracle --------------------------

const char* const kExampleFiles[] = {
    "example_causal_interleaved_w8-16_r1-2_N40_B1_H3_D8_grad.h5",
    "example_noncausal_grouped_w64-128-512_r1-2-4_N300_B2_H5_D16_grad.h5",
    "example_causal_grouped_w32-96_r2-3_N200_B1_H4_D32.h5",
};

class AttendExampleTest : public AttendCliTest,
                          public ::testing::WithParamInterface<std::tuple<const char*, CpuIsa>> {};

TEST_P(AttendExampleTest, MatchesTheFloat64Oracle) {
  const auto [file_name, isa] = GetParam();
  if (!cpu_isa_available(isa)) GTEST_SKIP() << cpu_isa_name(isa) << " cannot run here";
  const fs::path input = fs::path(LONGNET_TEST_FIXTURES) / file_name;
  const fs::path output = work() / "out.h5";

  const RunResult r = run({"attend", "--in", input.string(), "--out", output.string(), "--isa",
                           std::string(cpu_isa_name(isa)), "--quiet"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "");

  const H5File expected = H5File::open_read(input);
  const H5File got = H5File::open_read(output);
  const Tensor o = got.read_tensor_f32("o");
  const Tensor lse = got.read_tensor_f32("lse");
  expect_close(o, expected.read_tensor_f32("expected/o"), kExpectedTolerance, "o");
  expect_close(lse, expected.read_tensor_f32("expected/lse"), kExpectedTolerance, "lse");
  EXPECT_EQ(uncovered_rows_with_nonzero_o(o, lse), 0);

  const bool with_gradients = expected.has_dataset("do");
  for (const char* name : {"dq", "dk", "dv"}) {
    EXPECT_EQ(got.has_dataset(name), with_gradients) << name;
    if (with_gradients && got.has_dataset(name)) {
      expect_close(got.read_tensor_f32(name),
                   expected.read_tensor_f32(fmt::format("expected/{}", name)), kExpectedTolerance,
                   name);
    }
  }
  EXPECT_EQ(got.read_attr_string("backend"), fmt::format("cpu-{}", cpu_isa_name(isa)));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, AttendExampleTest,
                         ::testing::Combine(::testing::ValuesIn(kExampleFiles),
                                            ::testing::Values(CpuIsa::generic, CpuIsa::avx2,
                                                              CpuIsa::avx512)),
                         [](const ::testing::TestParamInfo<AttendExampleTest::ParamType>& param) {
                           std::string name = fs::path(std::get<0>(param.param)).stem().string();
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return fmt::format("{}_{}", name,
                                              cpu_isa_name(std::get<1>(param.param)));
                         });

// ---- round trips through files this test writes ------------------------------------------

Tensor random_tensor(const Shape& shape, unsigned seed) {
  Tensor t(shape, DType::float32);
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  for (float& x : t.span<float>()) x = normal(rng);
  return t;
}

struct Problem {
  Shape shape;  // [B, N, H, D]; awkward sizes, not powers of two
  std::vector<int64_t> segment_lengths, dilation_rates;
  bool causal = false;
  HeadOffsets head_offsets = HeadOffsets::interleaved;
  std::optional<double> scale = std::nullopt;
  bool with_do = false;
};

struct ProblemTensors {
  DilatedAttentionConfig config;
  Tensor q, k, v, dout;
};

ProblemTensors write_problem(const fs::path& path, const Problem& p) {
  ProblemTensors t{DilatedAttentionConfig::from_lists(p.segment_lengths, p.dilation_rates, p.causal,
                                                      p.head_offsets, p.scale),
                   random_tensor(p.shape, 1), random_tensor(p.shape, 2), random_tensor(p.shape, 3),
                   p.with_do ? random_tensor(p.shape, 4) : Tensor()};
  H5File file = H5File::create(path);
  file.write_tensor("q", t.q);
  file.write_tensor("k", t.k);
  file.write_tensor("v", t.v);
  if (p.with_do) file.write_tensor("do", t.dout);
  file.write_attr_int64_array("segment_lengths", p.segment_lengths);
  file.write_attr_int64_array("dilation_rates", p.dilation_rates);
  file.write_attr_int64("causal", p.causal ? 1 : 0);
  file.write_attr_string("head_offsets", head_offsets_name(p.head_offsets));
  if (p.scale) file.write_attr_double("scale", *p.scale);
  file.close();
  return t;
}

TEST_F(AttendCliTest, ForwardOnlyMatchesTheLibraryAndWritesNoGradients) {
  const Problem problem{.shape = {2, 97, 3, 20},
                        .segment_lengths = {16, 40},
                        .dilation_rates = {1, 3},
                        .causal = true,
                        .head_offsets = HeadOffsets::grouped};
  const ProblemTensors t = write_problem(work() / "in.h5", problem);
  const fs::path output = work() / "out.h5";
  std::ofstream(output) << "an older output, to be replaced whole";
  const CpuIsa isa = default_cpu_isa();

  const RunResult r = run({"attend", "--in", (work() / "in.h5").string(), "--out", output.string(),
                           "--isa", std::string(cpu_isa_name(isa)), "--threads", "2"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_THAT(r.out, HasSubstr("B=2 N=97 H=3 D=20"));
  EXPECT_THAT(r.out, HasSubstr(t.config.describe()));
  EXPECT_THAT(r.out, HasSubstr("forward"));
  EXPECT_THAT(r.out, HasSubstr("GFLOP/s"));
  EXPECT_THAT(r.out, Not(HasSubstr("backward")));

  auto kernels = make_cpu_dilated_attention(isa);
  const AttentionOutputs direct = run_forward(*kernels, t.config, t.q, t.k, t.v);
  const H5File got = H5File::open_read(output);
  EXPECT_EQ(got.dataset_shape("o"), (Shape{2, 97, 3, 20}));
  EXPECT_EQ(got.dataset_shape("lse"), (Shape{2, 97, 3}));
  expect_close(got.read_tensor_f32("o"), direct.o, kSameCodeTolerance, "o");
  expect_close(got.read_tensor_f32("lse"), direct.lse, kSameCodeTolerance, "lse");
  for (const char* name : {"dq", "dk", "dv"}) EXPECT_FALSE(got.has_dataset(name)) << name;

  EXPECT_EQ(got.read_attr_int64_array("segment_lengths"), problem.segment_lengths);
  EXPECT_EQ(got.read_attr_int64_array("dilation_rates"), problem.dilation_rates);
  EXPECT_EQ(got.read_attr_int64("causal"), 1);
  EXPECT_EQ(got.read_attr_string("head_offsets"), "grouped");
  EXPECT_FALSE(got.has_attribute("scale"));
  EXPECT_EQ(got.read_attr_string("backend"), kernels->name());
  EXPECT_EQ(directory_listing(work()), (std::set<std::string>{"in.h5", "out.h5"}));
}

TEST_F(AttendCliTest, GradientsAreWrittenExactlyWhenDoIsGiven) {
  const Problem problem{.shape = {1, 83, 5, 24},
                        .segment_lengths = {12, 30, 64},
                        .dilation_rates = {1, 2, 4},
                        .causal = false,
                        .head_offsets = HeadOffsets::interleaved,
                        .scale = 0.3,
                        .with_do = true};
  const ProblemTensors t = write_problem(work() / "in.h5", problem);
  const fs::path output = work() / "out.h5";
  const CpuIsa isa = default_cpu_isa();

  const RunResult r = run({"attend", "--in", (work() / "in.h5").string(), "--out", output.string(),
                           "--isa", std::string(cpu_isa_name(isa))});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("backward"));
  EXPECT_THAT(r.out, HasSubstr("wrote o, lse, dq, dk, dv"));

  auto kernels = make_cpu_dilated_attention(isa);
  const AttentionOutputs direct = run_forward(*kernels, t.config, t.q, t.k, t.v);
  const AttentionGradients grads = run_backward(*kernels, t.config, t.q, t.k, t.v, direct, t.dout);
  const H5File got = H5File::open_read(output);
  expect_close(got.read_tensor_f32("o"), direct.o, kSameCodeTolerance, "o");
  expect_close(got.read_tensor_f32("lse"), direct.lse, kSameCodeTolerance, "lse");
  expect_close(got.read_tensor_f32("dq"), grads.dq, kSameCodeTolerance, "dq");
  expect_close(got.read_tensor_f32("dk"), grads.dk, kSameCodeTolerance, "dk");
  expect_close(got.read_tensor_f32("dv"), grads.dv, kSameCodeTolerance, "dv");
  EXPECT_EQ(got.read_attr_double("scale"), 0.3);
  EXPECT_EQ(got.read_attr_string("head_offsets"), "interleaved");
}

TEST_F(AttendCliTest, QuietPrintsNothing) {
  write_problem(work() / "in.h5",
                Problem{.shape = {1, 10, 2, 4}, .segment_lengths = {4}, .dilation_rates = {2}});
  const RunResult r = run({"attend", "--in", (work() / "in.h5").string(), "--out",
                           (work() / "out.h5").string(), "--quiet"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "");
  EXPECT_TRUE(fs::exists(work() / "out.h5"));
}

// ---- refusals ---------------------------------------------------------------------------

// A valid small input, less what `omit` names, then changed by `edit`.
struct InputSpec {
  std::set<std::string> omit;
  std::function<void(H5File&)> edit;
};

const Shape kSmallShape{1, 24, 2, 8};

fs::path write_input(const fs::path& path, const InputSpec& spec) {
  H5File file = H5File::create(path);
  const auto keep = [&](const char* name) { return !spec.omit.contains(name); };
  for (const char* name : {"q", "k", "v"}) {
    if (keep(name)) file.write_tensor(name, random_tensor(kSmallShape, 7));
  }
  if (keep("segment_lengths")) {
    file.write_attr_int64_array("segment_lengths", std::vector<int64_t>{8, 16});
  }
  if (keep("dilation_rates")) {
    file.write_attr_int64_array("dilation_rates", std::vector<int64_t>{1, 2});
  }
  if (keep("causal")) file.write_attr_int64("causal", 1);
  if (keep("head_offsets")) file.write_attr_string("head_offsets", "interleaved");
  if (spec.edit) spec.edit(file);
  file.close();
  return path;
}

struct ErrorCase {
  std::string name;
  // Creates the input in the work directory and returns the --in value ("" omits --in).
  std::function<fs::path(const fs::path& work)> make_input;
  std::string keyword;                       // stderr must contain it
  std::vector<std::string> extra_args = {};  // e.g. a bad --isa
  std::string output = "out.h5";             // --out, relative to the work directory
};

void PrintTo(const ErrorCase& c, std::ostream* os) { *os << c.name; }

std::function<fs::path(const fs::path&)> from_spec(InputSpec spec) {
  return [spec](const fs::path& work) { return write_input(work / "in.h5", spec); };
}
std::function<fs::path(const fs::path&)> edited(std::function<void(H5File&)> edit) {
  return from_spec({{}, std::move(edit)});
}
std::function<fs::path(const fs::path&)> without(std::string name) {
  return from_spec({{std::move(name)}, {}});
}

class AttendErrorTest : public AttendCliTest, public ::testing::WithParamInterface<ErrorCase> {};

TEST_P(AttendErrorTest, ExitsTwoWithOneLineAndLeavesNoFiles) {
  const ErrorCase& c = GetParam();
  const fs::path in = c.make_input(work());
  const fs::path out = work() / c.output;
  const bool output_existed = fs::exists(out);
  const std::set<std::string> before = directory_listing(work());

  std::vector<std::string> args{"attend", "--out", out.string()};
  if (!in.empty()) args.insert(args.end(), {"--in", in.string()});
  args.insert(args.end(), c.extra_args.begin(), c.extra_args.end());
  const RunResult r = run(args);

  EXPECT_EQ(r.status, kExitUsageOrInput);
  EXPECT_THAT(r.err, StartsWith("longnet attend: error: "));
  EXPECT_THAT(r.err, HasSubstr(c.keyword));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(r.out, "");
  if (!output_existed) {
    EXPECT_FALSE(fs::exists(out));
  }
  EXPECT_EQ(directory_listing(work()), before) << "a temporary or partial file was left behind";
}

Tensor zeros_f64(const Shape& shape) { return Tensor::zeros(shape, DType::float64); }

const ErrorCase kErrorCases[] = {
    {"MissingQ", without("q"), "no dataset 'q'"},
    {"MissingV", without("v"), "no dataset 'v'"},
    {"QOfRank3", edited([](H5File& f) {
       f.write_tensor("q", random_tensor({24, 2, 8}, 1));
     }),
     "has shape [24, 2, 8] (rank 3), expected rank 4"},
    {"KIsFloat64", edited([](H5File& f) { f.write_tensor("k", zeros_f64(kSmallShape)); }),
     "dataset 'k' holds float64, expected float32"},
    {"QIsFloat64", edited([](H5File& f) { f.write_tensor("q", zeros_f64(kSmallShape)); }),
     "dataset 'q' holds float64, expected float32"},
    {"KShapeDiffersFromQ", edited([](H5File& f) {
       f.write_tensor("k", random_tensor({1, 23, 2, 8}, 1));
     }),
     "dataset 'k' has shape [1, 23, 2, 8] but q has shape [1, 24, 2, 8]"},
    {"DoShapeDiffersFromQ", edited([](H5File& f) {
       f.write_tensor("do", random_tensor({1, 24, 2, 4}, 1));
     }),
     "dataset 'do' has shape [1, 24, 2, 4] but q has shape"},
    {"NoTokens", edited([](H5File& f) {
       for (const char* n : {"q", "k", "v"}) {
         f.write_tensor(n, Tensor(Shape{1, 0, 2, 8}, DType::float32));
       }
     }),
     "non-positive size"},
    {"MissingSegmentLengths", without("segment_lengths"),
     "missing root attribute 'segment_lengths'"},
    {"MissingDilationRates", without("dilation_rates"), "missing root attribute 'dilation_rates'"},
    {"MissingCausal", without("causal"), "missing root attribute 'causal'"},
    {"MissingHeadOffsets", without("head_offsets"), "missing root attribute 'head_offsets'"},
    {"UnknownHeadOffsets",
     edited([](H5File& f) { f.write_attr_string("head_offsets", "striped"); }),
     "unknown head-offset scheme 'striped'"},
    {"HeadOffsetsNotAString", edited([](H5File& f) { f.write_attr_int64("head_offsets", 1); }),
     "'head_offsets' holds int64, expected a string"},
    {"MismatchedListLengths", edited([](H5File& f) {
       f.write_attr_int64_array("dilation_rates", std::vector<int64_t>{1, 2, 4});
     }),
     "segment_lengths has 2 entries but dilation_rates has 3"},
    {"RateExceedsSegment", edited([](H5File& f) {
       f.write_attr_int64_array("segment_lengths", std::vector<int64_t>{8});
       f.write_attr_int64_array("dilation_rates", std::vector<int64_t>{16});
     }),
     "dilation rate 16 exceeds segment length 8"},
    {"NoPatterns", edited([](H5File& f) {
       f.write_attr_int64_array("segment_lengths", std::vector<int64_t>{});
       f.write_attr_int64_array("dilation_rates", std::vector<int64_t>{});
     }),
     "no patterns"},
    {"SegmentLengthsAreReals",
     edited([](H5File& f) { f.write_attr_double("segment_lengths", 8.0); }),
     "'segment_lengths' holds float64, expected integers"},
    {"CausalIsTwo", edited([](H5File& f) { f.write_attr_int64("causal", 2); }),
     "'causal' is 2, expected 0 or 1"},
    {"NegativeScale", edited([](H5File& f) { f.write_attr_double("scale", -1.0); }),
     "softmax scale -1 must be finite and positive"},
    {"ScaleIsAString", edited([](H5File& f) { f.write_attr_string("scale", "0.5"); }),
     "'scale' holds string, expected a number"},
    {"InputMissing", [](const fs::path& w) { return w / "absent.h5"; }, "no such file"},
    {"InputIsADirectory",
     [](const fs::path& w) {
       fs::create_directory(w / "dir.h5");
       return w / "dir.h5";
     },
     "is a directory"},
    {"InputIsNotHdf5",
     [](const fs::path& w) {
       std::ofstream(w / "in.h5") << "q,k,v\n1,2,3\n";
       return w / "in.h5";
     },
     "is not an HDF5 file"},
    {"OutputDirectoryMissing", from_spec({}), "output directory", {}, "missing/out.h5"},
    {"OutputIsADirectory",
     [](const fs::path& w) {
       fs::create_directory(w / "out_dir");
       return write_input(w / "in.h5", {});
     },
     "is a directory; --out must name a file",
     {},
     "out_dir"},
    {"UnknownIsa", from_spec({}), "unknown CPU instruction set 'avx9'", {"--isa", "avx9"}},
    {"ZeroThreads", from_spec({}), "--threads", {"--threads", "0"}},
    {"UnknownDevice", from_spec({}), "--device tpu: use cpu or cuda", {"--device", "tpu"}},
    {"UnknownDtype", from_spec({}), "unknown dtype 'int8'", {"--dtype", "int8"}},
    {"HalfPrecisionOnTheCpu",
     from_spec({}),
     "--dtype bf16 needs --device cuda",
     {"--dtype", "bf16"}},
    {"InOptionMissing", [](const fs::path&) { return fs::path(); }, "--in is required"},
};

INSTANTIATE_TEST_SUITE_P(Refusals, AttendErrorTest, ::testing::ValuesIn(kErrorCases),
                         [](const ::testing::TestParamInfo<ErrorCase>& param) {
                           return param.param.name;
                         });

TEST_F(AttendCliTest, UnreadableInputIsRefused) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads files whatever their permissions";
  const fs::path in = write_input(work() / "in.h5", {});
  fs::permissions(in, fs::perms::none);
  const RunResult r = run({"attend", "--in", in.string(), "--out", (work() / "out.h5").string()});
  fs::permissions(in, fs::perms::owner_all);
  EXPECT_EQ(r.status, kExitUsageOrInput);
  EXPECT_THAT(r.err, HasSubstr("cannot read"));
  EXPECT_THAT(r.err, HasSubstr("Permission denied"));
  EXPECT_FALSE(fs::exists(work() / "out.h5"));
}

TEST_F(AttendCliTest, UnwritableOutputDirectoryLeavesNothing) {
  if (::geteuid() == 0) GTEST_SKIP() << "root writes anywhere whatever the permissions";
  const fs::path in = write_input(work() / "in.h5", {});
  fs::create_directory(work() / "locked");
  fs::permissions(work() / "locked", fs::perms::owner_read | fs::perms::owner_exec);
  const RunResult r =
      run({"attend", "--in", in.string(), "--out", (work() / "locked" / "out.h5").string()});
  fs::permissions(work() / "locked", fs::perms::owner_all);
  EXPECT_EQ(r.status, kExitUsageOrInput);
  EXPECT_THAT(r.err, HasSubstr("cannot create"));
  EXPECT_TRUE(fs::is_empty(work() / "locked"));
}

TEST_F(AttendCliTest, FailedRunLeavesAnExistingOutputUntouched) {
  const fs::path in = write_input(work() / "in.h5", {{"k"}, {}});
  const fs::path out = work() / "out.h5";
  std::ofstream(out) << "the previous result";
  const RunResult r = run({"attend", "--in", in.string(), "--out", out.string()});
  EXPECT_EQ(r.status, kExitUsageOrInput);
  EXPECT_EQ(read_text(out), "the previous result");
  EXPECT_EQ(directory_listing(work()), (std::set<std::string>{"in.h5", "out.h5"}));
}

TEST_F(AttendCliTest, NoSubcommandIsAUsageError) {
  const RunResult r = run({});
  EXPECT_EQ(r.status, kExitUsageOrInput);
  EXPECT_THAT(r.err, StartsWith("longnet: error: "));
  EXPECT_THAT(r.err, HasSubstr("subcommand"));
}

}  // namespace
}  // namespace longnet
