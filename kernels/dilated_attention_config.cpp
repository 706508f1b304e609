#include "kernels/dilated_attention_config.hpp"

#include "runtime/error.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>

namespace longnet {

std::string_view head_offsets_name(HeadOffsets scheme) {
  return scheme == HeadOffsets::interleaved ? "interleaved" : "grouped";
}

HeadOffsets parse_head_offsets(std::string_view text) {
  if (text == "interleaved") return HeadOffsets::interleaved;
  if (text == "grouped") return HeadOffsets::grouped;
  fail(
      "unknown head-offset scheme '{}': use 'interleaved' (the paper, off(h) = h mod r) "
      "or 'grouped' (torchscale, off(h) = floor(h / ceil(H / r)))",
      text);
}

DilatedAttentionConfig DilatedAttentionConfig::from_lists(
    const std::vector<int64_t>& segment_lengths, const std::vector<int64_t>& dilation_rates,
    bool causal, HeadOffsets head_offsets, std::optional<double> scale) {
  LONGNET_CHECK(segment_lengths.size() == dilation_rates.size(),
                "segment_lengths has {} entries but dilation_rates has {}: give one dilation "
                "rate per segment length",
                segment_lengths.size(), dilation_rates.size());
  DilatedAttentionConfig config;
  for (std::size_t i = 0; i < segment_lengths.size(); ++i) {
    config.patterns.push_back({segment_lengths[i], dilation_rates[i]});
  }
  config.causal = causal;
  config.head_offsets = head_offsets;
  config.scale = scale;
  validate_config(config);
  return config;
}

std::string DilatedAttentionConfig::describe() const {
  std::vector<int64_t> w, r;
  for (const auto& p : patterns) {
    w.push_back(p.segment_length);
    r.push_back(p.dilation_rate);
  }
  return fmt::format("w={} r={} {} {}", fmt::join(w, ","), fmt::join(r, ","),
                     causal ? "causal" : "non-causal", head_offsets_name(head_offsets));
}

std::string AttentionShape::describe() const {
  const std::string grouped = key_heads() != heads ? fmt::format(" Hkv={}", key_heads()) : "";
  return fmt::format("B={} N={} H={} D={}{}", batch, tokens, heads, head_dim, grouped);
}

void validate_config(const DilatedAttentionConfig& config) {
  LONGNET_CHECK(!config.patterns.empty(),
                "the dilated-attention configuration has no patterns: give at least one "
                "(segment length, dilation rate) pair");
  for (std::size_t i = 0; i < config.patterns.size(); ++i) {
    const auto& p = config.patterns[i];
    LONGNET_CHECK(p.segment_length > 0, "pattern {}: segment length {} must be positive", i,
                  p.segment_length);
    LONGNET_CHECK(p.dilation_rate > 0, "pattern {}: dilation rate {} must be positive", i,
                  p.dilation_rate);
    LONGNET_CHECK(p.dilation_rate <= p.segment_length,
                  "pattern {}: dilation rate {} exceeds segment length {}: a segment must hold "
                  "at least one row per offset, so use r <= w",
                  i, p.dilation_rate, p.segment_length);
  }
  if (config.scale) {
    LONGNET_CHECK(std::isfinite(*config.scale) && *config.scale > 0,
                  "softmax scale {} must be finite and positive", *config.scale);
  }
}

void validate_shape(const AttentionShape& shape) {
  LONGNET_CHECK(shape.batch > 0 && shape.tokens > 0 && shape.heads > 0 && shape.head_dim > 0,
                "attention shape {} has a non-positive size; every extent of [B, N, H, D] must "
                "be at least 1",
                shape.describe());
  LONGNET_CHECK(shape.kv_heads >= 0 && shape.heads % shape.key_heads() == 0,
                "attention shape {}: k and v have {} heads, which must divide q's {} heads "
                "(grouped-query attention: each kv head serves H / Hkv query heads)",
                shape.describe(), shape.kv_heads, shape.heads);
}

int64_t head_offset(HeadOffsets scheme, int64_t head, int64_t heads, int64_t rate) {
  if (scheme == HeadOffsets::interleaved) return head % rate;
  const int64_t heads_per_offset = (heads + rate - 1) / rate;
  return head / heads_per_offset;
}

double softmax_scale(const DilatedAttentionConfig& config, int64_t head_dim) {
  return config.scale.value_or(1.0 / std::sqrt(static_cast<double>(head_dim)));
}

double allowed_pairs(const DilatedAttentionConfig& config, const AttentionShape& shape) {
  double pairs = 0;
  for (const auto& p : config.patterns) {
    const int64_t w = std::min(p.segment_length, shape.tokens);
    for (int64_t h = 0; h < shape.heads; ++h) {
      const int64_t off = head_offset(config.head_offsets, h, shape.heads, p.dilation_rate);
      for (int64_t start = 0; start < shape.tokens; start += p.segment_length) {
        const int64_t length = std::min(w, shape.tokens - start);
        const double m =
            length > off
                ? static_cast<double>((length - off + p.dilation_rate - 1) / p.dilation_rate)
                : 0.0;
        pairs += config.causal ? m * (m + 1) / 2 : m * m;
      }
    }
  }
  return pairs * static_cast<double>(shape.batch);
}

double forward_flops(const DilatedAttentionConfig& config, const AttentionShape& shape) {
  return 4.0 * static_cast<double>(shape.head_dim) * allowed_pairs(config, shape);
}

double backward_flops(const DilatedAttentionConfig& config, const AttentionShape& shape) {
  return 2.5 * forward_flops(config, shape);
}

}  // namespace longnet
