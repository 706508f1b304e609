// `longnet bench ...` and `longnet info`, run as the real binary under mpirun the way a
// user runs them: exit statuses, the tables' CSV and JSON twins, and the figures that
// follow from the algorithm alone (bytes moved, rows present, efficiency at one rank).
// Times are only checked to be positive: speed lives in the benchmarks, not in tests.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/device_memory.hpp"
#include "tests/support/run_process.hpp"

namespace longnet {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

// One CSV file as rows of named cells (the benchmarks quote no cell: lists are
// space-separated).
using CsvRow = std::map<std::string, std::string>;

std::vector<CsvRow> read_csv(const fs::path& path) {
  std::vector<std::vector<std::string>> lines;
  std::string text = test::read_text(path), line;
  std::stringstream in(text);
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::stringstream cells_in(line);
    std::string cell;
    while (std::getline(cells_in, cell, ',')) cells.push_back(cell);
    if (!line.empty() && line.back() == ',') cells.emplace_back();
    lines.push_back(cells);
  }
  std::vector<CsvRow> rows;
  if (lines.empty()) return rows;
  for (std::size_t r = 1; r < lines.size(); ++r) {
    EXPECT_EQ(lines[r].size(), lines[0].size()) << path << " line " << r + 1;
    CsvRow row;
    for (std::size_t c = 0; c < lines[0].size() && c < lines[r].size(); ++c)
      row[lines[0][c]] = lines[r][c];
    rows.push_back(row);
  }
  return rows;
}

double number(const CsvRow& row, const std::string& column) {
  const auto it = row.find(column);
  EXPECT_NE(it, row.end()) << "no column " << column;
  return it == row.end() ? 0.0 : std::stod(it->second);
}

// The CPUs this process may run on: a group of more single-threaded ranks than that is
// oversubscribed (the benchmark's own rule, with the mpirun ranks inheriting this mask).
int usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  return sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
}

class BenchCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    setenv("OMP_NUM_THREADS", "1", 1);
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    for (char& ch : name) ch = std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
    root_ = fs::temp_directory_path() / fmt::format("longnet_test_bench_{}_{}", ::getpid(), name);
    fs::remove_all(root_);
    fs::create_directories(root_ / "logs");
  }
  void TearDown() override { fs::remove_all(root_); }

  // ranks 0: the binary alone; else under mpiexec -n ranks.
  test::RunResult run(int ranks, const std::vector<std::string>& args) const {
    std::vector<std::string> argv;
    if (ranks > 0) {
      argv = {LONGNET_MPIEXEC, "-n", std::to_string(ranks)};
      if (std::string(LONGNET_MPIEXEC_OVERSUBSCRIBE).size() > 0)
        argv.push_back(LONGNET_MPIEXEC_OVERSUBSCRIBE);
    }
    argv.push_back(LONGNET_BINARY);
    argv.insert(argv.end(), args.begin(), args.end());
    return test::run_process(argv, root_ / "logs");
  }
  fs::path file(const char* name) const { return root_ / name; }

  // A JSON twin must load with a real parser (Debian's python3, which setup.sh installs
  // with python3-h5py): no bare inf or nan, no trailing commas.
  void expect_valid_json(const fs::path& path) const {
    const auto result = test::run_process(
        {"/usr/bin/python3", "-c", "import json, sys; json.load(open(sys.argv[1]))", path},
        root_ / "logs");
    EXPECT_EQ(result.status, 0) << path << ": " << result.err;
  }

  fs::path root_;
};

TEST_F(BenchCliTest, ScalingMeasuresEveryModeKindAndRankCountWithExactBytes) {
  constexpr int64_t kTokensPerRank = 256, kStrongTokens = 512, kHeads = 2, kHeadDim = 16;
  const auto result = run(2, {"bench",
                              "scaling",
                              "--tokens-per-rank",
                              std::to_string(kTokensPerRank),
                              "--tokens",
                              std::to_string(kStrongTokens),
                              "--segments",
                              "64,256",
                              "--rates",
                              "1,2",
                              "--heads",
                              std::to_string(kHeads),
                              "--head-dim",
                              std::to_string(kHeadDim),
                              "--repeats",
                              "1",
                              "--warmup",
                              "0",
                              "--csv",
                              file("s.csv"),
                              "--json",
                              file("s.json")});
  ASSERT_EQ(result.status, 0) << result.out << result.err;
  EXPECT_THAT(result.out, HasSubstr("# longnet bench scaling"));
  const std::vector<CsvRow> rows = read_csv(file("s.csv"));
  // 2 modes x 2 kinds x 2 rank counts x 2 directions.
  ASSERT_EQ(rows.size(), 16u);
  std::map<std::string, double> one_rank_rate;  // by mode, attention, direction
  for (const CsvRow& row : rows)
    if (row.at("ranks") == "1")
      one_rank_rate[row.at("mode") + row.at("attention") + row.at("direction")] =
          number(row, "tokens_per_s");
  for (const CsvRow& row : rows) {
    const auto p = static_cast<int64_t>(number(row, "ranks"));
    const bool weak = row.at("mode") == "weak", dense = row.at("attention") == "dense";
    const bool backward = row.at("direction") == "bwd";
    const int64_t n = weak ? p * kTokensPerRank : kStrongTokens;
    SCOPED_TRACE(
        fmt::format("{} {} {} p={}", row.at("mode"), row.at("attention"), row.at("direction"), p));
    EXPECT_EQ(number(row, "tokens"), static_cast<double>(n));
    EXPECT_EQ(row.at("segments"), dense ? std::to_string(n) : "64 256");
    EXPECT_EQ(row.at("checked"), "1");
    EXPECT_LE(number(row, "check_error"), 1e-5);
    EXPECT_GT(number(row, "time_ms"), 0.0);
    // tokens/s = B N / time (B = 1), within the rounding of the printed time.
    const double rate = static_cast<double>(n) / (number(row, "time_ms") / 1e3);
    EXPECT_NEAR(number(row, "tokens_per_s"), rate, 1e-3 * rate);
    // efficiency = tokens/s / (p x tokens/s at one rank), to the printed precision.
    const double expected_efficiency =
        number(row, "tokens_per_s") /
        (static_cast<double>(p) *
         one_rank_rate.at(row.at("mode") + row.at("attention") + row.at("direction")));
    EXPECT_NEAR(number(row, "efficiency"), expected_efficiency, 1e-3);
    EXPECT_EQ(number(row, "oversubscribed"), p > usable_cpus() ? 1.0 : 0.0);
    if (p == 1) {
      EXPECT_EQ(number(row, "sent_bytes_per_rank"), 0.0);
      EXPECT_EQ(number(row, "recv_bytes_per_rank"), 0.0);
      EXPECT_EQ(number(row, "collectives_per_rank"), 0.0);
    }
    if (p == 2 && dense) {
      // One segment spans both ranks: each receives the other's half of k and v
      // (float32), and in the backward also reduce-scatters dk and dv of its own half.
      const auto half_kv = static_cast<double>(2 * (n / 2) * kHeads * kHeadDim * 4);
      EXPECT_EQ(number(row, "recv_bytes_per_rank"), backward ? 2 * half_kv : half_kv);
      // Each sends its own half once per gather (and receives the partner's gradient
      // sums of it in the reduce-scatter): the same volume as it receives.
      EXPECT_EQ(number(row, "sent_bytes_per_rank"), backward ? 2 * half_kv : half_kv);
      // k and v travel packed in one all-gather (dk and dv in one reduce-scatter).
      EXPECT_EQ(number(row, "collectives_per_rank"), backward ? 2.0 : 1.0);
    }
    if (p == 2 && !dense && !weak) {
      // Strong, N = 512 on two shards of 256: no segment of w = 64 or 256 spans both.
      EXPECT_EQ(number(row, "recv_bytes_per_rank"), 0.0);
    }
  }
  const std::string json = test::read_text(file("s.json"));
  EXPECT_THAT(json, HasSubstr("\"benchmark\": \"longnet bench scaling\""));
  EXPECT_THAT(json, HasSubstr("\"segments\": \"64 256\""));
  EXPECT_THAT(json, HasSubstr("\"segments\": \"512\""));  // dense, strong: a list of one
  std::size_t objects = 0;
  for (std::size_t at = json.find("{\"mode\""); at != std::string::npos;
       at = json.find("{\"mode\"", at + 1))
    ++objects;
  EXPECT_EQ(objects, rows.size());
  expect_valid_json(file("s.json"));

  // The cost model on these measurements, with a given link (a fit would depend on the
  // machine's load): its bytes, calls and FLOPs come from the same formulas as the
  // counters', so every multi-rank row must match exactly, and the command succeed.
  const auto model = run(0, {"bench", "model", "--validate", file("s.csv"), "--bandwidth", "5",
                             "--latency", "1", "--csv", file("v.csv"), "--json", file("v.json")});
  ASSERT_EQ(model.status, 0) << model.out << model.err;
  const auto validated = read_csv(file("v.csv"));
  EXPECT_EQ(validated.size(), 8u);  // the rows with p = 2
  for (const CsvRow& row : validated) EXPECT_EQ(row.at("match"), "yes");
  expect_valid_json(file("v.json"));
}

TEST_F(BenchCliTest, ModelSweepsFromOneRankUpToTheLargestLength) {
  const auto result = run(0, {"bench", "model", "--max-tokens", "65536", "--csv", file("m.csv"),
                              "--json", file("m.json")});
  ASSERT_EQ(result.status, 0) << result.out << result.err;
  const auto rows = read_csv(file("m.csv"));
  ASSERT_EQ(rows.size(), 8u);  // N = 8192 .. 65536 by 2, dilated and dense
  EXPECT_EQ(rows.front().at("N"), "8192");
  EXPECT_EQ(rows.back().at("N"), "65536");
  for (const CsvRow& row : rows) {
    // P = ceil(N / 8192): the default tokens per rank.
    EXPECT_EQ(number(row, "P"), std::ceil(number(row, "N") / 8192));
    EXPECT_GT(number(row, "fwd_ms"), 0.0);
  }
  expect_valid_json(file("m.json"));
}

TEST_F(BenchCliTest, ScalingRefusesMoreRanksThanTheJobHas) {
  const auto result = run(2, {"bench", "scaling", "--ranks", "1,3", "--tokens-per-rank", "128"});
  EXPECT_EQ(result.status, 2) << result.out << result.err;
  EXPECT_THAT(result.err, HasSubstr("--ranks 1,3"));
  EXPECT_THAT(result.err, HasSubstr("mpirun -np 3"));
}

TEST_F(BenchCliTest, SpAttentionPrintsOneRowPerRank) {
  const auto result = run(2, {"bench",         "sp-attention",
                              "--tokens",      "512",
                              "--segments",    "128,512",
                              "--rates",       "1,2",
                              "--heads",       "2",
                              "--head-dim",    "16",
                              "--repeats",     "1",
                              "--warmup",      "0",
                              "--csv",         file("sp.csv"),
                              "--json",        file("sp.json"),
                              "--traffic-csv", file("t.csv")});
  ASSERT_EQ(result.status, 0) << result.out << result.err;
  const auto rows = read_csv(file("sp.csv"));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].at("rank"), "0");
  EXPECT_EQ(rows[1].at("rank"), "1");
  EXPECT_GT(number(rows[1], "fwd_bytes_received"), 0.0);  // w = 512 spans both shards
  // Per rank and pattern; the sums over patterns are the rank's row.
  const auto traffic = read_csv(file("t.csv"));
  ASSERT_EQ(traffic.size(), 4u);
  for (int r = 0; r < 2; ++r) {
    double received = 0;
    for (const CsvRow& row : traffic)
      if (row.at("rank") == std::to_string(r)) received += number(row, "fwd_gather_received");
    EXPECT_EQ(received, number(rows[static_cast<std::size_t>(r)], "fwd_bytes_received"));
  }
  EXPECT_THAT(test::read_text(file("sp.json")),
              HasSubstr("\"benchmark\": \"longnet bench sp-attention\""));
  expect_valid_json(file("sp.json"));
}

TEST_F(BenchCliTest, CommChecksEveryElementAndWritesBothFiles) {
  const auto result =
      run(2, {"bench", "comm", "--op", "all", "--uneven", "--min-bytes", "64", "--max-bytes", "4K",
              "--iters", "2", "--warmup", "1", "--csv", file("c.csv"), "--json", file("c.json")});
  ASSERT_EQ(result.status, 0) << result.out << result.err;
  const auto rows = read_csv(file("c.csv"));
  ASSERT_FALSE(rows.empty());
  for (const CsvRow& row : rows) EXPECT_EQ(row.at("wrong"), "0") << row.at("op");
  EXPECT_THAT(test::read_text(file("c.json")), HasSubstr("\"benchmark\": \"longnet bench comm\""));
  expect_valid_json(file("c.json"));
}

// An output that cannot be written is refused at parsing, before any measurement (whose
// table header would be on stdout), naming the path: exit 2.
TEST_F(BenchCliTest, OutputsIntoAMissingDirectoryAreRefusedBeforeMeasuring) {
  const std::string missing = (root_ / "no such dir" / "c.csv").string();
  const auto comm = run(2, {"bench", "comm", "--min-bytes", "64", "--max-bytes", "4K", "--iters",
                            "1", "--csv", missing});
  EXPECT_EQ(comm.status, 2) << comm.out << comm.err;
  EXPECT_THAT(comm.err, HasSubstr(missing));
  EXPECT_THAT(comm.err, HasSubstr("does not exist"));
  EXPECT_THAT(comm.out, Not(HasSubstr("# longnet bench comm")));

  const std::string json = (root_ / "absent" / "a.json").string();
  const auto attention = run(0, {"bench", "attention", "--tokens", "512", "--segments", "128",
                                 "--rates", "1", "--repeats", "1", "--json", json});
  EXPECT_EQ(attention.status, 2) << attention.out << attention.err;
  EXPECT_THAT(attention.err, HasSubstr(json));
  EXPECT_THAT(attention.out, Not(HasSubstr("# longnet bench attention")));

  const auto directory = run(0, {"bench", "attention", "--csv", root_.string()});
  EXPECT_EQ(directory.status, 2) << directory.out << directory.err;
  EXPECT_THAT(directory.err, HasSubstr("is a directory"));
}

TEST_F(BenchCliTest, AttentionTableChecksBeforeTiming) {
  const auto result = run(0, {"bench",      "attention", "--tokens",    "512",     "--segments",
                              "128,256",    "--rates",   "1,2",         "--heads", "2",
                              "--head-dim", "16",        "--repeats",   "1",       "--sgemm-size",
                              "64",         "--csv",     file("a.csv"), "--json",  file("a.json")});
  ASSERT_EQ(result.status, 0) << result.out << result.err;
  const auto rows = read_csv(file("a.csv"));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].at("direction"), "fwd");
  EXPECT_EQ(rows[1].at("direction"), "bwd");
  for (const CsvRow& row : rows) EXPECT_LE(number(row, "check_error"), 1e-5);
  EXPECT_THAT(test::read_text(file("a.json")), HasSubstr("\"segment_lengths\": \"128 256\""));
  expect_valid_json(file("a.json"));
}

TEST_F(BenchCliTest, AttentionOnCudaWithoutAGpuRefusesWithTheReason) {
  if (cuda_device_available())
    GTEST_SKIP() << "a GPU is present: the refusal is for machines without one";
  const auto result = run(0, {"bench", "attention", "--device", "cuda"});
  EXPECT_EQ(result.status, 2) << result.out << result.err;
  EXPECT_THAT(result.err, HasSubstr("longnet bench attention: error: --device cuda"));
}

TEST_F(BenchCliTest, InfoPrintsTheBuildAndEveryRank) {
  const auto result = run(2, {"info"});
  ASSERT_EQ(result.status, 0) << result.out << result.err;
  for (const char* line : {"MPI           Open MPI", "HDF5          1.", "CUDA ", "NCCL ",
                           "world: 2 rank(s) on 1 node(s)", "rank 0/2 on ", "rank 1/2 on "})
    EXPECT_THAT(result.out, HasSubstr(line));
}

}  // namespace
}  // namespace longnet
