#include "model/sequence_parallel_attention.hpp"

#include "kernels/philox.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <limits>
#include <optional>
#include <span>

namespace longnet {
namespace {

class Stopwatch {
 public:
  explicit Stopwatch(double& total) : total_(total), start_(std::chrono::steady_clock::now()) {}
  ~Stopwatch() {
    total_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  Stopwatch(const Stopwatch&) = delete;
  Stopwatch& operator=(const Stopwatch&) = delete;

 private:
  double& total_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace

// One spanning segment this rank belongs to. Rows are counted per member m (in token
// order) and head h; the gathered keys of head h are the concatenation over members,
// which is the segment's full dilated sequence in order.
struct SequenceParallelAttention::Group {
  SpanningSegment segment;
  std::unique_ptr<Communicator> comm;
  int me = 0;                              // this rank's position in the group
  std::vector<std::vector<int64_t>> rows;  // rows[m][h]
  std::vector<int64_t> head_rows;          // M_h = sum over members of rows[m][h]
  std::vector<int64_t> head_prefix;        // sum of M_h' for h' < h
  int64_t total_rows = 0;                  // sum of M_h
  std::vector<int64_t> member_elements;    // k and v elements member m contributes
  std::vector<int64_t> member_offset;      // prefix sums of member_elements
  std::vector<int64_t> first_index;        // per head: dilated index of my first row
  std::vector<int64_t> member_head_start;  // [m * H + h]: first t of member m's rows
  Tensor keys, values;                     // gathered: [B, total_rows, D], by head
  Tensor key_grads, value_grads;           // same layout, backward only

  int64_t gathered_row(int64_t b, int64_t h, int64_t t) const {
    return b * total_rows + head_prefix[h] + t;
  }

  // fn(b, h, t, local_row) for each row this rank selects, in the order of its block of
  // the gather (batch, head, dilated index); local_row indexes [B, shard, H] arrays.
  template <typename Fn>
  void for_each_own_row(const AttentionShape& local, int64_t shard_begin, int64_t rate,
                        HeadOffsets scheme, Fn&& fn) const {
    for (int64_t b = 0; b < local.batch; ++b) {
      for (int64_t h = 0; h < local.heads; ++h) {
        const int64_t off = head_offset(scheme, h, local.heads, rate);
        for (int64_t t = 0; t < rows[me][h]; ++t) {
          const int64_t token = segment.start + off + (first_index[h] + t) * rate;
          fn(b, h, t, (b * local.tokens + token - shard_begin) * local.heads + h);
        }
      }
    }
  }

  // fn(first, n) for each (batch, head) run of member m's rows, in the order of its block
  // of the gather: n rows that sit at gathered rows [first, first + n).
  template <typename Fn>
  void for_each_member_block(int m, int64_t batch, int64_t heads, Fn&& fn) const {
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t h = 0; h < heads; ++h) {
        fn(gathered_row(b, h, member_head_start[m * heads + h]), rows[m][h]);
      }
    }
  }
};

struct SequenceParallelAttention::Pattern {
  DilationPattern pattern;
  std::vector<Group> groups;  // in token order
};

SequenceParallelAttention::SequenceParallelAttention(Communicator& world,
                                                     DilatedAttentionConfig config,
                                                     AttentionShape global_shape,
                                                     DilatedAttentionOp& kernels)
    : world_(world), config_(std::move(config)), global_(global_shape), kernels_(kernels) {
  validate_config(config_);
  validate_shape(global_);
  const int rank = world_.rank(), size = world_.size();
  shard_ = shard_of(global_.tokens, size, rank);
  local_ = {global_.batch, shard_.size(), global_.heads, global_.head_dim, global_.kv_heads};
  heads_ = {global_.batch, shard_.size(), global_.heads, global_.head_dim};

  for (const DilationPattern& p : config_.patterns) {
    Pattern pattern{p, {}};
    const auto spanning = spanning_segments(global_.tokens, size, p);
    // Two splits per pattern (collective over the world): each rank joins at most one
    // group per round (see sequence_parallel_plan.hpp).
    for (int round = 0; round < 2; ++round) {
      const SpanningSegment* mine = nullptr;
      for (const auto& s : spanning) {
        if (s.round == round && s.contains(rank)) mine = &s;
      }
      const std::optional<int> color =
          mine ? std::optional<int>(static_cast<int>(mine->index)) : std::nullopt;
      std::string name =
          mine ? fmt::format("w{}r{}.seg{}.ranks{}-{}", p.segment_length, p.dilation_rate,
                             mine->index, mine->first_rank, mine->last_rank)
               : fmt::format("w{}r{}.round{}.none", p.segment_length, p.dilation_rate, round);
      auto comm = world_.split(color, rank, name);
      if (mine == nullptr) continue;

      Group g;
      g.segment = *mine;
      g.comm = std::move(comm);
      g.me = rank - mine->first_rank;
      LONGNET_CHECK(g.comm && g.comm->size() == mine->last_rank - mine->first_rank + 1,
                    "the group of {} has {} ranks, expected {}", name, g.comm ? g.comm->size() : 0,
                    mine->last_rank - mine->first_rank + 1);
      const int members = g.comm->size();
      const int64_t heads = global_.heads, r = p.dilation_rate;
      g.rows.assign(members, std::vector<int64_t>(heads, 0));
      g.head_rows.assign(heads, 0);
      g.first_index.assign(heads, 0);
      g.member_head_start.assign(static_cast<std::size_t>(members) * heads, 0);
      for (int m = 0; m < members; ++m) {
        const Shard s = shard_of(global_.tokens, size, mine->first_rank + m);
        const int64_t a = std::max(s.begin, mine->start), b = std::min(s.end, mine->end);
        int64_t elements = 0;
        for (int64_t h = 0; h < heads; ++h) {
          const int64_t off = head_offset(config_.head_offsets, h, heads, r);
          g.member_head_start[m * heads + h] = g.head_rows[h];
          g.rows[m][h] = selected_rows(mine->start, a, b, r, off);
          g.head_rows[h] += g.rows[m][h];
          elements += g.rows[m][h];
          if (m == g.me) g.first_index[h] = first_selected_index(mine->start, a, r, off);
        }
        g.member_elements.push_back(2 * elements * global_.batch * global_.head_dim);
      }
      g.head_prefix.assign(heads, 0);
      for (int64_t h = 1; h < heads; ++h)
        g.head_prefix[h] = g.head_prefix[h - 1] + g.head_rows[h - 1];
      g.total_rows = g.head_prefix[heads - 1] + g.head_rows[heads - 1];
      g.member_offset.assign(members + 1, 0);
      for (int m = 0; m < members; ++m)
        g.member_offset[m + 1] = g.member_offset[m] + g.member_elements[m];
      const Shape gathered{global_.batch, g.total_rows, global_.head_dim};
      g.keys = Tensor(gathered, DType::float32);
      g.values = Tensor(gathered, DType::float32);
      pattern.groups.push_back(std::move(g));
    }
    std::sort(pattern.groups.begin(), pattern.groups.end(),
              [](const Group& x, const Group& y) { return x.segment.start < y.segment.start; });
    patterns_.push_back(std::move(pattern));
  }
}

SequenceParallelAttention::~SequenceParallelAttention() = default;

void SequenceParallelAttention::reset_counters() {
  for (Pattern& pattern : patterns_) {
    for (Group& g : pattern.groups) g.comm->reset_counters();
  }
  timing_ = {};
}

std::vector<PatternTraffic> SequenceParallelAttention::traffic() const {
  std::vector<PatternTraffic> result;
  for (const Pattern& pattern : patterns_) {
    PatternTraffic t;
    t.pattern =
        fmt::format("w={} r={}", pattern.pattern.segment_length, pattern.pattern.dilation_rate);
    for (const Group& g : pattern.groups) {
      const CommTraffic gather = g.comm->counters().total(CollectiveKind::all_gather);
      const CommTraffic scatter = g.comm->counters().total(CollectiveKind::reduce_scatter);
      t.gather_sent += gather.bytes_sent;
      t.gather_received += gather.bytes_received;
      t.scatter_sent += scatter.bytes_sent;
      t.scatter_received += scatter.bytes_received;
      t.gather_calls += gather.calls;
      t.scatter_calls += scatter.calls;
    }
    result.push_back(t);
  }
  return result;
}

AttentionParams SequenceParallelAttention::base_params() const {
  AttentionParams params;
  params.head_dim = global_.head_dim;
  params.scale = static_cast<float>(softmax_scale(config_, global_.head_dim));
  params.causal = config_.causal;
  return params;
}

// Tasks for the segments inside this shard (no communication), then the spanning ones.
PatternTasks SequenceParallelAttention::local_tasks(const Pattern& pattern, const void* k,
                                                    const void* v, float* dk, float* dv,
                                                    const TaskExtras& extras) const {
  return segment_tasks(pattern.pattern, config_.head_offsets, heads_, shard_.begin, global_.tokens,
                       k, v, sizeof(float), dk, dv, extras);
}

// Tasks for the spanning segments: this rank's rows of each (batch, head) attend the
// whole gathered dilated sequence, from their own dilated index on (causal masking).
void SequenceParallelAttention::append_spanning_tasks(Pattern& pattern, bool with_gradients,
                                                      const TaskExtras& extras,
                                                      std::vector<SegmentTask>& tasks) const {
  const int64_t d = heads_.head_dim, r = pattern.pattern.dilation_rate;
  for (Group& g : pattern.groups) {
    g.for_each_own_row(heads_, shard_.begin, r, config_.head_offsets,
                       [&](int64_t b, int64_t h, int64_t t, int64_t row) {
                         if (t != 0) return;  // one task per (batch, head), from its first row
                         const int64_t key0 = g.gathered_row(b, h, 0) * d;
                         SegmentTask task;
                         task.queries = {row * d, row, g.rows[g.me][h], g.first_index[h]};
                         task.keys = {g.keys.data<float>() + key0,
                                      g.values.data<float>() + key0,
                                      with_gradients ? g.key_grads.data<float>() + key0 : nullptr,
                                      with_gradients ? g.value_grads.data<float>() + key0 : nullptr,
                                      d,
                                      g.head_rows[h]};
                         // Global positions of the segment's dilated indices, and the
                         // bias and dropout key of this head, as segment_tasks sets them.
                         task.token_origin = g.segment.start +
                                             head_offset(config_.head_offsets, h, heads_.heads, r);
                         task.token_stride = r;
                         const auto hh = static_cast<std::size_t>(h);
                         if (!extras.bias.empty()) task.bias = extras.bias[hh];
                         if (!extras.dbias.empty()) task.dbias = extras.dbias[hh];
                         if (!extras.dropout_keys.empty()) {
                           task.dropout_key = dropout_task_key(extras.dropout_keys[hh], b);
                         }
                         tasks.push_back(task);
                       });
  }
}

// Packs this rank's selected rows of every group's segment, all-gathers them, and lays
// the result out by head in g.keys, g.values.
void SequenceParallelAttention::gather_keys(Pattern& pattern, const Tensor& k, const Tensor& v) {
  const int64_t heads = heads_.heads, d = heads_.head_dim, r = pattern.pattern.dilation_rate;
  for (Group& g : pattern.groups) {
    const int members = static_cast<int>(g.rows.size());
    std::vector<float> send(static_cast<std::size_t>(g.member_elements[g.me]));
    std::vector<float> received(static_cast<std::size_t>(g.member_offset[members]));
    {
      Stopwatch watch(timing_.compute_seconds);
      float* out = send.data();
      for (const Tensor* source : {&k, &v}) {
        const float* src = source->data<float>();
        g.for_each_own_row(heads_, shard_.begin, r, config_.head_offsets,
                           [&](int64_t, int64_t, int64_t, int64_t row) {
                             std::memcpy(out, src + row * d, sizeof(float) * d);
                             out += d;
                           });
      }
    }
    {
      Stopwatch watch(timing_.communication_seconds);
      g.comm->all_gatherv<float>(send, received, g.member_elements, "k, v");
    }

    Stopwatch watch(timing_.compute_seconds);
    for (int m = 0; m < members; ++m) {
      const float* in = received.data() + g.member_offset[m];
      for (Tensor* target : {&g.keys, &g.values}) {
        float* dst = target->data<float>();
        g.for_each_member_block(m, heads_.batch, heads, [&](int64_t first, int64_t n) {
          std::memcpy(dst + first * d, in, sizeof(float) * n * d);
          in += n * d;
        });
      }
    }
  }
}

void SequenceParallelAttention::forward(const Tensor& q, const Tensor& k, const Tensor& v,
                                        Tensor& o, Tensor& lse) {
  PatternOperands operands;
  operands.q = &q;
  operands.k = &k;
  const std::vector<PatternOperands> same(patterns_.size(), operands);
  forward(same, v, o, lse);
}

void SequenceParallelAttention::backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                         const Tensor& o, const Tensor& lse, const Tensor& dout,
                                         Tensor& dq, Tensor& dk, Tensor& dv) {
  check_tensor(dq, qkv_shape(local_), "dq (this rank's shard)");
  check_tensor(dk, kv_shape(local_), "dk (this rank's shard)");
  dq.fill(0.0);
  dk.fill(0.0);
  PatternOperands operands;
  operands.q = &q;
  operands.k = &k;
  operands.dq = &dq;
  operands.dk = &dk;
  const std::vector<PatternOperands> same(patterns_.size(), operands);
  backward(same, v, o, lse, dout, dv);
}

void SequenceParallelAttention::check_patterns(std::span<const PatternOperands> patterns,
                                               bool backward) const {
  LONGNET_CHECK(patterns.size() == patterns_.size(),
                "sequence-parallel attention: {} pattern operands for a config of {} patterns",
                patterns.size(), patterns_.size());
  for (std::size_t p = 0; p < patterns.size(); ++p) {
    const PatternOperands& in = patterns[p];
    LONGNET_CHECK(in.q != nullptr && in.k != nullptr && (!backward || (in.dq && in.dk)),
                  "sequence-parallel attention: pattern {} is missing q, k{}", p,
                  backward ? ", dq or dk" : "");
    check_tensor(*in.q, qkv_shape(heads_),
                 fmt::format("q of pattern {} (this rank's shard)", p).c_str());
    check_tensor(*in.k, qkv_shape(heads_),
                 fmt::format("k of pattern {} (this rank's shard)", p).c_str());
    if (backward) {
      check_tensor(*in.dq, qkv_shape(heads_), fmt::format("dq of pattern {}", p).c_str());
      check_tensor(*in.dk, qkv_shape(heads_), fmt::format("dk of pattern {}", p).c_str());
    }
  }
}

namespace {

// [B, T, Hkv, D] -> [B, T, H, D]: query head h's copy of kv head h / (H / Hkv).
Tensor copies_per_query_head(const Tensor& kv, int64_t heads) {
  const int64_t rows = kv.dim(0) * kv.dim(1), kv_heads = kv.dim(2), d = kv.dim(3);
  const int64_t group = heads / kv_heads;
  Tensor out({kv.dim(0), kv.dim(1), heads, d}, DType::float32);
  const float* in = kv.data<float>();
  float* o = out.data<float>();
#pragma omp parallel for schedule(static)
  for (int64_t row = 0; row < rows; ++row) {
    for (int64_t h = 0; h < heads; ++h) {
      std::memcpy(o + (row * heads + h) * d, in + (row * kv_heads + h / group) * d,
                  sizeof(float) * static_cast<std::size_t>(d));
    }
  }
  return out;
}

// target [B, T, Hkv, D] (+)= the sum over each kv head's query heads of grad [B, T, H, D].
void add_per_kv_head(const Tensor& grad, Tensor& target) {
  const int64_t rows = target.dim(0) * target.dim(1), kv_heads = target.dim(2), d = target.dim(3),
                heads = grad.dim(2), group = heads / kv_heads;
  const float* in = grad.data<float>();
  float* out = target.data<float>();
#pragma omp parallel for schedule(static)
  for (int64_t row = 0; row < rows; ++row) {
    for (int64_t g = 0; g < kv_heads; ++g) {
      for (int64_t e = 0; e < d; ++e) {
        float sum = out[(row * kv_heads + g) * d + e];
        for (int64_t j = 0; j < group; ++j) sum += in[(row * heads + g * group + j) * d + e];
        out[(row * kv_heads + g) * d + e] = sum;
      }
    }
  }
}

// The tensors behind a list of pattern operands, each once (patterns may share q, k).
template <typename T>
std::vector<T*> distinct(const std::vector<T*>& all) {
  std::vector<T*> once;
  for (T* t : all)
    if (std::find(once.begin(), once.end(), t) == once.end()) once.push_back(t);
  return once;
}

}  // namespace

void SequenceParallelAttention::forward(std::span<const PatternOperands> patterns, const Tensor& v,
                                        Tensor& o, Tensor& lse) {
  if (local_.group_size() == 1) return forward_heads(patterns, v, o, lse);
  check_tensor(v, kv_shape(local_), "v (this rank's shard)");
  std::vector<const Tensor*> keys;
  for (const PatternOperands& in : patterns) {
    LONGNET_CHECK(in.k != nullptr, "sequence-parallel attention: a pattern is missing k");
    check_tensor(*in.k, kv_shape(local_), "k (this rank's shard)");
    keys.push_back(in.k);
  }
  const std::vector<const Tensor*> unique = distinct(keys);
  std::vector<Tensor> copies;
  for (const Tensor* k : unique) copies.push_back(copies_per_query_head(*k, local_.heads));
  std::vector<PatternOperands> expanded(patterns.begin(), patterns.end());
  for (PatternOperands& in : expanded)
    in.k = &copies[std::find(unique.begin(), unique.end(), in.k) - unique.begin()];
  forward_heads(expanded, copies_per_query_head(v, local_.heads), o, lse);
}

void SequenceParallelAttention::backward(std::span<const PatternOperands> patterns, const Tensor& v,
                                         const Tensor& o, const Tensor& lse, const Tensor& dout,
                                         Tensor& dv) {
  if (local_.group_size() == 1) return backward_heads(patterns, v, o, lse, dout, dv);
  check_tensor(v, kv_shape(local_), "v (this rank's shard)");
  check_tensor(dv, kv_shape(local_), "dv (this rank's shard)");
  std::vector<const Tensor*> keys;
  std::vector<Tensor*> key_grads;
  for (const PatternOperands& in : patterns) {
    LONGNET_CHECK(in.k != nullptr && in.dk != nullptr,
                  "sequence-parallel attention: a pattern is missing k or dk");
    check_tensor(*in.k, kv_shape(local_), "k (this rank's shard)");
    check_tensor(*in.dk, kv_shape(local_), "dk (this rank's shard)");
    keys.push_back(in.k);
    key_grads.push_back(in.dk);
  }
  const std::vector<const Tensor*> unique_k = distinct(keys);
  const std::vector<Tensor*> unique_dk = distinct(key_grads);
  std::vector<Tensor> k_copies, dk_copies;
  for (const Tensor* k : unique_k) k_copies.push_back(copies_per_query_head(*k, local_.heads));
  for (std::size_t i = 0; i < unique_dk.size(); ++i)
    dk_copies.push_back(Tensor::zeros(qkv_shape(heads_)));
  std::vector<PatternOperands> expanded(patterns.begin(), patterns.end());
  for (PatternOperands& in : expanded) {
    in.k = &k_copies[std::find(unique_k.begin(), unique_k.end(), in.k) - unique_k.begin()];
    in.dk = &dk_copies[std::find(unique_dk.begin(), unique_dk.end(), in.dk) - unique_dk.begin()];
  }
  Tensor dv_copies(qkv_shape(heads_), DType::float32);
  backward_heads(expanded, copies_per_query_head(v, local_.heads), o, lse, dout, dv_copies);
  for (std::size_t i = 0; i < unique_dk.size(); ++i) add_per_kv_head(dk_copies[i], *unique_dk[i]);
  dv.fill(0.0);
  add_per_kv_head(dv_copies, dv);
}

void SequenceParallelAttention::forward_heads(std::span<const PatternOperands> patterns,
                                              const Tensor& v, Tensor& o, Tensor& lse) {
  check_patterns(patterns, /*backward=*/false);
  check_tensor(v, qkv_shape(heads_), "v (this rank's shard)");
  check_tensor(o, qkv_shape(heads_), "o (this rank's shard)");
  check_tensor(lse, lse_shape(heads_), "lse (this rank's shard)");
  o.fill(0.0);
  lse.fill(-std::numeric_limits<double>::infinity());

  AttentionParams params = base_params();
  params.o = o.data<float>();
  params.lse = lse.data<float>();
  for (std::size_t p = 0; p < patterns_.size(); ++p) {
    Pattern& pattern = patterns_[p];
    const Tensor& k = *patterns[p].k;
    params.q = patterns[p].q->data<float>();
    params.dropout_p = patterns[p].dropout_p;
    gather_keys(pattern, k, v);
    Stopwatch watch(timing_.compute_seconds);
    const TaskExtras extras = task_extras(patterns[p], pattern.pattern, heads_.heads, false);
    PatternTasks work = local_tasks(pattern, k.raw(), v.raw(), nullptr, nullptr, extras);
    append_spanning_tasks(pattern, /*with_gradients=*/false, extras, work.tasks);
    kernels_.forward_tasks(params, work);
  }
}

void SequenceParallelAttention::backward_heads(std::span<const PatternOperands> patterns,
                                               const Tensor& v, const Tensor& o, const Tensor& lse,
                                               const Tensor& dout, Tensor& dv) {
  check_patterns(patterns, /*backward=*/true);
  for (auto [t, what] :
       {std::pair{&v, "v"}, {&o, "o"}, {&dout, "do"}, {&static_cast<const Tensor&>(dv), "dv"}}) {
    check_tensor(*t, qkv_shape(heads_), fmt::format("{} (this rank's shard)", what).c_str());
  }
  check_tensor(lse, lse_shape(heads_), "lse (this rank's shard)");

  Tensor delta(lse_shape(heads_), DType::float32);
  {
    Stopwatch watch(timing_.compute_seconds);
    kernels_.output_gradient_dot(o, dout, delta);
    dv.fill(0.0);
  }
  AttentionParams params = base_params();
  params.saved_lse = lse.data<float>();
  params.dout = dout.data<float>();
  params.delta = delta.data<float>();
  const int64_t heads = heads_.heads, d = heads_.head_dim;

  for (std::size_t p = 0; p < patterns_.size(); ++p) {
    Pattern& pattern = patterns_[p];
    const Tensor& k = *patterns[p].k;
    Tensor& dk = *patterns[p].dk;
    params.q = patterns[p].q->data<float>();
    params.dq = patterns[p].dq->data<float>();
    params.dropout_p = patterns[p].dropout_p;
    gather_keys(pattern, k, v);
    const int64_t r = pattern.pattern.dilation_rate;
    {
      Stopwatch watch(timing_.compute_seconds);
      const TaskExtras extras = task_extras(patterns[p], pattern.pattern, heads_.heads, true);
      PatternTasks work = local_tasks(pattern, k.data<float>(), v.data<float>(), dk.data<float>(),
                                      dv.data<float>(), extras);
      for (Group& g : pattern.groups) {
        g.key_grads = Tensor::zeros(g.keys.shape());
        g.value_grads = Tensor::zeros(g.values.shape());
      }
      append_spanning_tasks(pattern, /*with_gradients=*/true, extras, work.tasks);
      kernels_.backward_tasks(params, work);
    }

    // Return each member's key and value gradients to it: pack by member (the gather's
    // layout), reduce-scatter (sum), add this rank's block into its dk, dv rows.
    for (Group& g : pattern.groups) {
      const int members = static_cast<int>(g.rows.size());
      std::vector<float> send(static_cast<std::size_t>(g.member_offset[members]));
      std::vector<float> mine(static_cast<std::size_t>(g.member_elements[g.me]));
      {
        Stopwatch watch(timing_.compute_seconds);
        float* out = send.data();
        for (int m = 0; m < members; ++m) {
          for (const Tensor* grads : {&g.key_grads, &g.value_grads}) {
            const float* src = grads->data<float>();
            g.for_each_member_block(m, heads_.batch, heads, [&](int64_t first, int64_t n) {
              std::memcpy(out, src + first * d, sizeof(float) * n * d);
              out += n * d;
            });
          }
        }
      }
      {
        Stopwatch watch(timing_.communication_seconds);
        g.comm->reduce_scatterv<float>(send, mine, g.member_elements, ReduceOp::sum, "dk, dv");
      }

      Stopwatch watch(timing_.compute_seconds);
      const float* in = mine.data();
      for (Tensor* target : {&dk, &dv}) {
        float* dst = target->data<float>();
        g.for_each_own_row(heads_, shard_.begin, r, config_.head_offsets,
                           [&](int64_t, int64_t, int64_t, int64_t row) {
                             for (int64_t e = 0; e < d; ++e) dst[row * d + e] += in[e];
                             in += d;
                           });
      }
    }
  }
}

}  // namespace longnet
