// Element types and devices a Tensor can hold.
//
// bfloat16 and float16 are storage types on the host: 16-bit patterns with conversions
// to and from float (round to nearest even), so that files of float32 can be turned
// into the inputs of the GPU kernels and back. Arithmetic happens on the device.
#pragma once

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace longnet {

enum class DType { float32, float64, bfloat16, float16 };
enum class Device { cpu, cuda };

struct bfloat16 {
  uint16_t bits = 0;
};
struct float16 {
  uint16_t bits = 0;
};

constexpr std::size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::float32:
      return 4;
    case DType::float64:
      return 8;
    case DType::bfloat16:
    case DType::float16:
      return 2;
  }
  return 0;
}

constexpr std::string_view dtype_name(DType dtype) {
  switch (dtype) {
    case DType::float32:
      return "float32";
    case DType::float64:
      return "float64";
    case DType::bfloat16:
      return "bfloat16";
    case DType::float16:
      return "float16";
  }
  return "?";
}

// Parses "float32", "float64", "bfloat16" (or "bf16") and "float16" (or "fp16").
DType parse_dtype(std::string_view text);

constexpr std::string_view device_name(Device device) {
  return device == Device::cpu ? "cpu" : "cuda";
}

template <typename T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::float32;
}
template <>
constexpr DType dtype_of<double>() {
  return DType::float64;
}
template <>
constexpr DType dtype_of<bfloat16>() {
  return DType::bfloat16;
}
template <>
constexpr DType dtype_of<float16>() {
  return DType::float16;
}

// float -> bfloat16, round to nearest even; NaN stays NaN.
inline bfloat16 to_bfloat16(float x) {
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  if (std::isnan(x)) return {static_cast<uint16_t>((bits >> 16) | 0x40)};
  const uint32_t rounding = 0x7FFF + ((bits >> 16) & 1);
  return {static_cast<uint16_t>((bits + rounding) >> 16)};
}
inline float to_float(bfloat16 x) {
  return std::bit_cast<float>(static_cast<uint32_t>(x.bits) << 16);
}

// float <-> IEEE half, round to nearest even, with subnormals, infinities and NaN.
float16 to_float16(float x);
float to_float(float16 x);

}  // namespace longnet
