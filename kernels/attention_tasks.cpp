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

PatternTasks segment_tasks(const DilationPattern& pattern, HeadOffsets scheme,
                           const AttentionShape& local, int64_t first_token, int64_t total_tokens,
                           const void* k, const void* v, std::size_t element_bytes, float* dk,
                           float* dv, const TaskExtras& extras) {
  check_task_extras(extras, local.heads);
  const int64_t w = pattern.segment_length, r = pattern.dilation_rate;
  const int64_t end_token = first_token + local.tokens;
  PatternTasks work;
  work.query_row_stride = r * local.heads * local.head_dim;
  work.lse_row_stride = r * local.heads;
  const int64_t kv_heads = local.key_heads(), group = local.group_size();
  const int64_t key_row_stride = r * kv_heads * local.head_dim;
  const int64_t accumulator_elements = local.key_elements();  // one per member of a group
  const auto* k_bytes = static_cast<const unsigned char*>(k);
  const auto* v_bytes = static_cast<const unsigned char*>(v);
  // Segments start at multiples of w; the first wholly inside starts at or after first_token.
  const int64_t first_start = (first_token + w - 1) / w * w;
  for (int64_t b = 0; b < local.batch; ++b) {
    for (int64_t h = 0; h < local.heads; ++h) {
      const int64_t off = head_offset(scheme, h, local.heads, r);
      for (int64_t start = first_start; start < end_token; start += w) {
        const int64_t length = std::min(w, total_tokens - start);
        if (start + length > end_token) break;  // spans past this range: not local
        if (length <= off) continue;            // a short last segment may hold no row of this head
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
  }
  return work;
}

}  // namespace longnet
