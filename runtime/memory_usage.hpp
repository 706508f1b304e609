// Process memory figures for reports (Linux: getrusage).
#pragma once

#include <cstdint>

namespace longnet {

// Peak resident set size of this process so far, in bytes.
int64_t peak_resident_bytes();

}  // namespace longnet
