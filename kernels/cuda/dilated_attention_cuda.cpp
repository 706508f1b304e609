// The CUDA backend: validation, the per-pattern task lists, device buffers and the stream;
// the kernels behind kernels/cuda/dilated_attention_launch.hpp do the work.
//
// Validation runs before any CUDA call, in the order rank/shape, head dim, dtypes,
// devices, so that every argument error is reported, naming the problem, even where no
// GPU exists. Task pointers that are not Tensors can only be checked through the CUDA
// runtime (cudaPointerGetAttributes), which happens next.
#include "kernels/cuda/dilated_attention_cuda.hpp"

#include "kernels/cuda/cuda_check.cuh"
#include "kernels/cuda/dilated_attention_launch.hpp"
#include "runtime/device_memory.hpp"
#include "runtime/error.hpp"

#include <cuda_runtime_api.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <span>
#include <utility>
#include <vector>

namespace longnet {
namespace {

using cuda_kernels::FlashParams;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr float kLog2e = 1.4426950408889634f;

// ---- validation (no CUDA calls) --------------------------------------------------------
bool supported_input_dtype(DType dtype) {
  return dtype == DType::bfloat16 || dtype == DType::float16 || dtype == DType::float32;
}

void check_head_dim(int64_t d) {
  LONGNET_CHECK(cuda_kernels::head_dim_supported(d),
                "head dim {} has no CUDA kernels; supported head dims: {}", d,
                fmt::join(cuda_kernels::kSupportedHeadDims, ", "));
}

void check_input_dtype(DType dtype, const char* what) {
  LONGNET_CHECK(supported_input_dtype(dtype),
                "{} is {}; the CUDA kernels take bfloat16, float16 or float32 inputs", what,
                dtype_name(dtype));
}

// t must exist, have `expected` shape and `dtype`; `what` names it.
void check_tensor_like(const Tensor& t, const Shape& expected, DType dtype, const char* what,
                       const char* dtype_reason) {
  LONGNET_CHECK(t.defined(), "{} is missing (an empty tensor)", what);
  LONGNET_CHECK(t.shape() == expected, "{} has shape {}, expected {}", what,
                shape_string(t.shape()), shape_string(expected));
  LONGNET_CHECK(t.dtype() == dtype, "{} is {} but must be {} ({})", what, dtype_name(t.dtype()),
                dtype_name(dtype), dtype_reason);
}

// Tensor arguments with the names errors use for them.
using NamedTensors = std::initializer_list<std::pair<const Tensor*, const char*>>;

void check_on_device(NamedTensors tensors) {
  for (const auto& [t, what] : tensors) {
    LONGNET_CHECK(t->device() == Device::cuda,
                  "{} is a host tensor (Device::cpu); the CUDA backend takes Device::cuda "
                  "tensors: copy it with Tensor::to(Device::cuda)",
                  what);
  }
}

// q's shape, after checking its rank, sizes, head dim and dtype.
AttentionShape check_query(const Tensor& q) {
  LONGNET_CHECK(q.defined() && q.rank() == 4,
                "q must have rank 4 [batch, tokens, heads, head_dim], got shape {}",
                q.defined() ? shape_string(q.shape()) : "(empty)");
  const AttentionShape shape{q.dim(0), q.dim(1), q.dim(2), q.dim(3)};
  validate_shape(shape);
  check_head_dim(shape.head_dim);
  check_input_dtype(q.dtype(), "q");
  return shape;
}

constexpr const char* kSameDtype = "q, k, v, o, do, dq, dk, dv share one dtype";
constexpr const char* kFloat32 = "log-sum-exp rows are always float32";

// 16-byte rows for cp.async: element offsets and strides multiples of 16 / sizeof(T).
void check_aligned(const void* p, int64_t element_bytes, int64_t element_multiple,
                   const char* what) {
  const auto address = reinterpret_cast<std::uintptr_t>(p);
  const auto alignment = static_cast<std::uintptr_t>(element_bytes * element_multiple);
  LONGNET_CHECK(address % alignment == 0,
                "{} ({}) is not {}-byte aligned, as the CUDA kernels "
                "need for {}-byte elements",
                what, p, alignment, element_bytes);
}

// Relative position bias and dropout exist in the CPU kernels only so far: refuse them
// here rather than silently computing attention without them.
constexpr const char* kNoExtrasOnCuda =
    "relative position bias and attention dropout are not implemented in the CUDA kernels "
    "yet; run this op on the CPU backend (make_cpu_dilated_attention) or without them";

void check_no_extras(const AttentionExtras& extras, std::span<const Tensor> dbias) {
  LONGNET_CHECK(extras.bias.empty() && dbias.empty() && extras.dropout_p == 0.0f, "{}",
                kNoExtrasOnCuda);
}

void check_task_params(const AttentionParams& params, const PatternTasks& pattern, bool backward) {
  LONGNET_CHECK(params.dropout_p == 0.0f, "{} (AttentionParams::dropout_p = {})", kNoExtrasOnCuda,
                params.dropout_p);
  check_input_dtype(params.input_dtype, "AttentionParams::input_dtype");
  check_head_dim(params.head_dim);
  LONGNET_CHECK(std::isfinite(params.scale) && params.scale > 0,
                "AttentionParams::scale must be positive and finite, got {}", params.scale);
  const bool wide = params.input_dtype == DType::float32;
  const int64_t element = static_cast<int64_t>(dtype_size(params.input_dtype));
  const int64_t multiple = wide ? 1 : 16 / element;  // elements per 16 bytes for 16-bit types
  LONGNET_CHECK(params.q != nullptr, "AttentionParams::q is null");
  check_aligned(params.q, element, multiple, "AttentionParams::q");
  if (backward) {
    LONGNET_CHECK(params.dout && params.saved_lse && params.delta && params.dq,
                  "backward_tasks needs dout, saved_lse, delta and dq in AttentionParams");
    check_aligned(params.dout, element, multiple, "AttentionParams::dout");
    check_aligned(params.dq, 4, wide ? 1 : 2, "AttentionParams::dq");
  } else {
    LONGNET_CHECK(params.o && params.lse, "forward_tasks needs o and lse in AttentionParams");
    check_aligned(params.o, 4, wide ? 1 : 2, "AttentionParams::o");
  }
  LONGNET_CHECK(pattern.query_row_stride % multiple == 0,
                "query_row_stride {} must be a multiple of {} elements for {} inputs",
                pattern.query_row_stride, multiple, dtype_name(params.input_dtype));
  for (const SegmentTask& task : pattern.tasks) {
    LONGNET_CHECK(task.bias == nullptr && task.dbias == nullptr, "{} (a task has bias or dbias)",
                  kNoExtrasOnCuda);
    LONGNET_CHECK(task.queries.count >= 0 && task.keys.count >= 0 && task.queries.first_index >= 0,
                  "a task has negative counts or first_index");
    LONGNET_CHECK(task.queries.base % multiple == 0 && task.keys.row_stride % multiple == 0,
                  "task query base {} and key row_stride {} must be multiples of {} elements "
                  "for {} inputs",
                  task.queries.base, task.keys.row_stride, multiple,
                  dtype_name(params.input_dtype));
    LONGNET_CHECK(task.keys.count == 0 || (task.keys.k && task.keys.v),
                  "a task with keys has null k or v");
    check_aligned(task.keys.k, element, multiple, "a task's keys.k");
    check_aligned(task.keys.v, element, multiple, "a task's keys.v");
    if (backward) {
      LONGNET_CHECK(task.keys.count == 0 || (task.keys.dk && task.keys.dv),
                    "backward_tasks needs every task's keys.dk and keys.dv");
      check_aligned(task.keys.dk, 4, wide ? 1 : 2, "a task's keys.dk");
      check_aligned(task.keys.dv, 4, wide ? 1 : 2, "a task's keys.dv");
    }
  }
}

// ---- CUDA state ------------------------------------------------------------------------
// Makes `device` current for a scope and restores the previous one.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) : device_(device) {
    LONGNET_CHECK_CUDA(cudaGetDevice(&previous_));
    if (previous_ != device_) LONGNET_CHECK_CUDA(cudaSetDevice(device_));
  }
  ~DeviceGuard() {
    if (previous_ != device_) cudaSetDevice(previous_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int device_;
  int previous_ = 0;
};

// A grow-only device allocation. Every public call waits for its stream before returning,
// so no kernel still reads a buffer when a later call grows (frees) it.
class DeviceBuffer {
 public:
  void* ensure(std::size_t bytes) {
    if (bytes > capacity_) {
      storage_.reset();
      storage_ = allocate_device(bytes);
      capacity_ = bytes;
    }
    return storage_.get();
  }
  template <typename T> T* ensure_elements(int64_t n) {
    return static_cast<T*>(ensure(static_cast<std::size_t>(n) * sizeof(T)));
  }

 private:
  std::shared_ptr<void> storage_;
  std::size_t capacity_ = 0;
};

// Which patterns' tasks sit where in one host array (copied to the device at once).
struct PatternSlice {
  std::size_t first = 0, count = 0;
  int64_t query_row_stride = 0, lse_row_stride = 0;
  int64_t max_query_count = 0, max_key_count = 0;
};

PatternSlice append_tasks(const PatternTasks& pattern, std::vector<SegmentTask>& all) {
  PatternSlice slice{
      all.size(), pattern.tasks.size(), pattern.query_row_stride, pattern.lse_row_stride, 0, 0};
  for (const SegmentTask& task : pattern.tasks) {
    slice.max_query_count = std::max(slice.max_query_count, task.queries.count);
    slice.max_key_count = std::max(slice.max_key_count, task.keys.count);
    all.push_back(task);
  }
  return slice;
}

// The whole sequence is on this device: k, v typed by `element_bytes`, dk, dv float32.
PatternTasks pattern_tasks(const DilationPattern& pattern, HeadOffsets scheme,
                           const AttentionShape& shape, const void* k, const void* v,
                           std::size_t element_bytes, float* dk, float* dv) {
  return segment_tasks(pattern, scheme, shape, 0, shape.tokens, k, v, element_bytes, dk, dv);
}

class CudaDilatedAttention final : public DilatedAttentionKernels {
 public:
  CudaDilatedAttention(int device, bool deterministic)
      : device_(device), deterministic_(deterministic) {
    LONGNET_CHECK(device >= 0, "CUDA device index must be >= 0, got {}", device);
  }
  ~CudaDilatedAttention() override {
    if (stream_ != nullptr) {
      int previous = 0;
      if (cudaGetDevice(&previous) == cudaSuccess) {
        cudaSetDevice(device_);
        cudaStreamDestroy(stream_);
        cudaSetDevice(previous);
      }
    }
  }
  CudaDilatedAttention(const CudaDilatedAttention&) = delete;
  CudaDilatedAttention& operator=(const CudaDilatedAttention&) = delete;

  std::string name() const override {
    return fmt::format("cuda:{}{}", device_, deterministic_ ? "" : "-atomic-dq");
  }

  void forward(const DilatedAttentionConfig& config, const Tensor& q, const Tensor& k,
               const Tensor& v, Tensor& o, Tensor& lse, const AttentionExtras& extras) override {
    check_no_extras(extras, {});
    validate_config(config);
    const AttentionShape shape = check_query(q);
    const DType dtype = q.dtype();
    check_tensor_like(k, q.shape(), dtype, "k (must match q)", kSameDtype);
    check_tensor_like(v, q.shape(), dtype, "v (must match q)", kSameDtype);
    check_tensor_like(o, q.shape(), dtype, "o", kSameDtype);
    check_tensor_like(lse, lse_shape(shape), DType::float32, "lse", kFloat32);
    const NamedTensors tensors = {{&q, "q"}, {&k, "k"}, {&v, "v"}, {&o, "o"}, {&lse, "lse"}};
    check_on_device(tensors);

    DeviceGuard guard(device_);
    cudaStream_t stream = this->stream();
    check_tensors_here(tensors);
    std::vector<SegmentTask> all;
    std::vector<PatternSlice> slices;
    for (const DilationPattern& pattern : config.patterns) {
      slices.push_back(append_tasks(pattern_tasks(pattern, config.head_offsets, shape, k.raw(),
                                                  v.raw(), dtype_size(dtype), nullptr, nullptr),
                                    all));
    }
    const SegmentTask* device_tasks = upload(all, stream);

    const int64_t elements = shape.elements();
    float* o_acc =
        dtype == DType::float32 ? o.data<float>() : o_accumulator_.ensure_elements<float>(elements);
    LONGNET_CHECK_CUDA(cudaMemsetAsync(o_acc, 0, static_cast<std::size_t>(elements) * 4, stream));
    cuda_kernels::fill(lse.data<float>(), shape.rows(), kNegInf, stream);
    FlashParams params = base_params(config, shape);
    params.q = q.raw();
    params.o = o_acc;
    params.lse = lse.data<float>();
    for (const PatternSlice& slice : slices) {
      cuda_kernels::forward_pattern(dtype, with_slice(params, slice, device_tasks), stream);
    }
    if (dtype != DType::float32) {
      cuda_kernels::convert_from_float(dtype, o_acc, o.raw(), elements, stream);
    }
    LONGNET_CHECK_CUDA(cudaStreamSynchronize(stream), "the dilated-attention forward");
  }

  void backward(const DilatedAttentionConfig& config, const Tensor& q, const Tensor& k,
                const Tensor& v, const Tensor& o, const Tensor& lse, const Tensor& dout, Tensor& dq,
                Tensor& dk, Tensor& dv, const AttentionExtras& extras,
                std::span<Tensor> dbias) override {
    check_no_extras(extras, dbias);
    validate_config(config);
    const AttentionShape shape = check_query(q);
    const DType dtype = q.dtype();
    check_tensor_like(k, q.shape(), dtype, "k (must match q)", kSameDtype);
    check_tensor_like(v, q.shape(), dtype, "v (must match q)", kSameDtype);
    check_tensor_like(o, q.shape(), dtype, "o", kSameDtype);
    check_tensor_like(lse, lse_shape(shape), DType::float32, "lse", kFloat32);
    check_tensor_like(dout, q.shape(), dtype, "do (the output gradient)", kSameDtype);
    check_tensor_like(dq, q.shape(), dtype, "dq", kSameDtype);
    check_tensor_like(dk, q.shape(), dtype, "dk", kSameDtype);
    check_tensor_like(dv, q.shape(), dtype, "dv", kSameDtype);
    const NamedTensors tensors = {{&q, "q"},   {&k, "k"},     {&v, "v"},
                                  {&o, "o"},   {&lse, "lse"}, {&dout, "do"},
                                  {&dq, "dq"}, {&dk, "dk"},   {&dv, "dv"}};
    check_on_device(tensors);

    DeviceGuard guard(device_);
    cudaStream_t stream = this->stream();
    check_tensors_here(tensors);
    const int64_t elements = shape.elements();
    const bool wide = dtype == DType::float32;
    float* acc = wide ? nullptr : grad_accumulator_.ensure_elements<float>(3 * elements);
    float* dq_acc = wide ? dq.data<float>() : acc;
    float* dk_acc = wide ? dk.data<float>() : acc + elements;
    float* dv_acc = wide ? dv.data<float>() : acc + 2 * elements;
    for (float* g : {dq_acc, dk_acc, dv_acc}) {
      LONGNET_CHECK_CUDA(cudaMemsetAsync(g, 0, static_cast<std::size_t>(elements) * 4, stream));
    }
    float* delta = delta_.ensure_elements<float>(shape.rows());
    cuda_kernels::row_dot(dtype, dout.raw(), o.raw(), delta, shape.rows(), shape.head_dim, stream);

    std::vector<SegmentTask> all;
    std::vector<PatternSlice> slices;
    for (const DilationPattern& pattern : config.patterns) {
      slices.push_back(append_tasks(pattern_tasks(pattern, config.head_offsets, shape, k.raw(),
                                                  v.raw(), dtype_size(dtype), dk_acc, dv_acc),
                                    all));
    }
    const SegmentTask* device_tasks = upload(all, stream);
    FlashParams params = base_params(config, shape);
    params.q = q.raw();
    params.dout = dout.raw();
    params.saved_lse = lse.data<float>();
    params.delta = delta;
    params.dq = dq_acc;
    for (const PatternSlice& slice : slices) {
      cuda_kernels::backward_pattern(dtype, with_slice(params, slice, device_tasks), deterministic_,
                                     stream);
    }
    if (!wide) {
      cuda_kernels::convert_from_float(dtype, dq_acc, dq.raw(), elements, stream);
      cuda_kernels::convert_from_float(dtype, dk_acc, dk.raw(), elements, stream);
      cuda_kernels::convert_from_float(dtype, dv_acc, dv.raw(), elements, stream);
    }
    LONGNET_CHECK_CUDA(cudaStreamSynchronize(stream), "the dilated-attention backward");
  }

  void forward_tasks(const AttentionParams& params, const PatternTasks& pattern) override {
    check_task_params(params, pattern, false);
    DeviceGuard guard(device_);
    cudaStream_t stream = this->stream();
    check_pointer_here(params.q, "AttentionParams::q");
    check_pointer_here(params.o, "AttentionParams::o");
    check_pointer_here(params.lse, "AttentionParams::lse");
    std::vector<SegmentTask> all;
    const PatternSlice slice = append_tasks(pattern, all);
    const SegmentTask* device_tasks = upload(all, stream);
    FlashParams flash = task_params(params);
    flash.o = params.o;
    flash.lse = params.lse;
    cuda_kernels::forward_pattern(params.input_dtype, with_slice(flash, slice, device_tasks),
                                  stream);
    LONGNET_CHECK_CUDA(cudaStreamSynchronize(stream), "forward_tasks");
  }

  void backward_tasks(const AttentionParams& params, const PatternTasks& pattern) override {
    check_task_params(params, pattern, true);
    DeviceGuard guard(device_);
    cudaStream_t stream = this->stream();
    check_pointer_here(params.q, "AttentionParams::q");
    check_pointer_here(params.dout, "AttentionParams::dout");
    check_pointer_here(params.dq, "AttentionParams::dq");
    std::vector<SegmentTask> all;
    const PatternSlice slice = append_tasks(pattern, all);
    const SegmentTask* device_tasks = upload(all, stream);
    FlashParams flash = task_params(params);
    flash.dout = params.dout;
    flash.saved_lse = params.saved_lse;
    flash.delta = params.delta;
    flash.dq = params.dq;
    cuda_kernels::backward_pattern(params.input_dtype, with_slice(flash, slice, device_tasks),
                                   deterministic_, stream);
    LONGNET_CHECK_CUDA(cudaStreamSynchronize(stream), "backward_tasks");
  }

  void output_gradient_dot(const Tensor& o, const Tensor& dout, Tensor& delta) override {
    LONGNET_CHECK(o.defined() && o.rank() == 4, "o must have rank 4, got shape {}",
                  o.defined() ? shape_string(o.shape()) : "(empty)");
    check_input_dtype(o.dtype(), "o");
    check_tensor_like(dout, o.shape(), o.dtype(), "do (the output gradient, must match o)",
                      kSameDtype);
    check_tensor_like(delta, {o.dim(0), o.dim(1), o.dim(2)}, DType::float32, "delta", kFloat32);
    const NamedTensors tensors = {{&o, "o"}, {&dout, "do"}, {&delta, "delta"}};
    check_on_device(tensors);
    DeviceGuard guard(device_);
    cudaStream_t stream = this->stream();
    check_tensors_here(tensors);
    cuda_kernels::row_dot(o.dtype(), dout.raw(), o.raw(), delta.data<float>(), delta.numel(),
                          o.dim(3), stream);
    LONGNET_CHECK_CUDA(cudaStreamSynchronize(stream), "output_gradient_dot");
  }

 private:
  // Created on first use, on device_ (the caller holds a DeviceGuard).
  cudaStream_t stream() {
    if (stream_ == nullptr) LONGNET_CHECK_CUDA(cudaStreamCreate(&stream_));
    return stream_;
  }

  void check_pointer_here(const void* p, const char* what) const {
    cudaPointerAttributes attributes{};
    LONGNET_CHECK_CUDA(cudaPointerGetAttributes(&attributes, p), what);
    LONGNET_CHECK(
        attributes.type == cudaMemoryTypeDevice || attributes.type == cudaMemoryTypeManaged,
        "{} is not device memory; the CUDA backend takes device pointers", what);
    LONGNET_CHECK(attributes.device == device_,
                  "{} lives on CUDA device {}, but this backend runs on device {}", what,
                  attributes.device, device_);
  }
  void check_tensors_here(NamedTensors tensors) const {
    for (const auto& [t, what] : tensors) check_pointer_here(t->raw(), what);
  }

  // Copies the task array to the reusable device buffer, in stream order. The host vector
  // outlives the copy: the caller synchronises before it returns.
  const SegmentTask* upload(const std::vector<SegmentTask>& tasks, cudaStream_t stream) {
    auto* device_tasks = tasks_.ensure_elements<SegmentTask>(static_cast<int64_t>(tasks.size()));
    if (!tasks.empty()) {
      LONGNET_CHECK_CUDA(
          cudaMemcpyAsync(device_tasks, tasks.data(), tasks.size() * sizeof(SegmentTask),
                          cudaMemcpyHostToDevice, stream),
          "copying the task list to the device");
    }
    return device_tasks;
  }

  static FlashParams base_params(const DilatedAttentionConfig& config,
                                 const AttentionShape& shape) {
    FlashParams params;
    params.head_dim = static_cast<int>(shape.head_dim);
    params.scale = static_cast<float>(softmax_scale(config, shape.head_dim));
    params.scale_log2 = params.scale * kLog2e;
    params.causal = config.causal;
    return params;
  }
  static FlashParams task_params(const AttentionParams& params) {
    FlashParams flash;
    flash.q = params.q;
    flash.head_dim = static_cast<int>(params.head_dim);
    flash.scale = params.scale;
    flash.scale_log2 = params.scale * kLog2e;
    flash.causal = params.causal;
    return flash;
  }
  static FlashParams with_slice(FlashParams params, const PatternSlice& slice,
                                const SegmentTask* device_tasks) {
    params.tasks = device_tasks + slice.first;
    params.num_tasks = static_cast<int64_t>(slice.count);
    params.query_row_stride = slice.query_row_stride;
    params.lse_row_stride = slice.lse_row_stride;
    params.max_query_count = slice.max_query_count;
    params.max_key_count = slice.max_key_count;
    return params;
  }

  int device_;
  bool deterministic_;
  cudaStream_t stream_ = nullptr;
  DeviceBuffer tasks_, o_accumulator_, grad_accumulator_, delta_;
};

}  // namespace

std::unique_ptr<DilatedAttentionKernels> make_cuda_dilated_attention(int device,
                                                                     bool deterministic) {
  return std::make_unique<CudaDilatedAttention>(device, deterministic);
}

}  // namespace longnet
