// Which vector instruction set the CPU kernels run with.
//
// The tile code (dilated_attention_tiles.inc) is compiled once per instruction set,
// each copy in its own namespace with its own compiler flags, and chosen at run time:
// the best the processor supports, or the one named by LONGNET_CPU_ISA (so tests
// and benchmarks can exercise every copy on one machine).
#pragma once

#include <optional>
#include <string_view>
#include <vector>

namespace longnet {

enum class CpuIsa { generic, avx2, avx512 };

std::string_view cpu_isa_name(CpuIsa isa);
// Parses "generic", "avx2" or "avx512"; anything else is an error listing the choices.
CpuIsa parse_cpu_isa(std::string_view text);
// A command line's --isa: empty means "not given" (nothing: the default), else parse_cpu_isa.
std::optional<CpuIsa> parse_cpu_isa_option(std::string_view text);

// Whether this build contains the copy for `isa` and this processor can run it.
bool cpu_isa_available(CpuIsa isa);
// Every available ISA, best last.
std::vector<CpuIsa> available_cpu_isas();
// LONGNET_CPU_ISA when set (an error if this machine cannot run it), else the best available.
CpuIsa default_cpu_isa();

}  // namespace longnet
