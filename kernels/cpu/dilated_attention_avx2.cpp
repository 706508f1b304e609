// The avx2 copy of the CPU tile code; CMake compiles this file with the avx2 flags.
#include "kernels/cpu/isa_entry_points.hpp"
#include "kernels/philox.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#define LONGNET_CPU_ISA_NAMESPACE avx2
#include "kernels/cpu/dilated_attention_tiles.inc"
