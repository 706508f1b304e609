// The cost model (bench/cost_model.hpp) against this machine's measurements, for
// `longnet bench model --validate`. The CSV of `longnet bench scaling` gives the kernel rate
// of each (mode, attention, direction) from its one-rank rows, where nothing is
// communicated; the CSV of `longnet bench comm` gives the link's alpha and beta by a least-
// squares fit. Every multi-rank row is then predicted and compared: its bytes, collective
// calls and FLOPs must match exactly (they come from the same plan the counters record),
// its times are the model's error. Kept apart from any process, so that tests drive it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "bench/cost_model.hpp"
#include "bench/csv_table.hpp"

namespace longnet::bench {

// ---- reading measurements ---------------------------------------------------------

// One row of `longnet bench scaling`'s CSV (bench/README.md lists the columns).
struct ScalingRow {
  std::string where;  // FILE:LINE
  std::string mode, attention;
  Direction direction = Direction::forward;
  int ranks = 1;
  AttentionShape shape;
  DilatedAttentionConfig config;
  double time_ms = 0, compute_ms = 0, comm_ms = 0, flops = 0;
  int64_t sent_bytes = 0, received_bytes = 0, collectives = 0;
  bool oversubscribed = false;
};
std::vector<ScalingRow> scaling_rows(const CsvTable& table);

// One timed collective of `longnet bench comm`'s CSV, as the model sees it.
struct CommSample {
  std::string op;  // all_gather, all_gatherv, reduce_scatter, reduce_scatterv
  int ranks = 2;
  double bytes = 0;  // the largest receive (gathers) or send (reduce-scatters) of a rank
  double time_us = 0;
};
std::vector<CommSample> comm_samples(const CsvTable& table);

// alpha, beta of `time = alpha * steps(g) + bytes / beta`, fitted to the samples of one
// family (gathers or reduce-scatters; the per-rank-count forms, which the runtime calls,
// when present) by least squares on the relative error, alpha >= 0; rows that move no
// bytes are left out.
struct LinkFit {
  LinkCost cost;
  int samples = 0;
  std::string ops;                  // the ops fitted
  double median_abs_rel_error = 0;  // of the fit itself
};
LinkFit fit_link(const std::vector<CommSample>& samples, bool gathers,
                 LatencySteps steps = LatencySteps::ring);

// ---- validation -------------------------------------------------------------------

struct ValidationInputs {
  NetworkCost network;  // the link of this machine: every rank sits on one node
  LatencySteps latency_steps = LatencySteps::ring;
  int64_t element_bytes = 4;  // the CPU runtime moves float32
};

struct ValidationRow {
  ScalingRow measured;
  LayerPrediction predicted;
  double rate_tflops = 0;  // the calibrated rate used for its compute
  bool bytes_match = true, collectives_match = true, flops_match = true;
};

struct ErrorSummary {
  int rows = 0;
  double median_abs = 0, max_abs = 0;  // of (predicted - measured) / measured time_ms
};

struct Validation {
  // Kernel rates (TFLOP/s) by "mode attention direction", from the one-rank rows.
  std::map<std::string, double> rates;
  std::vector<ValidationRow> rows;  // the multi-rank rows, in file order
  ErrorSummary all, not_oversubscribed;
  int mismatches = 0;  // rows whose bytes, calls or FLOPs differ from the model
};

// Calibrates the kernel rate of each (mode, attention, direction) from its one-rank
// rows (the other mode's when a mode has none) and predicts every multi-rank row.
Validation validate(const std::vector<ScalingRow>& rows, const ValidationInputs& inputs);

double relative_error(double predicted, double measured);  // (p - m) / m; 0 when both 0

}  // namespace longnet::bench
