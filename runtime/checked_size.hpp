// Products of sizes that cannot wrap: element counts, byte counts and the like.
//
// A file that declares a shape of [1, 2^62, 4, 1] multiplies to 2^64, which wraps to 0
// in int64_t: every check downstream of a wrapped count passes and the work that follows
// (a planning loop, an allocation) runs for hours or dies in std::bad_alloc. Every
// product of sizes goes through these helpers instead, so an impossible shape is an
// Error naming its dimensions before anything is allocated.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace longnet {

// a * b, or an Error naming `what` when either is negative or the product exceeds
// int64_t.
int64_t checked_mul(int64_t a, int64_t b, std::string_view what);

// The product of `extents` (1 for none), or an Error naming `what` and every extent
// when one is negative or the product overflows int64_t.
int64_t checked_element_count(std::span<const int64_t> extents, std::string_view what);

// A size with the name a message gives it: {"data.seq_len", 8192}.
struct NamedSize {
  std::string_view name;
  int64_t value;
};

// The product of `factors`, or nullopt when one is negative or the product exceeds
// int64_t; then `why`, if given, names every factor: "data.batch_size (4) x data.seq_len
// (1099511627776) x ... overflows a 64-bit size". For callers that word their own Error
// (a config check that names the keys to lower).
std::optional<int64_t> checked_product(std::initializer_list<NamedSize> factors,
                                       std::string* why = nullptr);

// elements * element_bytes, refused like checked_mul.
int64_t checked_byte_count(int64_t elements, int64_t element_bytes, std::string_view what);

// The bytes of this machine's physical memory (0 when the system does not say).
int64_t physical_memory_bytes();

// Refuses `bytes` of host memory for `what` when it exceeds this machine's physical
// memory: a clear Error up front rather than std::bad_alloc (or the OOM killer) after
// seconds of work.
void check_host_allocatable(int64_t bytes, std::string_view what);

}  // namespace longnet
