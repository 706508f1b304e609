#include "kernels/attention_tasks.hpp"

#include "kernels/philox.hpp"
#include "runtime/error.hpp"

#include <algorithm>

namespace longnet {

void check_dropout_probability(float p) {
  LONGNET_CHECK(p >= 0.0f && p < 1.0f,
                "dropout_p must be in [0, 1), got {}; use 0 to turn dropout off", p);
}

int64_t relative_bias_rows(const DilationPattern& pattern) {
  return (pattern.segment_length + pattern.dilation_rate - 1) / pattern.dilation_rate;
}

namespace {

// Each per-head list of `extras` must be empty or name every head.
void check_task_extras(const TaskExtras& extras, int64_t heads) {
  const auto fits = [heads](std::size_t n) { return n == 0 || static_cast<int64_t>(n) == heads; };
  LONGNET_CHECK(
      fits(extras.bias.size()) && fits(extras.dbias.size()) && fits(extras.dropout_keys.size()),
      "segment_tasks: TaskExtras lists must be empty or hold one entry per head ({}); "
      "got {} bias, {} dbias, {} dropout keys",
      heads, extras.bias.size(), extras.dbias.size(), extras.dropout_keys.size());
}

}  // namespace

namespace {

// Appends the task of head h in one segment [start, start + length) of batch row b: the
// head's selected rows attend all of them. Shared by segment_tasks and document_tasks.
struct SegmentEmitter {
  const DilationPattern& pattern;
  HeadOffsets scheme;
  const AttentionShape& local;
  int64_t first_token;
  const unsigned char* k_bytes;
  const unsigned char* v_bytes;
  std::size_t element_bytes;
  float* dk;
  float* dv;
  const TaskExtras& extras;
  PatternTasks& work;

  void operator()(int64_t b, int64_t h, int64_t start, int64_t length) const {
    const int64_t r = pattern.dilation_rate;
    const int64_t kv_heads = local.key_heads(), group = local.group_size();
    const int64_t key_row_stride = r * kv_heads * local.head_dim;
    const int64_t accumulator_elements = local.key_elements();  // one per member of a group
    {
      const int64_t off = head_offset(scheme, h, local.heads, r);
      if (length <= off) return;  // a short segment may hold no row of this head
      const int64_t count = (length - off + r - 1) / r;
      const int64_t token = b * local.tokens + start - first_token + off;
      const int64_t row = token * local.heads + h;
      const int64_t base = row * local.head_dim;
      const int64_t key_base = (token * kv_heads + local.kv_head(h)) * local.head_dim;
      const int64_t accumulator = (h % group) * accumulator_elements + key_base;
      const std::size_t byte_offset = static_cast<std::size_t>(key_base) * element_bytes;
      SegmentTask task;
      task.queries = {base, row, count, 0};
      task.keys = {
          k_bytes + byte_offset,           v_bytes + byte_offset, dk ? dk + accumulator : nullptr,
          dv ? dv + accumulator : nullptr, key_row_stride,        count};
      task.token_origin = start + off;
      task.token_stride = r;
      if (!extras.bias.empty()) task.bias = extras.bias[static_cast<std::size_t>(h)];
      if (!extras.dbias.empty()) task.dbias = extras.dbias[static_cast<std::size_t>(h)];
      if (!extras.dropout_keys.empty()) {
        task.dropout_key = dropout_task_key(extras.dropout_keys[static_cast<std::size_t>(h)], b);
      }
      work.tasks.push_back(task);
    }
  }
};

// The tasks of one pattern over the segments for_each_segment(b, segment) names for batch
// row b (segment(start, length) for each), every head.
template <typename ForEachSegment>
PatternTasks tasks_of_segments(const DilationPattern& pattern, HeadOffsets scheme,
                               const AttentionShape& local, int64_t first_token, const void* k,
                               const void* v, std::size_t element_bytes, float* dk, float* dv,
                               const TaskExtras& extras, ForEachSegment&& for_each_segment) {
  check_task_extras(extras, local.heads);
  PatternTasks work;
  work.query_row_stride = pattern.dilation_rate * local.heads * local.head_dim;
  work.lse_row_stride = pattern.dilation_rate * local.heads;
  const SegmentEmitter emit{pattern,
                            scheme,
                            local,
                            first_token,
                            static_cast<const unsigned char*>(k),
                            static_cast<const unsigned char*>(v),
                            element_bytes,
                            dk,
                            dv,
                            extras,
                            work};
  for (int64_t b = 0; b < local.batch; ++b) {
    for (int64_t h = 0; h < local.heads; ++h) {
      for_each_segment(b, [&](int64_t start, int64_t length) { emit(b, h, start, length); });
    }
  }
  return work;
}

}  // namespace

PatternTasks segment_tasks(const DilationPattern& pattern, HeadOffsets scheme,
                           const AttentionShape& local, int64_t first_token, int64_t total_tokens,
                           const void* k, const void* v, std::size_t element_bytes, float* dk,
                           float* dv, const TaskExtras& extras) {
  const int64_t w = pattern.segment_length;
  const int64_t end_token = first_token + local.tokens;
  // Segments start at multiples of w; the first wholly inside starts at or after first_token.
  const int64_t first_start = (first_token + w - 1) / w * w;
  return tasks_of_segments(pattern, scheme, local, first_token, k, v, element_bytes, dk, dv, extras,
                           [&](int64_t, const auto& segment) {
                             for (int64_t start = first_start; start < end_token; start += w) {
                               const int64_t length = std::min(w, total_tokens - start);
                               if (start + length > end_token) break;  // spans past: not local
                               segment(start, length);
                             }
                           });
}

void check_document_lengths(const DocumentLengths& documents, const AttentionShape& shape) {
  LONGNET_CHECK(static_cast<int64_t>(documents.size()) == shape.batch,
                "document_lengths has {} rows, expected one per batch element (B = {})",
                documents.size(), shape.batch);
  for (std::size_t b = 0; b < documents.size(); ++b) {
    int64_t sum = 0;
    bool ended = false;
    for (std::size_t i = 0; i < documents[b].size(); ++i) {
      const int64_t length = documents[b][i];
      LONGNET_CHECK(length >= 0, "document_lengths row {}: length {} at position {} is negative", b,
                    length, i);
      LONGNET_CHECK(length <= shape.tokens - sum,
                    "document_lengths row {}: length {} at position {} runs past the sequence's "
                    "N = {} tokens (the row's lengths must add up to N)",
                    b, length, i, shape.tokens);
      LONGNET_CHECK(!ended || length == 0,
                    "document_lengths row {}: length {} at position {} follows a zero; a row with "
                    "fewer documents ends in zeros",
                    b, length, i);
      ended = ended || length == 0;
      sum += length;
    }
    LONGNET_CHECK(sum == shape.tokens,
                  "document_lengths row {} sums to {}, but the sequence has N = {} tokens; the "
                  "lengths of a row's documents must add up to N",
                  b, sum, shape.tokens);
  }
}

PatternTasks document_tasks(const DilationPattern& pattern, HeadOffsets scheme,
                            const AttentionShape& shape, const DocumentLengths& documents,
                            const void* k, const void* v, std::size_t element_bytes, float* dk,
                            float* dv, const TaskExtras& extras) {
  check_document_lengths(documents, shape);
  const int64_t w = pattern.segment_length;
  return tasks_of_segments(pattern, scheme, shape, 0, k, v, element_bytes, dk, dv, extras,
                           [&](int64_t b, const auto& segment) {
                             int64_t first = 0;
                             for (const int64_t length : documents[static_cast<std::size_t>(b)]) {
                               // Segments of w tokens from the document's first token; the
                               // last ends with it.
                               for (int64_t start = first; start < first + length; start += w) {
                                 segment(start, std::min(w, first + length - start));
                               }
                               first += length;
                             }
                           });
}

void sum_group_accumulators(const float* accumulators, int64_t group, float* out, int64_t n,
                            bool accumulate) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    float sum = accumulate ? out[i] : 0.0f;
    for (int64_t j = 0; j < group; ++j) sum += accumulators[j * n + i];
    out[i] = sum;
  }
}

}  // namespace longnet
