// Products of sizes that cannot wrap around. A product of declared sizes that overflows
// int64 wraps to a small or negative number, passes every later check and fails deep
// inside (a planning loop of hours, a bad_alloc): every such product goes through here.
// (A local helper of the training code; a general one may replace it.)
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

namespace longnet {

struct NamedSize {
  std::string_view name;  // "data.seq_len"
  int64_t value;
};

// The product of `factors` (each >= 0), or nullopt when it exceeds int64; then `why`, if
// given, names every factor: "data.batch_size (4) x data.seq_len (2^40) x ... overflows".
inline std::optional<int64_t> checked_product(std::initializer_list<NamedSize> factors,
                                              std::string* why = nullptr) {
  int64_t product = 1;
  bool overflow = false;
  for (const NamedSize& f : factors) {
    if (f.value < 0 || __builtin_mul_overflow(product, f.value, &product)) overflow = true;
    if (overflow) break;
  }
  if (!overflow) return product;
  if (why != nullptr) {
    std::string text;
    for (const NamedSize& f : factors) {
      text += fmt::format("{}{} ({})", text.empty() ? "" : " x ", f.name, f.value);
    }
    *why = text + " overflows a 64-bit size";
  }
  return std::nullopt;
}

}  // namespace longnet
