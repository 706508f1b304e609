#include "runtime/checked_size.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <limits>

#include "runtime/error.hpp"

namespace longnet {

int64_t checked_mul(int64_t a, int64_t b, std::string_view what) {
  LONGNET_CHECK(a >= 0 && b >= 0, "{}: negative size in {} x {}", what, a, b);
  int64_t product = 0;
  LONGNET_CHECK(!__builtin_mul_overflow(a, b, &product),
                "{}: {} x {} overflows a 64-bit size; no machine can hold it", what, a, b);
  return product;
}

int64_t checked_element_count(std::span<const int64_t> extents, std::string_view what) {
  int64_t count = 1;
  for (int64_t extent : extents) {
    LONGNET_CHECK(extent >= 0, "{}: negative extent in shape [{}]", what, fmt::join(extents, ", "));
    LONGNET_CHECK(!__builtin_mul_overflow(count, extent, &count),
                  "{}: shape [{}] has more elements than a 64-bit count holds (the product of "
                  "its dimensions overflows); no machine can hold it",
                  what, fmt::join(extents, ", "));
  }
  return count;
}

std::optional<int64_t> checked_product(std::initializer_list<NamedSize> factors, std::string* why) {
  int64_t product = 1;
  bool fits = true;
  for (const NamedSize& f : factors) {
    if (f.value < 0 || __builtin_mul_overflow(product, f.value, &product)) {
      fits = false;
      break;
    }
  }
  if (fits) return product;
  if (why != nullptr) {
    std::string text;
    for (const NamedSize& f : factors) {
      text += fmt::format("{}{} ({})", text.empty() ? "" : " x ", f.name, f.value);
    }
    *why = text + " overflows a 64-bit size";
  }
  return std::nullopt;
}

int64_t checked_byte_count(int64_t elements, int64_t element_bytes, std::string_view what) {
  return checked_mul(elements, element_bytes, what);
}

int64_t physical_memory_bytes() {
  // Asked once: every tensor's construction checks against it.
  static const int64_t bytes = [] {
    const long pages = ::sysconf(_SC_PHYS_PAGES);
    const long page_size = ::sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page_size <= 0) return int64_t{0};
    int64_t product = 0;
    if (__builtin_mul_overflow(static_cast<int64_t>(pages), static_cast<int64_t>(page_size),
                               &product)) {
      return std::numeric_limits<int64_t>::max();
    }
    return product;
  }();
  return bytes;
}

void check_host_allocatable(int64_t bytes, std::string_view what) {
  const int64_t memory = physical_memory_bytes();
  if (memory == 0) return;
  LONGNET_CHECK(bytes <= memory,
                "{} needs {} bytes ({:.1f} GiB) but this machine has {:.1f} GiB of memory; use a "
                "smaller shape or more ranks",
                what, bytes, static_cast<double>(bytes) / (1 << 30),
                static_cast<double>(memory) / (1 << 30));
}

}  // namespace longnet
