// The cost model's arithmetic; bench/cost_model.hpp says what is exact and what is modelled,
// bench/MODEL.md writes every formula out.
#include "bench/cost_model.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include "model/sequence_parallel_plan.hpp"
#include "runtime/error.hpp"

namespace longnet::bench {
namespace {

// Effective FLOPs per pair: 4 D forward (q.k and p.v), 2.5 times that backward; the
// convention of forward_flops / backward_flops.
constexpr double kForwardFlopsPerPairAndDim = 4.0;
constexpr double kBackwardOverForward = 2.5;

double median(std::vector<double> values) {
  std::ranges::sort(values);
  const std::size_t mid = values.size() / 2;
  return values.size() % 2 ? values[mid] : 0.5 * (values[mid - 1] + values[mid]);
}

// Pairs among m dilated rows that attend each other: m^2, or m (m + 1) / 2 when causal.
double square_pairs(double m, bool causal) { return causal ? m * (m + 1) / 2 : m * m; }

// Rows a head with offset `off` selects among the first `length` tokens of a segment.
int64_t rows_in(int64_t length, int64_t off, int64_t rate) {
  return length > off ? (length - off + rate - 1) / rate : 0;
}

std::vector<int64_t> head_offsets(const LayerProblem& problem, int64_t rate) {
  std::vector<int64_t> offsets(static_cast<std::size_t>(problem.shape.heads));
  for (int64_t h = 0; h < problem.shape.heads; ++h) {
    offsets[static_cast<std::size_t>(h)] =
        head_offset(problem.config.head_offsets, h, problem.shape.heads, rate);
  }
  return offsets;
}

// Pairs of one segment of `length` tokens computed whole (all heads, all batch elements).
double whole_segment_pairs(const LayerProblem& problem, int64_t length, int64_t rate,
                           const std::vector<int64_t>& offsets) {
  double pairs = 0;
  for (const int64_t off : offsets) {
    pairs += square_pairs(static_cast<double>(rows_in(length, off, rate)), problem.config.causal);
  }
  return pairs * static_cast<double>(problem.shape.batch);
}

// Segments wholly inside a shard, computed there with no communication (segment_tasks
// in kernels/attention_tasks.cpp): all full ones, plus the short last one when the shard
// ends the sequence. Closed form per rank.
void add_local_segments(const LayerProblem& problem, const DilationPattern& pattern,
                        std::vector<RankWork>& work) {
  const int64_t n = problem.shape.tokens, w = pattern.segment_length, r = pattern.dilation_rate;
  const auto offsets = head_offsets(problem, r);
  const double full = whole_segment_pairs(problem, w, r, offsets);
  const double last_short = n % w ? whole_segment_pairs(problem, n % w, r, offsets) : 0.0;
  for (int rank = 0; rank < problem.world; ++rank) {
    const Shard shard = shard_of(n, problem.world, rank);
    // Segments s with s w >= begin and (s + 1) w <= end are full and inside.
    const int64_t first = (shard.begin + w - 1) / w, past = shard.end / w;
    double pairs = static_cast<double>(std::max<int64_t>(0, past - first)) * full;
    if (shard.end == n && n % w != 0 && (n / w) * w >= shard.begin) pairs += last_short;
    work[static_cast<std::size_t>(rank)].pairs += pairs;
  }
}

// Segments spanning ranks: every member packs its selected rows, the group all-gathers
// them (one call), and each member's own rows attend all of the segment's rows.
void add_spanning_segments(const LayerProblem& problem, const DilationPattern& pattern,
                           std::vector<RankWork>& work) {
  const int64_t n = problem.shape.tokens, r = pattern.dilation_rate, heads = problem.shape.heads;
  const double batch = static_cast<double>(problem.shape.batch);
  const int64_t elements_per_row = 2 * problem.shape.batch * problem.shape.head_dim;  // k and v
  const auto offsets = head_offsets(problem, r);
  std::vector<int64_t> rows, first_index, head_rows, member_elements;
  for (const SpanningSegment& s : spanning_segments(n, problem.world, pattern)) {
    const int members = s.last_rank - s.first_rank + 1;
    rows.assign(static_cast<std::size_t>(members * heads), 0);
    first_index.assign(rows.size(), 0);
    head_rows.assign(static_cast<std::size_t>(heads), 0);
    member_elements.assign(static_cast<std::size_t>(members), 0);
    for (int m = 0; m < members; ++m) {
      const Shard shard = shard_of(n, problem.world, s.first_rank + m);
      const int64_t a = std::max(shard.begin, s.start), b = std::min(shard.end, s.end);
      for (int64_t h = 0; h < heads; ++h) {
        const auto i = static_cast<std::size_t>(m * heads + h);
        const int64_t off = offsets[static_cast<std::size_t>(h)];
        rows[i] = selected_rows(s.start, a, b, r, off);
        first_index[i] = first_selected_index(s.start, a, r, off);
        head_rows[static_cast<std::size_t>(h)] += rows[i];
        member_elements[static_cast<std::size_t>(m)] += rows[i] * elements_per_row;
      }
    }
    int64_t total = 0, smallest = std::numeric_limits<int64_t>::max();
    for (const int64_t c : member_elements) {
      total += c;
      smallest = std::min(smallest, c);
    }
    const bool one_node =
        s.first_rank / problem.ranks_per_node == s.last_rank / problem.ranks_per_node;
    const double time_bytes = static_cast<double>((total - smallest) * problem.element_bytes);
    const int64_t ring_steps = latency_step_count(LatencySteps::ring, members);
    const int64_t tree_steps = latency_step_count(LatencySteps::tree, members);
    for (int m = 0; m < members; ++m) {
      double pairs = 0;
      for (int64_t h = 0; h < heads; ++h) {
        const auto i = static_cast<std::size_t>(m * heads + h);
        const double own = static_cast<double>(rows[i]), f = static_cast<double>(first_index[i]);
        // Causal: own row t (dilated index f + t) attends keys 0..f + t.
        pairs += problem.config.causal
                     ? own * f + own * (own + 1) / 2
                     : own * static_cast<double>(head_rows[static_cast<std::size_t>(h)]);
      }
      RankWork& mine = work[static_cast<std::size_t>(s.first_rank + m)];
      const int64_t c = member_elements[static_cast<std::size_t>(m)];
      mine.pairs += pairs * batch;
      mine.gather_sent_bytes += c * problem.element_bytes;
      mine.gather_received_bytes += (total - c) * problem.element_bytes;
      mine.gathers += 1;
      LinkLoad& link = one_node ? mine.intra_node : mine.inter_node;
      link.calls += 1;
      link.ring_steps += ring_steps;
      link.tree_steps += tree_steps;
      link.bytes += time_bytes;
    }
  }
}

double link_seconds(const LinkLoad& load, const LinkCost& cost, LatencySteps latency) {
  if (load.calls == 0) return 0;
  const int64_t steps = latency == LatencySteps::ring ? load.ring_steps : load.tree_steps;
  return static_cast<double>(steps) * cost.latency_us * 1e-6 +
         load.bytes / (cost.bandwidth_GBps * 1e9);
}

}  // namespace

std::vector<RankWork> rank_work(const LayerProblem& problem) {
  validate_config(problem.config);
  validate_shape(problem.shape);
  LONGNET_CHECK(problem.world >= 1 && problem.world <= problem.shape.tokens,
                "{} ranks for {} tokens: use 1 to {} ranks", problem.world, problem.shape.tokens,
                problem.shape.tokens);
  LONGNET_CHECK(problem.element_bytes > 0 && problem.ranks_per_node > 0,
                "element bytes ({}) and ranks per node ({}) must be positive",
                problem.element_bytes, problem.ranks_per_node);
  std::vector<RankWork> work(static_cast<std::size_t>(problem.world));
  for (const DilationPattern& pattern : problem.config.patterns) {
    add_local_segments(problem, pattern, work);
    add_spanning_segments(problem, pattern, work);
  }
  return work;
}

std::string_view direction_name(Direction direction) {
  return direction == Direction::forward ? "fwd" : "bwd";
}

CallWork call_work(const RankWork& work, Direction direction, int64_t head_dim) {
  const double forward = kForwardFlopsPerPairAndDim * static_cast<double>(head_dim) * work.pairs;
  if (direction == Direction::forward) {
    return {forward, work.gather_sent_bytes, work.gather_received_bytes, work.gathers};
  }
  const int64_t both = work.gather_sent_bytes + work.gather_received_bytes;
  return {kBackwardOverForward * forward, both, both, 2 * work.gathers};
}

int64_t latency_step_count(LatencySteps steps, int64_t group_size) {
  if (steps == LatencySteps::ring) return group_size - 1;
  int64_t log2 = 0;
  while ((int64_t{1} << log2) < group_size) ++log2;
  return log2;
}

std::string_view latency_steps_name(LatencySteps steps) {
  return steps == LatencySteps::ring ? "ring" : "tree";
}

LatencySteps parse_latency_steps(std::string_view text) {
  if (text == "ring") return LatencySteps::ring;
  if (text == "tree") return LatencySteps::tree;
  fail(
      "unknown latency model '{}': use 'ring' (g - 1 steps per collective over g ranks) or "
      "'tree' (ceil(log2 g) steps)",
      text);
}

MachineModel h100_machine() {
  MachineModel m;
  m.forward_tflops = 202.6;                // bf16, bench/results/cuda_attention_2026-11-22_h100.txt
  m.backward_tflops = 157.0;               // same run
  m.intra_node.all_gather = {2.0, 450.0};  // NVLink 4: 18 links x 25 GB/s per direction
  m.inter_node.all_gather = {5.0, 50.0};   // InfiniBand NDR 400 Gb/s, one NIC per GPU
  m.intra_node.reduce_scatter = m.intra_node.all_gather;
  m.inter_node.reduce_scatter = m.inter_node.all_gather;
  return m;
}

RankTime rank_time(const RankWork& work, Direction direction, const MachineModel& machine,
                   int64_t head_dim) {
  const CallWork call = call_work(work, direction, head_dim);
  const bool forward = direction == Direction::forward;
  RankTime t;
  t.compute_s = call.flops / ((forward ? machine.forward_tflops : machine.backward_tflops) * 1e12);
  const LatencySteps steps = machine.latency_steps;
  t.comm_s = link_seconds(work.intra_node, machine.intra_node.all_gather, steps) +
             link_seconds(work.inter_node, machine.inter_node.all_gather, steps);
  if (!forward) {  // the dk, dv reduce-scatters: the same groups and bytes, transposed
    t.comm_s += link_seconds(work.intra_node, machine.intra_node.reduce_scatter, steps) +
                link_seconds(work.inter_node, machine.inter_node.reduce_scatter, steps);
  }
  return t;
}

LayerPrediction predict(const std::vector<RankWork>& work, Direction direction,
                        const MachineModel& machine, int64_t head_dim) {
  LayerPrediction p;
  for (std::size_t rank = 0; rank < work.size(); ++rank) {
    const RankTime t = rank_time(work[rank], direction, machine, head_dim);
    const CallWork call = call_work(work[rank], direction, head_dim);
    if (t.compute_s + t.comm_s > p.time_s) {
      p.time_s = t.compute_s + t.comm_s;
      p.slowest_rank = static_cast<int>(rank);
    }
    p.compute_s = std::max(p.compute_s, t.compute_s);
    p.comm_s = std::max(p.comm_s, t.comm_s);
    p.max_flops = std::max(p.max_flops, call.flops);
    p.total_flops += call.flops;
    p.max_sent_bytes = std::max(p.max_sent_bytes, call.sent_bytes);
    p.max_received_bytes = std::max(p.max_received_bytes, call.received_bytes);
    p.max_collectives = std::max(p.max_collectives, call.collectives);
  }
  return p;
}

std::vector<DilationPattern> geometric_patterns(int64_t tokens, int64_t base_segment,
                                                int64_t ratio) {
  LONGNET_CHECK(base_segment > 0 && ratio >= 2,
                "geometric patterns need a positive base segment ({}) and a ratio of at least 2 "
                "({})",
                base_segment, ratio);
  std::vector<DilationPattern> patterns{{base_segment, 1}};
  for (int64_t w = base_segment * ratio, r = ratio; w <= tokens; w *= ratio, r *= ratio) {
    patterns.push_back({w, r});
  }
  return patterns;
}

DilatedAttentionConfig dense_config(int64_t tokens, bool causal) {
  return DilatedAttentionConfig::from_lists({tokens}, {1}, causal, HeadOffsets::interleaved);
}

double relative_error(double predicted, double measured) {
  if (measured == 0) return predicted == 0 ? 0.0 : std::numeric_limits<double>::infinity();
  return (predicted - measured) / measured;
}

// ---- reading measurements ---------------------------------------------------------

CsvTable CsvTable::read(const std::string& path) {
  std::ifstream in(path);
  LONGNET_CHECK(in.good(), "cannot read '{}': check the path", path);
  std::stringstream text;
  text << in.rdbuf();
  return parse(text.str(), path);
}

CsvTable CsvTable::parse(const std::string& text, const std::string& name) {
  CsvTable table;
  table.name_ = name;
  std::vector<std::string> fields;
  std::string field;
  bool quoted = false, any = false;
  int64_t line = 1, record_line = 1;
  auto end_record = [&] {
    fields.push_back(field);
    field.clear();
    if (table.columns_.empty()) {
      table.columns_ = fields;
    } else if (fields.size() == table.columns_.size()) {
      table.rows_.push_back(fields);
      table.lines_.push_back(record_line);
    } else if (!(fields.size() == 1 && fields[0].empty())) {  // blank lines are skipped
      fail("{}:{}: {} fields where the header (line 1) has {} columns", name, record_line,
           fields.size(), table.columns_.size());
    }
    fields.clear();
    any = false;
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (!any) record_line = line;
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        if (c == '\n') ++line;
        field += c;
      }
      continue;
    }
    any = true;
    if (c == '"') {
      LONGNET_CHECK(field.empty(), "{}:{}: column {}: a quote inside an unquoted field", name, line,
                    fields.size() + 1);
      quoted = true;
    } else if (c == ',') {
      fields.push_back(field);
      field.clear();
    } else if (c == '\n') {
      end_record();
      ++line;
    } else if (c != '\r') {
      field += c;
    }
  }
  LONGNET_CHECK(!quoted, "{}:{}: column {}: a quoted field is never closed", name, record_line,
                fields.size() + 1);
  if (any) end_record();
  LONGNET_CHECK(!table.columns_.empty(), "{}: empty file: expected a header line", name);
  return table;
}

bool CsvTable::has_column(std::string_view column) const {
  return std::ranges::find(columns_, column) != columns_.end();
}

std::size_t CsvTable::column_index(std::string_view column) const {
  const auto it = std::ranges::find(columns_, column);
  LONGNET_CHECK(it != columns_.end(), "{}:1: no column '{}' in the header ({})", name_, column,
                fmt::join(columns_, ","));
  return static_cast<std::size_t>(it - columns_.begin());
}

std::string CsvTable::where(std::size_t row) const {
  return fmt::format("{}:{}", name_, lines_.at(row));
}

const std::string& CsvTable::text(std::size_t row, std::string_view column) const {
  return rows_.at(row)[column_index(column)];
}

double CsvTable::number(std::size_t row, std::string_view column) const {
  const std::string& cell = text(row, column);
  double value = 0;
  const auto [end, error] = std::from_chars(cell.data(), cell.data() + cell.size(), value);
  LONGNET_CHECK(!cell.empty() && error == std::errc() && end == cell.data() + cell.size() &&
                    std::isfinite(value),
                "{}: column '{}': '{}' is not a finite number", where(row), column, cell);
  return value;
}

int64_t CsvTable::integer(std::size_t row, std::string_view column) const {
  const std::string& cell = text(row, column);
  int64_t value = 0;
  const auto [end, error] = std::from_chars(cell.data(), cell.data() + cell.size(), value);
  LONGNET_CHECK(!cell.empty() && error == std::errc() && end == cell.data() + cell.size(),
                "{}: column '{}': '{}' is not an integer", where(row), column, cell);
  return value;
}

std::vector<int64_t> CsvTable::integer_list(std::size_t row, std::string_view column) const {
  std::istringstream words(text(row, column));
  std::vector<int64_t> values;
  for (std::string word; words >> word;) {
    int64_t value = 0;
    const auto [end, error] = std::from_chars(word.data(), word.data() + word.size(), value);
    LONGNET_CHECK(error == std::errc() && end == word.data() + word.size(),
                  "{}: column '{}': '{}' is not an integer in the list '{}'", where(row), column,
                  word, text(row, column));
    values.push_back(value);
  }
  LONGNET_CHECK(!values.empty(), "{}: column '{}': an empty list", where(row), column);
  return values;
}

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
    row.ranks = static_cast<int>(table.integer(i, "ranks"));
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
    s.ranks = static_cast<int>(table.integer(i, "ranks"));
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

namespace {

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
