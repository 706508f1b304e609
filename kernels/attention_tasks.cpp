#include "kernels/attention_tasks.hpp"

#include <algorithm>

namespace longnet {

PatternTasks segment_tasks(const DilationPattern& pattern, HeadOffsets scheme,
                           const AttentionShape& local, int64_t first_token, int64_t total_tokens,
                           const void* k, const void* v, std::size_t element_bytes, float* dk,
                           float* dv) {
  const int64_t w = pattern.segment_length, r = pattern.dilation_rate;
  const int64_t end_token = first_token + local.tokens;
  PatternTasks work;
  work.query_row_stride = r * local.heads * local.head_dim;
  work.lse_row_stride = r * local.heads;
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
        if (length <= off) continue;  // a short last segment may hold no row of this head
        const int64_t count = (length - off + r - 1) / r;
        const int64_t row = (b * local.tokens + start - first_token + off) * local.heads + h;
        const int64_t base = row * local.head_dim;
        const std::size_t byte_offset = static_cast<std::size_t>(base) * element_bytes;
        SegmentTask task;
        task.queries = {base, row, count, 0};
        task.keys = {k_bytes + byte_offset, v_bytes + byte_offset, dk ? dk + base : nullptr,
                     dv ? dv + base : nullptr, work.query_row_stride, count};
        work.tasks.push_back(task);
      }
    }
  }
  return work;
}

}  // namespace longnet
