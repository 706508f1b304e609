// The cost model's arithmetic; bench/cost_model.hpp says what is exact and what is modelled,
// The cost model section of bench/README.md writes every formula out.
#include "bench/cost_model.hpp"

#include <algorithm>
#include <limits>

#include "model/sequence_parallel_plan.hpp"
#include "runtime/error.hpp"

namespace longnet::bench {
namespace {

// Effective FLOPs per pair: 4 D forward (q.k and p.v), 2.5 times that backward; the
// convention of forward_flops / backward_flops.
constexpr double kForwardFlopsPerPairAndDim = 4.0;
constexpr double kBackwardOverForward = 2.5;

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

}  // namespace longnet::bench
