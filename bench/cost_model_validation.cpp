// Calibration and validation of the cost model against this machine's measurements;
// bench/cost_model_validation.hpp says what is fitted and what is compared.
#include "bench/cost_model_validation.hpp"

#include "bench/stats.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "runtime/error.hpp"

namespace longnet::bench {
namespace {

// The 'ranks' cell of a row as the int the model counts ranks in: a count below 1 or
// beyond int is named with its row, not truncated by the cast.
int rank_count(const CsvTable& table, std::size_t row) {
  const int64_t ranks = table.integer(row, "ranks");
  LONGNET_CHECK(ranks >= 1 && ranks <= std::numeric_limits<int>::max(),
                "{}: column 'ranks': {} is not a rank count (1 to {})", table.where(row), ranks,
                std::numeric_limits<int>::max());
  return static_cast<int>(ranks);
}

std::string rate_key(const std::string& mode, const std::string& attention, Direction d) {
  return fmt::format("{} {} {}", mode, attention, direction_name(d));
}

ErrorSummary summarise(const std::vector<double>& abs_errors) {
  ErrorSummary s;
  s.rows = static_cast<int>(abs_errors.size());
  if (abs_errors.empty()) return s;
  s.median_abs = median(abs_errors);
  s.max_abs = std::ranges::max(abs_errors);
  return s;
}

}  // namespace

double relative_error(double predicted, double measured) {
  if (measured == 0) return predicted == 0 ? 0.0 : std::numeric_limits<double>::infinity();
  return (predicted - measured) / measured;
}

// ---- reading measurements ---------------------------------------------------------

std::vector<ScalingRow> scaling_rows(const CsvTable& table) {
  std::vector<ScalingRow> rows;
  for (std::size_t i = 0; i < table.size(); ++i) {
    ScalingRow row;
    row.where = table.where(i);
    row.mode = table.text(i, "mode");
    row.attention = table.text(i, "attention");
    const std::string& direction = table.text(i, "direction");
    LONGNET_CHECK(direction == "fwd" || direction == "bwd",
                  "{}: column 'direction': '{}' is neither fwd nor bwd", row.where, direction);
    row.direction = direction == "fwd" ? Direction::forward : Direction::backward;
    row.ranks = rank_count(table, i);
    row.shape = {table.integer(i, "batch"), table.integer(i, "tokens"), table.integer(i, "heads"),
                 table.integer(i, "head_dim")};
    const int64_t causal = table.integer(i, "causal");
    LONGNET_CHECK(causal == 0 || causal == 1, "{}: column 'causal': {} is neither 0 nor 1",
                  row.where, causal);
    try {
      row.config = DilatedAttentionConfig::from_lists(
          table.integer_list(i, "segments"), table.integer_list(i, "rates"), causal == 1,
          parse_head_offsets(table.text(i, "head_offsets")));
      validate_shape(row.shape);
    } catch (const Error& e) {
      fail("{}: columns segments, rates, head_offsets, batch..head_dim: {}", row.where, e.what());
    }
    row.time_ms = table.number(i, "time_ms");
    row.compute_ms = table.number(i, "compute_ms");
    row.comm_ms = table.number(i, "comm_ms");
    row.flops = table.number(i, "flops");
    row.sent_bytes = table.integer(i, "sent_bytes_per_rank");
    row.received_bytes = table.integer(i, "recv_bytes_per_rank");
    row.collectives = table.integer(i, "collectives_per_rank");
    row.oversubscribed = table.integer(i, "oversubscribed") != 0;
    rows.push_back(std::move(row));
  }
  return rows;
}

std::vector<CommSample> comm_samples(const CsvTable& table) {
  std::vector<CommSample> samples;
  for (std::size_t i = 0; i < table.size(); ++i) {
    LONGNET_CHECK(table.integer(i, "wrong") == 0,
                  "{}: column 'wrong': {} wrong elements: a failed collective is no timing",
                  table.where(i), table.text(i, "wrong"));
    CommSample s;
    s.op = table.text(i, "op");
    s.ranks = rank_count(table, i);
    const double size = table.number(i, "size_bytes"), p = s.ranks;
    if (s.ranks < 2) continue;  // nothing moves
    // Equal forms: every rank receives (P-1)/P of the size. The per-rank-count forms of
    // `longnet bench comm` give rank j the block u (j+1), u = 2 size / (P (P+1)): the rank
    // with the smallest block receives (gathers) or sends (reduce-scatters) the most.
    if (s.op == "all_gather" || s.op == "reduce_scatter") {
      s.bytes = size * (p - 1) / p;
    } else if (s.op == "all_gatherv" || s.op == "reduce_scatterv") {
      s.bytes = size - 2 * size / (p * (p + 1));
    } else {
      fail("{}: column 'op': unknown collective '{}'", table.where(i), s.op);
    }
    s.time_us = table.number(i, "time_us");
    samples.push_back(s);
  }
  return samples;
}

LinkFit fit_link(const std::vector<CommSample>& samples, bool gathers, LatencySteps steps) {
  const std::string equal = gathers ? "all_gather" : "reduce_scatter", uneven = equal + "v";
  const bool have_uneven =
      std::ranges::any_of(samples, [&](const CommSample& s) { return s.op == uneven; });
  const std::string& op = have_uneven ? uneven : equal;
  // Rows of size 0 are left out: nothing moves, and MPI returns in ~0.1 us, far below the
  // latency of any call that carries data; under a relative fit they would pin alpha there.
  std::vector<CommSample> used;
  for (const CommSample& s : samples) {
    if (s.op == op && s.bytes > 0 && s.time_us > 0) used.push_back(s);
  }
  LONGNET_CHECK(used.size() >= 2,
                "cannot fit the {} link: {} usable rows of {} or {} (give a `longnet bench comm "
                "--op all --uneven` CSV, or --latency and --bandwidth)",
                gathers ? "all-gather" : "reduce-scatter", used.size(), uneven, equal);
  // Minimise sum ((alpha x1 + gamma x2 - t) / t)^2 over alpha (us per step) and
  // gamma = 1 / beta (us per byte): the normal equations of rows (x1/t, x2/t) against 1.
  double s11 = 0, s12 = 0, s22 = 0, b1 = 0, b2 = 0;
  for (const CommSample& s : used) {
    const double x1 = static_cast<double>(latency_step_count(steps, s.ranks)) / s.time_us;
    const double x2 = s.bytes / s.time_us;
    s11 += x1 * x1;
    s12 += x1 * x2;
    s22 += x2 * x2;
    b1 += x1;
    b2 += x2;
  }
  const double det = s11 * s22 - s12 * s12;
  double alpha = det > 0 ? (b1 * s22 - b2 * s12) / det : -1;
  double gamma = det > 0 ? (s11 * b2 - s12 * b1) / det : 0;
  if (alpha < 0) {  // latency pinned at 0: bandwidth alone
    alpha = 0;
    gamma = s22 > 0 ? b2 / s22 : 0;
  }
  LONGNET_CHECK(gamma > 0, "cannot fit the {} link: the times do not grow with the bytes", op);
  LinkFit fit;
  fit.cost = {alpha, 1.0 / (gamma * 1e3)};  // us per byte -> 10^9 bytes per second
  fit.samples = static_cast<int>(used.size());
  fit.ops = op;
  std::vector<double> errors;
  for (const CommSample& s : used) {
    const double steps_here = static_cast<double>(latency_step_count(steps, s.ranks));
    errors.push_back(std::abs(relative_error(alpha * steps_here + gamma * s.bytes, s.time_us)));
  }
  fit.median_abs_rel_error = median(errors);
  return fit;
}

// ---- validation -------------------------------------------------------------------

Validation validate(const std::vector<ScalingRow>& rows, const ValidationInputs& inputs) {
  Validation v;
  // Rates: flops / compute time of the one-rank rows, where nothing is communicated.
  std::map<std::string, std::vector<double>> one_rank;
  for (const ScalingRow& row : rows) {
    if (row.ranks != 1) continue;
    LONGNET_CHECK(row.compute_ms > 0, "{}: a one-rank row with compute_ms {}", row.where,
                  row.compute_ms);
    one_rank[rate_key(row.mode, row.attention, row.direction)].push_back(
        row.flops / (row.compute_ms * 1e-3) / 1e12);
  }
  for (const auto& [key, rates] : one_rank) v.rates[key] = median(rates);

  std::vector<double> all, not_oversubscribed;
  for (const ScalingRow& row : rows) {
    if (row.ranks == 1) continue;
    ValidationRow out;
    out.measured = row;
    auto rate = v.rates.find(rate_key(row.mode, row.attention, row.direction));
    if (rate == v.rates.end()) {  // the other mode's one-rank row of the same kernel
      rate = std::ranges::find_if(v.rates, [&](const auto& entry) {
        return entry.first.ends_with(
            fmt::format(" {} {}", row.attention, direction_name(row.direction)));
      });
    }
    LONGNET_CHECK(rate != v.rates.end(),
                  "{}: no one-rank row of {} attention, {}, to calibrate the kernel rate from: run "
                  "`longnet bench scaling` with 1 rank among its rank counts",
                  row.where, row.attention, direction_name(row.direction));
    out.rate_tflops = rate->second;
    MachineModel machine{.forward_tflops = rate->second,
                         .backward_tflops = rate->second,
                         .intra_node = inputs.network,
                         .inter_node = inputs.network,
                         .latency_steps = inputs.latency_steps};
    const LayerProblem problem{.config = row.config,
                               .shape = row.shape,
                               .world = row.ranks,
                               .element_bytes = inputs.element_bytes,
                               .ranks_per_node = row.ranks};  // one machine
    out.predicted = predict(rank_work(problem), row.direction, machine, row.shape.head_dim);
    out.bytes_match = out.predicted.max_sent_bytes == row.sent_bytes &&
                      out.predicted.max_received_bytes == row.received_bytes;
    out.collectives_match = out.predicted.max_collectives == row.collectives;
    // The CSV prints FLOPs as text: equal to its printed precision.
    out.flops_match = std::abs(relative_error(out.predicted.total_flops, row.flops)) <= 1e-6;
    if (!out.bytes_match || !out.collectives_match || !out.flops_match) ++v.mismatches;
    const double error = std::abs(relative_error(out.predicted.time_s * 1e3, row.time_ms));
    all.push_back(error);
    if (!row.oversubscribed) not_oversubscribed.push_back(error);
    v.rows.push_back(std::move(out));
  }
  v.all = summarise(all);
  v.not_oversubscribed = summarise(not_oversubscribed);
  return v;
}

}  // namespace longnet::bench
