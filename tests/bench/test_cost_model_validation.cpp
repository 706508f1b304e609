// Calibration and validation of the cost model on synthetic measurements whose times
// follow the model exactly (a known rate and link): the fit must recover them and report
// no error; a row whose bytes differ is flagged; malformed CSVs name file, line, column.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "bench/cost_model.hpp"
#include "bench/cost_model_validation.hpp"
#include "bench/csv_table.hpp"
#include "runtime/error.hpp"
#include "tests/support/error_of.hpp"

namespace longnet::bench {
namespace {

using longnet::test::error_of;

using ::testing::HasSubstr;

constexpr LinkCost kGather{3.0, 5.0};  // us per step, GB/s
constexpr LinkCost kScatter{6.0, 2.0};
constexpr double kForwardTflops = 0.1, kBackwardTflops = 0.125;

const char* kCommHeader =
    "backend,ranks,host,date,op,size_bytes,count,type,redop,time_us,algbw_GBps,busbw_GBps,"
    "wrong,warmup,iters\n";

// A `longnet bench comm` CSV: per-rank-count and equal forms at P = 2 and 4.
std::string synthetic_comm_csv() {
  std::string csv = kCommHeader;
  for (const int p : {2, 4}) {
    for (const char* op : {"all_gatherv", "reduce_scatterv", "all_gather"}) {
      const bool gather = std::string(op).starts_with("all_gather");
      const bool uneven = std::string(op).ends_with("v");
      const LinkCost link = gather ? kGather : kScatter;
      for (double size = 4096; size <= 16.0 * (1 << 20); size *= 4) {
        const double bytes = uneven ? size - 2 * size / (p * (p + 1)) : size * (p - 1) / p;
        // The equal all_gather rows follow another link: the fit must not use them.
        const double time = uneven ? link.latency_us * (p - 1) + bytes / (link.bandwidth_GBps * 1e3)
                                   : 1 + bytes / 1e4;
        csv += fmt::format(
            "mpi,{},vm,2026-11-22T19:33:45Z,{},{:.0f},0,float,none,{:.17g},0,0,0,5,20\n", p, op,
            size, time);
      }
    }
  }
  return csv;
}

const char* kScalingHeader =
    "mode,attention,direction,ranks,tokens,tokens_per_rank,batch,heads,head_dim,segments,rates,"
    "causal,head_offsets,time_ms,compute_ms,comm_ms,tokens_per_s,efficiency,flops,"
    "sent_bytes_per_rank,recv_bytes_per_rank,collectives_per_rank,oversubscribed\n";

// A `longnet bench scaling` CSV (weak scaling, 1024 tokens per rank) whose times are the
// model's own with the constants above.
std::string synthetic_scaling_csv() {
  MachineModel machine{.forward_tflops = kForwardTflops,
                       .backward_tflops = kBackwardTflops,
                       .intra_node = {kGather, kScatter},
                       .inter_node = {kGather, kScatter}};
  std::string csv = kScalingHeader;
  for (const char* attention : {"dilated", "dense"}) {
    for (const int ranks : {1, 2, 4}) {
      const int64_t n = 1024 * ranks;
      const bool dense = std::string(attention) == "dense";
      const std::vector<int64_t> w =
          dense ? std::vector<int64_t>{n} : std::vector<int64_t>{512, 2048};
      const std::vector<int64_t> r = dense ? std::vector<int64_t>{1} : std::vector<int64_t>{1, 2};
      const auto config = DilatedAttentionConfig::from_lists(w, r, true, HeadOffsets::interleaved);
      const AttentionShape shape{1, n, 4, 16};
      const auto work =
          rank_work({.config = config, .shape = shape, .world = ranks, .ranks_per_node = ranks});
      for (const Direction d : {Direction::forward, Direction::backward}) {
        const LayerPrediction p = predict(work, d, machine, shape.head_dim);
        const double flops =
            d == Direction::forward ? forward_flops(config, shape) : backward_flops(config, shape);
        csv += fmt::format(
            "weak,{},{},{},{},1024,1,4,16,\"{}\",\"{}\",1,interleaved,{:.17g},{:.17g},{:.17g},0,0,"
            "{:.17g},{},{},{},{}\n",
            attention, direction_name(d), ranks, n, fmt::join(w, " "), fmt::join(r, " "),
            p.time_s * 1e3, p.compute_s * 1e3, p.comm_s * 1e3, flops, p.max_sent_bytes,
            p.max_received_bytes, p.max_collectives, ranks > 2 ? 1 : 0);
      }
    }
  }
  return csv;
}

TEST(FitLink, RecoversLatencyAndBandwidthOfEachCollective) {
  const auto samples = comm_samples(CsvTable::parse(synthetic_comm_csv(), "comm.csv"));
  const LinkFit gather = fit_link(samples, true);
  EXPECT_EQ(gather.ops, "all_gatherv");  // the per-rank-count form, which the runtime calls
  EXPECT_EQ(gather.samples, 14);         // 7 sizes at P = 2 and 4
  EXPECT_NEAR(gather.cost.latency_us, kGather.latency_us, 1e-9);
  EXPECT_NEAR(gather.cost.bandwidth_GBps, kGather.bandwidth_GBps, 1e-9);
  EXPECT_LT(gather.median_abs_rel_error, 1e-12);
  const LinkFit scatter = fit_link(samples, false);
  EXPECT_EQ(scatter.ops, "reduce_scatterv");
  EXPECT_NEAR(scatter.cost.latency_us, kScatter.latency_us, 1e-9);
  EXPECT_NEAR(scatter.cost.bandwidth_GBps, kScatter.bandwidth_GBps, 1e-9);
}

TEST(Validate, RecoversTheRatesAndReportsNoError) {
  const auto rows = scaling_rows(CsvTable::parse(synthetic_scaling_csv(), "scaling.csv"));
  const Validation v = validate(rows, {.network = {kGather, kScatter}});
  ASSERT_EQ(v.rates.size(), 4u);
  EXPECT_NEAR(v.rates.at("weak dilated fwd"), kForwardTflops, 1e-12);
  EXPECT_NEAR(v.rates.at("weak dense bwd"), kBackwardTflops, 1e-12);
  ASSERT_EQ(v.rows.size(), 8u);  // ranks 2 and 4, two kinds, two directions
  EXPECT_EQ(v.mismatches, 0);
  for (const ValidationRow& row : v.rows) {
    SCOPED_TRACE(row.measured.where);
    EXPECT_TRUE(row.bytes_match && row.collectives_match && row.flops_match);
    EXPECT_NEAR(relative_error(row.predicted.time_s * 1e3, row.measured.time_ms), 0, 1e-12);
    EXPECT_NEAR(relative_error(row.predicted.comm_s * 1e3, row.measured.comm_ms), 0, 1e-12);
  }
  EXPECT_EQ(v.all.rows, 8);
  EXPECT_LT(v.all.max_abs, 1e-12);
  EXPECT_EQ(v.not_oversubscribed.rows, 4);  // the P = 4 rows are marked oversubscribed
}

TEST(Validate, FlagsARowWhoseBytesDifferFromTheModel) {
  auto rows = scaling_rows(CsvTable::parse(synthetic_scaling_csv(), "scaling.csv"));
  auto& p4 = *std::ranges::find_if(rows, [](const ScalingRow& r) { return r.ranks == 4; });
  p4.received_bytes += 4;
  const Validation v = validate(rows, {.network = {kGather, kScatter}});
  EXPECT_EQ(v.mismatches, 1);
  const auto flagged =
      std::ranges::count_if(v.rows, [](const ValidationRow& r) { return !r.bytes_match; });
  EXPECT_EQ(flagged, 1);
}

TEST(Validate, NeedsAOneRankRowForEachKernel) {
  std::string csv = kScalingHeader;
  csv += "weak,dense,fwd,2,2048,1024,1,4,16,2048,1,1,interleaved,1,1,0,0,0,1e6,0,0,1,0\n";
  const auto rows = scaling_rows(CsvTable::parse(csv, "s.csv"));
  try {
    validate(rows, {.network = {kGather, kScatter}});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("s.csv:2"));
    EXPECT_THAT(e.what(), HasSubstr("no one-rank row of dense attention"));
  }
}

TEST(Csv, ErrorsNameTheFileLineAndColumn) {
  std::string good = synthetic_scaling_csv();
  const auto line3 = good.find('\n', good.find('\n') + 1) + 1;  // start of line 3

  const auto time = good.find("interleaved,", line3) + std::string("interleaved,").size();
  const std::string bad_number = good.substr(0, time) + "x" + good.substr(time);
  EXPECT_THAT(error_of([&] { scaling_rows(CsvTable::parse(bad_number, "a.csv")); }),
              HasSubstr("a.csv:3: column 'time_ms'"));

  EXPECT_THAT(error_of([&] { CsvTable::parse(good + "weak,dense,fwd\n", "b.csv"); }),
              HasSubstr("b.csv:14: 3 fields where the header (line 1) has 23 columns"));
  EXPECT_THAT(error_of([&] { CsvTable::parse(good + "weak,\"dense\n", "c.csv"); }),
              HasSubstr("c.csv:14: column 2: a quoted field is never closed"));

  std::string no_column = good;
  no_column.replace(no_column.find("oversubscribed"), 14, "oversub");
  EXPECT_THAT(error_of([&] { scaling_rows(CsvTable::parse(no_column, "d.csv")); }),
              HasSubstr("d.csv:1: no column 'oversubscribed'"));

  std::string bad_rate = good;
  bad_rate.replace(bad_rate.find("\"1 2\""), 5, "\"1 9999\"");
  EXPECT_THAT(error_of([&] { scaling_rows(CsvTable::parse(bad_rate, "e.csv")); }),
              HasSubstr("e.csv:2: columns segments, rates"));

  std::string bad_direction = good;
  bad_direction.replace(bad_direction.find(",bwd,", line3), 5, ",up,");
  EXPECT_THAT(error_of([&] { scaling_rows(CsvTable::parse(bad_direction, "f.csv")); }),
              HasSubstr("f.csv:3: column 'direction': 'up'"));
}

TEST(Csv, ReadsAFileAndNamesItsPath) {
  const auto path = std::filesystem::path(::testing::TempDir()) / "cost_model_comm.csv";
  std::ofstream(path) << kCommHeader
                      << "mpi,2,vm,d,all_gatherv,1024,0,float,none,1.5,0,0,3,5,20\r\n";
  EXPECT_THAT(error_of([&] { comm_samples(CsvTable::read(path.string())); }),
              HasSubstr(path.string() + ":2: column 'wrong'"));
  EXPECT_THAT(error_of([&] { CsvTable::read(path.string() + ".missing"); }),
              HasSubstr("cannot read"));
}

}  // namespace
}  // namespace longnet::bench
