#include "runtime/dtype.hpp"

#include "runtime/error.hpp"

namespace longnet {

DType parse_dtype(std::string_view text) {
  if (text == "float32" || text == "fp32") return DType::float32;
  if (text == "float64" || text == "fp64") return DType::float64;
  if (text == "bfloat16" || text == "bf16") return DType::bfloat16;
  if (text == "float16" || text == "fp16") return DType::float16;
  fail("unknown dtype '{}': use float32, bfloat16 (bf16) or float16 (fp16)", text);
}

float16 to_float16(float x) {
  const uint32_t f = std::bit_cast<uint32_t>(x);
  const uint16_t sign = static_cast<uint16_t>((f >> 16) & 0x8000);
  const uint32_t abs = f & 0x7FFFFFFF;
  if (abs >= 0x7F800000) {  // inf or NaN
    return {static_cast<uint16_t>(sign | 0x7C00 | (abs > 0x7F800000 ? 0x200 : 0))};
  }
  if (abs >= 0x477FF000) return {static_cast<uint16_t>(sign | 0x7C00)};  // rounds past 65504
  if (abs < 0x38800000) {  // below 2^-14: a subnormal half (or zero)
    // value = abs_float * 2^24 in units of the smallest subnormal, rounded to nearest even
    const float scaled = std::bit_cast<float>(abs) * 16777216.0f;
    const float rounded = std::nearbyint(scaled);
    return {static_cast<uint16_t>(sign | static_cast<uint16_t>(rounded))};
  }
  // Normal: rebias the exponent (127 -> 15), round the 13 dropped mantissa bits.
  const uint32_t rebased = abs - (112u << 23);
  const uint32_t rounding = 0xFFF + ((rebased >> 13) & 1);
  return {static_cast<uint16_t>(sign | ((rebased + rounding) >> 13))};
}

float to_float(float16 x) {
  const uint32_t sign = static_cast<uint32_t>(x.bits & 0x8000) << 16;
  const uint32_t exponent = (x.bits >> 10) & 0x1F;
  const uint32_t mantissa = x.bits & 0x3FF;
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24
    const float value = static_cast<float>(mantissa) * 5.9604644775390625e-8f;
    return sign ? -value : value;
  }
  if (exponent == 31) return std::bit_cast<float>(sign | 0x7F800000 | (mantissa << 13));
  return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

}  // namespace longnet
