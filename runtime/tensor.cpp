#include "runtime/tensor.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

namespace longnet {
namespace {

constexpr std::size_t kHostAlignment = 64;  // one cache line, one AVX-512 register

std::shared_ptr<void> allocate_host(std::size_t bytes) {
  const std::size_t rounded = (std::max<std::size_t>(bytes, 1) + kHostAlignment - 1) /
                              kHostAlignment * kHostAlignment;
  void* p = std::aligned_alloc(kHostAlignment, rounded);
  if (p == nullptr) {
    fail("out of host memory: could not allocate {} bytes for a tensor", bytes);
  }
  return {p, [](void* q) { std::free(q); }};
}

}  // namespace

std::string shape_string(const Shape& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t extent : shape) {
    LONGNET_CHECK(extent >= 0, "negative extent in shape {}", shape_string(shape));
    n *= extent;
  }
  return n;
}

Tensor::Tensor(Shape shape, DType dtype, Device device)
    : shape_(std::move(shape)), numel_(shape_numel(shape_)), dtype_(dtype), device_(device) {
  storage_ = allocate_host(nbytes());
}

Tensor Tensor::zeros(Shape shape, DType dtype) { return filled(std::move(shape), 0.0, dtype); }

Tensor Tensor::filled(Shape shape, double value, DType dtype) {
  Tensor t(std::move(shape), dtype);
  t.fill(value);
  return t;
}

Tensor Tensor::clone() const {
  Tensor copy(shape_, dtype_, device_);
  if (nbytes() > 0) std::memcpy(copy.raw(), raw(), nbytes());
  return copy;
}

void Tensor::fill(double value) {
  switch (dtype_) {
    case DType::float32: std::ranges::fill(span<float>(), static_cast<float>(value)); break;
    case DType::float64: std::ranges::fill(span<double>(), value); break;
  }
}

void Tensor::check_dtype(DType wanted) const {
  LONGNET_CHECK(storage_ != nullptr, "tensor is empty (never allocated)");
  LONGNET_CHECK(wanted == dtype_, "tensor of shape {} holds {}, but was read as {}",
                shape_string(shape_), dtype_name(dtype_), dtype_name(wanted));
}

}  // namespace longnet
