// The configuration of LongNet dilated attention and its validation.
//
// A configuration is a list of patterns (segment length w, dilation rate r), a
// causal flag, a softmax scale and a head-offset scheme. For pattern (w, r) and
// head h, query i may attend key j when
//   floor(i / w) == floor(j / w)                      (same segment; segments start at 0,
//                                                      the last one may be short)
//   (i mod w) mod r == off(h) == (j mod w) mod r      (both on the head's dilation offset)
//   j <= i                                            (when causal)
// The outputs of all patterns are mixed with weights proportional to their softmax
// denominators, which is the same as one softmax over the union (with multiplicity)
// of every pattern's allowed keys. See kernels/cpu/dilated_attention_cpu.cpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace longnet {

// How a head picks its dilation offset within each segment.
enum class HeadOffsets {
  interleaved,  // the paper: off(h) = h mod r
  grouped,      // microsoft/torchscale: off(h) = floor(h / ceil(H / r))
};

std::string_view head_offsets_name(HeadOffsets scheme);
// Parses "interleaved" or "grouped"; anything else is an error naming both choices.
HeadOffsets parse_head_offsets(std::string_view text);

struct DilationPattern {
  int64_t segment_length = 0;  // w > 0
  int64_t dilation_rate = 1;   // 1 <= r <= w
};

struct DilatedAttentionConfig {
  std::vector<DilationPattern> patterns;
  bool causal = false;
  std::optional<double> scale;  // softmax scale; default 1 / sqrt(head_dim)
  HeadOffsets head_offsets = HeadOffsets::interleaved;

  // Builds patterns from the two parallel lists used by files and the command line.
  static DilatedAttentionConfig from_lists(const std::vector<int64_t>& segment_lengths,
                                           const std::vector<int64_t>& dilation_rates, bool causal,
                                           HeadOffsets head_offsets,
                                           std::optional<double> scale = std::nullopt);
  // "w=2048,4096 r=1,2 causal interleaved" style one-line description.
  std::string describe() const;
};

// Sizes of q, k, v, o, all laid out as [batch, tokens, heads, head_dim], row-major.
// Grouped-query attention: k and v may have fewer heads than q, kv_heads = Hkv dividing
// H, laid out [batch, tokens, Hkv, head_dim]; query head h reads kv head h / (H / Hkv)
// (kv_head()), with its own dilation offset off(h). kv_heads = 0 means Hkv = H (multi-
// head attention); Hkv = 1 is multi-query attention.
struct AttentionShape {
  int64_t batch = 0;
  int64_t tokens = 0;
  int64_t heads = 0;
  int64_t head_dim = 0;
  int64_t kv_heads = 0;  // 0: as many as heads

  int64_t elements() const { return batch * tokens * heads * head_dim; }
  int64_t rows() const { return batch * tokens * heads; }  // elements of lse
  int64_t key_heads() const { return kv_heads > 0 ? kv_heads : heads; }
  int64_t group_size() const { return heads / key_heads(); }  // query heads per kv head
  int64_t kv_head(int64_t head) const { return head / group_size(); }
  int64_t key_elements() const { return batch * tokens * key_heads() * head_dim; }
  std::string describe() const;  // "B=1 N=1000 H=6 D=64", with " Hkv=2" when grouped
};

// Throws Error naming the problem: empty pattern list, w <= 0, r <= 0, r > w,
// non-finite or non-positive scale.
void validate_config(const DilatedAttentionConfig& config);
// Throws Error for non-positive sizes and for kv heads that do not divide the heads.
void validate_shape(const AttentionShape& shape);

// off(h) for one pattern's rate r under `scheme`; always in [0, r).
int64_t head_offset(HeadOffsets scheme, int64_t head, int64_t heads, int64_t rate);

// The scale actually used: config.scale or 1 / sqrt(head_dim).
double softmax_scale(const DilatedAttentionConfig& config, int64_t head_dim);

// Number of allowed (query, key) pairs, summed over patterns (a pair counts once per
// pattern that allows it), batch and heads.
// Exact, in closed form per segment; used for effective-FLOP figures and counters.
double allowed_pairs(const DilatedAttentionConfig& config, const AttentionShape& shape);

// Effective FLOPs, the convention of bench/README.md: 4·D per allowed pair and head
// in the forward (QK^T and PV), 2.5 times that in the backward.
double forward_flops(const DilatedAttentionConfig& config, const AttentionShape& shape);
double backward_flops(const DilatedAttentionConfig& config, const AttentionShape& shape);

}  // namespace longnet
