// A dense, row-major tensor that owns its memory, on the host or on a CUDA device.
//
// Host memory is 64-byte aligned so the vectorised kernels may use aligned loads
// on row starts when the innermost extent allows. Copies share storage (like a
// handle); clone() makes a deep copy. Typed access checks the element type, so a
// float buffer is never read as double by mistake; data<T>() of a device tensor is a
// device pointer, for kernels only.
#pragma once

#include "runtime/dtype.hpp"
#include "runtime/error.hpp"

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace longnet {

using Shape = std::vector<int64_t>;

std::string shape_string(const Shape& shape);
int64_t shape_numel(const Shape& shape);

class Tensor {
 public:
  Tensor() = default;
  // Allocates uninitialised storage for `shape`.
  Tensor(Shape shape, DType dtype, Device device = Device::cpu);

  static Tensor zeros(Shape shape, DType dtype = DType::float32);
  // A tensor over memory another owner keeps alive (e.g. a NumPy array or a torch tensor
  // handed over by DLPack): no copy and no free; dense, row-major, of `shape` and `dtype`.
  static Tensor borrow(void* data, Shape shape, DType dtype, Device device = Device::cpu);
  static Tensor filled(Shape shape, double value, DType dtype = DType::float32);

  const Shape& shape() const { return shape_; }
  int64_t dim(std::size_t axis) const { return shape_.at(axis); }
  std::size_t rank() const { return shape_.size(); }
  int64_t numel() const { return numel_; }
  std::size_t nbytes() const { return static_cast<std::size_t>(numel_) * dtype_size(dtype_); }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  bool defined() const { return storage_ != nullptr; }

  template <typename T>
  T* data() {
    check_dtype(dtype_of<T>());
    return static_cast<T*>(storage_.get());
  }
  template <typename T>
  const T* data() const {
    check_dtype(dtype_of<T>());
    return static_cast<const T*>(storage_.get());
  }
  template <typename T>
  std::span<T> span() {
    return {data<T>(), static_cast<std::size_t>(numel_)};
  }
  template <typename T>
  std::span<const T> span() const {
    return {data<T>(), static_cast<std::size_t>(numel_)};
  }

  void* raw() { return storage_.get(); }
  const void* raw() const { return storage_.get(); }

  Tensor clone() const;
  // The same storage seen with another shape of as many elements (like a handle copy:
  // writes through either are seen by both).
  Tensor view(Shape shape) const;
  // Every element set to `value` (through a host copy for a device tensor).
  void fill(double value);
  // Every byte 0xFF: NaN in every floating-point dtype, so unwritten outputs show.
  void poison();

  // A copy on `device` (the same tensor when already there).
  Tensor to(Device device) const;
  // A host copy converted to `dtype` (rounding to nearest even when narrowing).
  Tensor cast(DType dtype) const;

 private:
  void check_dtype(DType wanted) const;

  Shape shape_;
  int64_t numel_ = 0;
  DType dtype_ = DType::float32;
  Device device_ = Device::cpu;
  std::shared_ptr<void> storage_;
};

}  // namespace longnet
