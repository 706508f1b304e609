#include "kernels/cpu/cpu_isa.hpp"
#include "longnet/config.hpp"

#include "runtime/error.hpp"

#include <cstdlib>

namespace longnet {

std::string_view cpu_isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::generic:
      return "generic";
    case CpuIsa::avx2:
      return "avx2";
    case CpuIsa::avx512:
      return "avx512";
  }
  return "?";
}

std::optional<CpuIsa> parse_cpu_isa_option(std::string_view text) {
  if (text.empty()) return std::nullopt;
  return parse_cpu_isa(text);
}

CpuIsa parse_cpu_isa(std::string_view text) {
  for (CpuIsa isa : {CpuIsa::generic, CpuIsa::avx2, CpuIsa::avx512}) {
    if (text == cpu_isa_name(isa)) return isa;
  }
  fail("unknown CPU instruction set '{}': use generic, avx2 or avx512", text);
}

bool cpu_isa_available(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::generic:
      return true;
#if defined(LONGNET_HAVE_X86_ISAS)
    case CpuIsa::avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case CpuIsa::avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw");
#else
    case CpuIsa::avx2:
    case CpuIsa::avx512:
      return false;
#endif
  }
  return false;
}

std::vector<CpuIsa> available_cpu_isas() {
  std::vector<CpuIsa> isas;
  for (CpuIsa isa : {CpuIsa::generic, CpuIsa::avx2, CpuIsa::avx512}) {
    if (cpu_isa_available(isa)) isas.push_back(isa);
  }
  return isas;
}

CpuIsa default_cpu_isa() {
  if (const char* forced = std::getenv("LONGNET_CPU_ISA"); forced != nullptr && *forced != 0) {
    const CpuIsa isa = parse_cpu_isa(forced);
    LONGNET_CHECK(cpu_isa_available(isa),
                  "LONGNET_CPU_ISA={} but this processor or build cannot run it; unset it to use "
                  "the best available ({})",
                  forced, cpu_isa_name(available_cpu_isas().back()));
    return isa;
  }
  return available_cpu_isas().back();
}

}  // namespace longnet
