#include "runtime/tensor.hpp"

#include "runtime/checked_size.hpp"
#include "runtime/device_memory.hpp"

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
  const std::size_t rounded =
      (std::max<std::size_t>(bytes, 1) + kHostAlignment - 1) / kHostAlignment * kHostAlignment;
  void* p = std::aligned_alloc(kHostAlignment, rounded);
  if (p == nullptr) {
    fail("out of host memory: could not allocate {} bytes for a tensor", bytes);
  }
  return {p, [](void* q) { std::free(q); }};
}

}  // namespace

std::string shape_string(const Shape& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

int64_t shape_numel(const Shape& shape) { return checked_element_count(shape, "tensor"); }

Tensor::Tensor(Shape shape, DType dtype, Device device)
    : shape_(std::move(shape)), numel_(shape_numel(shape_)), dtype_(dtype), device_(device) {
  // Checked here so that nbytes() never wraps for a tensor that exists.
  const int64_t bytes = checked_byte_count(numel_, static_cast<int64_t>(dtype_size(dtype_)),
                                           "tensor of shape " + shape_string(shape_));
  if (device == Device::cpu)
    check_host_allocatable(bytes, "a tensor of shape " + shape_string(shape_));
  storage_ = device == Device::cpu ? allocate_host(nbytes()) : allocate_device(nbytes());
}

Tensor Tensor::borrow(void* data, Shape shape, DType dtype, Device device) {
  Tensor t;
  t.shape_ = std::move(shape);
  t.numel_ = shape_numel(t.shape_);
  t.dtype_ = dtype;
  t.device_ = device;
  LONGNET_CHECK(data != nullptr || t.numel_ == 0, "Tensor::borrow: null data for shape {}",
                shape_string(t.shape_));
  // A non-null handle even for empty arrays (defined() is true); the deleter does nothing.
  static char empty;
  t.storage_ = std::shared_ptr<void>(data != nullptr ? data : &empty, [](void*) {});
  return t;
}

Tensor Tensor::zeros(Shape shape, DType dtype) { return filled(std::move(shape), 0.0, dtype); }

Tensor Tensor::filled(Shape shape, double value, DType dtype) {
  Tensor t(std::move(shape), dtype);
  t.fill(value);
  return t;
}

Tensor Tensor::clone() const {
  Tensor copy(shape_, dtype_, device_);
  if (device_ == Device::cpu) {
    if (nbytes() > 0) std::memcpy(copy.raw(), raw(), nbytes());
  } else {
    copy_memory(copy.raw(), raw(), nbytes(), CopyKind::device_to_device);
  }
  return copy;
}

void Tensor::fill(double value) {
  if (device_ != Device::cpu) {
    Tensor host(shape_, dtype_);
    host.fill(value);
    copy_memory(raw(), host.raw(), nbytes(), CopyKind::host_to_device);
    return;
  }
  switch (dtype_) {
    case DType::float32:
      std::ranges::fill(span<float>(), static_cast<float>(value));
      break;
    case DType::float64:
      std::ranges::fill(span<double>(), value);
      break;
    case DType::bfloat16:
      std::ranges::fill(span<bfloat16>(), to_bfloat16(static_cast<float>(value)));
      break;
    case DType::float16:
      std::ranges::fill(span<float16>(), to_float16(static_cast<float>(value)));
      break;
  }
}

void Tensor::poison() {
  if (device_ == Device::cpu) {
    if (nbytes() > 0) std::memset(raw(), 0xFF, nbytes());
  } else {
    set_device_bytes(raw(), 0xFF, nbytes());
  }
}

Tensor Tensor::to(Device device) const {
  if (device == device_) return *this;
  Tensor copy(shape_, dtype_, device);
  copy_memory(copy.raw(), raw(), nbytes(),
              device == Device::cpu ? CopyKind::device_to_host : CopyKind::host_to_device);
  return copy;
}

namespace {

double element_as_double(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::float32:
      return t.data<float>()[i];
    case DType::float64:
      return t.data<double>()[i];
    case DType::bfloat16:
      return to_float(t.data<bfloat16>()[i]);
    case DType::float16:
      return to_float(t.data<float16>()[i]);
  }
  return 0;
}

}  // namespace

Tensor Tensor::view(Shape shape) const {
  LONGNET_CHECK(shape_numel(shape) == numel_,
                "cannot view a tensor of shape {} ({} elements) as {} ({} elements)",
                shape_string(shape_), numel_, shape_string(shape), shape_numel(shape));
  Tensor out = *this;
  out.shape_ = std::move(shape);
  return out;
}

Tensor Tensor::cast(DType dtype) const {
  LONGNET_CHECK(device_ == Device::cpu,
                "cast() converts host tensors; copy this {} tensor to "
                "the host first with to(Device::cpu)",
                device_name(device_));
  Tensor out(shape_, dtype);
  // Parallel: benchmarks cast gigabyte tensors (a 1M-token q is 2^31 elements).
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < numel_; ++i) {
    const double x = element_as_double(*this, i);
    switch (dtype) {
      case DType::float32:
        out.data<float>()[i] = static_cast<float>(x);
        break;
      case DType::float64:
        out.data<double>()[i] = x;
        break;
      case DType::bfloat16:
        out.data<bfloat16>()[i] = to_bfloat16(static_cast<float>(x));
        break;
      case DType::float16:
        out.data<float16>()[i] = to_float16(static_cast<float>(x));
        break;
    }
  }
  return out;
}

void Tensor::check_dtype(DType wanted) const {
  LONGNET_CHECK(storage_ != nullptr, "tensor is empty (never allocated)");
  LONGNET_CHECK(wanted == dtype_, "tensor of shape {} holds {}, but was read as {}",
                shape_string(shape_), dtype_name(dtype_), dtype_name(wanted));
}

}  // namespace longnet
