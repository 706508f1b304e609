// The element types a collective can move, and the reductions it can apply.
//
// The Communicator front end is templated over the element type T; each back end sees
// only the ElementType that T maps to and a count in elements. Only the fixed-width
// types below map to one, so a collective over char, std::byte, long double or a
// struct does not compile: a byte count can never be passed where an element count is
// meant. (uint8_t is the type for raw bytes, e.g. an NCCL unique id; its count is
// then in bytes because its elements are bytes.)
//
// bfloat16 and float16 (runtime/dtype.hpp's storage types) are moved by every back end;
// NCCL also reduces them (ncclBfloat16, ncclFloat16). MPI has no 16-bit float type, so
// the MPI back end moves them as opaque 2-byte elements (broadcast, gathers, all-to-all,
// point to point) and refuses a reduction over them with an Error that says to reduce in
// float32.
#pragma once

#include "runtime/dtype.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace longnet {

enum class ElementType : std::uint8_t {
  int8,
  uint8,
  int32,
  uint32,
  int64,
  uint64,
  float32,
  float64,
  bfloat16,
  float16
};

// Sum, maximum and minimum: all are exact for integers and independent of the order
// of ranks for max and min; a floating-point sum may differ in its last bits between
// back ends (and between MPI algorithms), because the order of additions differs.
enum class ReduceOp : std::uint8_t { sum, max, min };

template <typename T>
struct element_type_of;  // no primary: unmapped types do not compile
template <>
struct element_type_of<std::int8_t> {
  static constexpr ElementType value = ElementType::int8;
};
template <>
struct element_type_of<std::uint8_t> {
  static constexpr ElementType value = ElementType::uint8;
};
template <>
struct element_type_of<std::int32_t> {
  static constexpr ElementType value = ElementType::int32;
};
template <>
struct element_type_of<std::uint32_t> {
  static constexpr ElementType value = ElementType::uint32;
};
template <>
struct element_type_of<std::int64_t> {
  static constexpr ElementType value = ElementType::int64;
};
template <>
struct element_type_of<std::uint64_t> {
  static constexpr ElementType value = ElementType::uint64;
};
template <>
struct element_type_of<float> {
  static constexpr ElementType value = ElementType::float32;
};
template <>
struct element_type_of<double> {
  static constexpr ElementType value = ElementType::float64;
};
template <>
struct element_type_of<bfloat16> {
  static constexpr ElementType value = ElementType::bfloat16;
};
template <>
struct element_type_of<float16> {
  static constexpr ElementType value = ElementType::float16;
};

// A type a collective can move: one of the ten above (cv-unqualified).
template <typename T>
concept CommElement = requires {
  element_type_of<T>::value;
};

template <CommElement T>
inline constexpr ElementType element_type_v = element_type_of<T>::value;

constexpr std::size_t element_size(ElementType type) {
  switch (type) {
    case ElementType::int8:
    case ElementType::uint8:
      return 1;
    case ElementType::bfloat16:
    case ElementType::float16:
      return 2;
    case ElementType::int32:
    case ElementType::uint32:
    case ElementType::float32:
      return 4;
    case ElementType::int64:
    case ElementType::uint64:
    case ElementType::float64:
      return 8;
  }
  return 0;
}

constexpr std::string_view element_type_name(ElementType type) {
  switch (type) {
    case ElementType::int8:
      return "int8";
    case ElementType::uint8:
      return "uint8";
    case ElementType::int32:
      return "int32";
    case ElementType::uint32:
      return "uint32";
    case ElementType::int64:
      return "int64";
    case ElementType::uint64:
      return "uint64";
    case ElementType::float32:
      return "float32";
    case ElementType::float64:
      return "float64";
    case ElementType::bfloat16:
      return "bfloat16";
    case ElementType::float16:
      return "float16";
  }
  return "?";
}

// Whether a reduction over `type` is arithmetic on 16-bit floats (bfloat16, float16).
constexpr bool is_half_precision(ElementType type) {
  return type == ElementType::bfloat16 || type == ElementType::float16;
}

constexpr std::string_view reduce_op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum:
      return "sum";
    case ReduceOp::max:
      return "max";
    case ReduceOp::min:
      return "min";
  }
  return "?";
}

}  // namespace longnet
