// The CUDA backend: the op's hooks (the front end, kernels/dilated_attention_op.cpp, has
// checked shapes, dtypes, memory and what this backend supports before any CUDA call, so
// argument errors are reported even where no GPU exists), the per-pattern task lists,
// device buffers and the stream; the kernels behind kernels/cuda/dilated_attention_launch.hpp
// do the work. What only this backend checks: the 16-byte alignment of task rows, and,
// through the CUDA runtime (cudaPointerGetAttributes), that pointers are on its device.
//
// Extras. forward()/backward() take the bias (and dbias) tensors in device memory, used
// in place, or in host memory: bias is then copied to a device buffer and dbias computed
// in one and copied back before the call returns. Each task gets device pointers to its
// head's rows and its dropout key (pattern_task_extras, the same keys as the CPU kernels).
#include "kernels/cuda/dilated_attention_cuda.hpp"

#include "kernels/cuda/dilated_attention_launch.hpp"
#include "kernels/philox.hpp"
#include "runtime/cuda_check.hpp"
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
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace longnet {
namespace {

using cuda_kernels::FlashParams;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr float kLog2e = 1.4426950408889634f;

// ---- checks beyond the front end's (no CUDA calls) -----------------------------------
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

// The alignment the kernels need of a task call (the front end checked the rest).
void check_task_alignment(const AttentionParams& params, const PatternTasks& pattern,
                          bool backward) {
  const bool wide = params.input_dtype == DType::float32;
  const int64_t element = static_cast<int64_t>(dtype_size(params.input_dtype));
  const int64_t multiple = wide ? 1 : 16 / element;  // elements per 16 bytes for 16-bit types
  check_aligned(params.q, element, multiple, "AttentionParams::q");
  if (backward) {
    check_aligned(params.dout, element, multiple, "AttentionParams::dout");
    check_aligned(params.dq, 4, wide ? 1 : 2, "AttentionParams::dq");
  } else {
    check_aligned(params.o, 4, wide ? 1 : 2, "AttentionParams::o");
  }
  LONGNET_CHECK(pattern.query_row_stride % multiple == 0,
                "query_row_stride {} must be a multiple of {} elements for {} inputs",
                pattern.query_row_stride, multiple, dtype_name(params.input_dtype));
  for (const SegmentTask& task : pattern.tasks) {
    LONGNET_CHECK(task.queries.base % multiple == 0 && task.keys.row_stride % multiple == 0,
                  "task query base {} and key row_stride {} must be multiples of {} elements "
                  "for {} inputs",
                  task.queries.base, task.keys.row_stride, multiple,
                  dtype_name(params.input_dtype));
    check_aligned(task.keys.k, element, multiple, "a task's keys.k");
    check_aligned(task.keys.v, element, multiple, "a task's keys.v");
    if (backward) {
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
    LONGNET_CUDA_CHECK(cudaGetDevice(&previous_));
    if (previous_ != device_) LONGNET_CUDA_CHECK(cudaSetDevice(device_));
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
  template <typename T>
  T* ensure_elements(int64_t n) {
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
  bool task_extras = false;  // some task has bias or dbias
};

PatternSlice append_tasks(const PatternTasks& pattern, std::vector<SegmentTask>& all) {
  PatternSlice slice{
      all.size(), pattern.tasks.size(), pattern.query_row_stride, pattern.lse_row_stride, 0, 0};
  for (const SegmentTask& task : pattern.tasks) {
    slice.max_query_count = std::max(slice.max_query_count, task.queries.count);
    slice.max_key_count = std::max(slice.max_key_count, task.keys.count);
    slice.task_extras = slice.task_extras || task.bias != nullptr || task.dbias != nullptr;
    all.push_back(task);
  }
  return slice;
}

class CudaDilatedAttention final : public DilatedAttentionOp {
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
  Device device() const override { return Device::cuda; }

 protected:
  std::optional<std::string> unsupported_dtype(DType dtype) const override {
    if (dtype == DType::bfloat16 || dtype == DType::float16 || dtype == DType::float32) {
      return std::nullopt;
    }
    return fmt::format("q is {}; the CUDA kernels take bfloat16, float16 or float32 inputs",
                       dtype_name(dtype));
  }
  std::optional<std::string> unsupported_head_dim(int64_t head_dim) const override {
    if (cuda_kernels::head_dim_supported(head_dim)) return std::nullopt;
    return fmt::format("head dim {} has no CUDA kernels; supported head dims: {}", head_dim,
                       fmt::join(cuda_kernels::kSupportedHeadDims, ", "));
  }

  void do_forward(const ForwardCall& call) override {
    const DilatedAttentionConfig& config = call.config;
    const AttentionShape& shape = call.shape;
    const DType dtype = call.params.input_dtype;
    DeviceGuard guard(device_);
    cudaStream_t stream = this->stream();
    check_tensors_here(
        {{&call.q, "q"}, {&call.k, "k"}, {&call.v, "v"}, {&call.o, "o"}, {&call.lse, "lse"}});
    const std::vector<const float*> bias = device_bias(call.extras, stream);
    std::vector<SegmentTask> all;
    std::vector<PatternSlice> slices;
    for (std::size_t p = 0; p < config.patterns.size(); ++p) {
      slices.push_back(
          append_tasks(whole_sequence_tasks(config, shape, call.extras, p, call.k.raw(),
                                            call.v.raw(), dtype_size(dtype), nullptr, nullptr,
                                            bias.empty() ? nullptr : bias[p], nullptr),
                       all));
    }
    const SegmentTask* device_tasks = upload(all, stream);

    const int64_t elements = shape.elements();
    float* o_acc = dtype == DType::float32 ? call.o.data<float>()
                                           : o_accumulator_.ensure_elements<float>(elements);
    LONGNET_CUDA_CHECK(cudaMemsetAsync(o_acc, 0, static_cast<std::size_t>(elements) * 4, stream));
    cuda_kernels::fill(call.lse.data<float>(), shape.rows(), kNegInf, stream);
    FlashParams params = task_params(call.params);
    params.o = o_acc;
    params.lse = call.lse.data<float>();
    for (const PatternSlice& slice : slices) {
      cuda_kernels::forward_pattern(dtype, with_slice(params, slice, device_tasks), stream);
    }
    if (dtype != DType::float32) {
      cuda_kernels::convert_from_float(dtype, o_acc, call.o.raw(), elements, stream);
    }
    LONGNET_CUDA_CHECK(cudaStreamSynchronize(stream), "the dilated-attention forward");
  }

  void do_backward(const BackwardCall& call) override {
    const DilatedAttentionConfig& config = call.config;
    const AttentionShape& shape = call.shape;
    const DType dtype = call.params.input_dtype;
    DeviceGuard guard(device_);
    cudaStream_t stream = this->stream();
    check_tensors_here({{&call.q, "q"},
                        {&call.k, "k"},
                        {&call.v, "v"},
                        {&call.o, "o"},
                        {&call.lse, "lse"},
                        {&call.dout, "do"},
                        {&call.dq, "dq"},
                        {&call.dk, "dk"},
                        {&call.dv, "dv"}});
    const int64_t elements = shape.elements();
    // dk, dv: float32 inputs accumulate in place, unless grouped-query heads need one
    // accumulator per member of a group (segment_tasks), summed at the end.
    const int64_t group = shape.group_size(), key_elements = shape.key_elements();
    const bool wide = dtype == DType::float32;
    const bool keys_in_place = wide && group == 1;
    const int64_t key_acc = keys_in_place ? 0 : group * key_elements;
    float* acc = grad_accumulator_.ensure_elements<float>((wide ? 0 : elements) + 2 * key_acc);
    float* dq_acc = wide ? call.dq.data<float>() : acc;
    float* dk_acc = keys_in_place ? call.dk.data<float>() : acc + (wide ? 0 : elements);
    float* dv_acc = keys_in_place ? call.dv.data<float>() : dk_acc + key_acc;
    LONGNET_CUDA_CHECK(
        cudaMemsetAsync(dq_acc, 0, static_cast<std::size_t>(elements) * sizeof(float), stream));
    for (float* g : {dk_acc, dv_acc}) {
      LONGNET_CUDA_CHECK(cudaMemsetAsync(
          g, 0, static_cast<std::size_t>(group * key_elements) * sizeof(float), stream));
    }
    float* delta = delta_.ensure_elements<float>(shape.rows());
    cuda_kernels::row_dot(dtype, call.dout.raw(), call.o.raw(), delta, shape.rows(), shape.head_dim,
                          stream);

    const std::vector<const float*> bias = device_bias(call.extras, stream);
    const std::vector<float*> dbias_acc = device_dbias(call.dbias, stream);
    std::vector<SegmentTask> all;
    std::vector<PatternSlice> slices;
    for (std::size_t p = 0; p < config.patterns.size(); ++p) {
      slices.push_back(append_tasks(
          whole_sequence_tasks(config, shape, call.extras, p, call.k.raw(), call.v.raw(),
                               dtype_size(dtype), dk_acc, dv_acc, bias.empty() ? nullptr : bias[p],
                               dbias_acc.empty() ? nullptr : dbias_acc[p]),
          all));
    }
    const SegmentTask* device_tasks = upload(all, stream);
    FlashParams params = task_params(call.params);
    params.dout = call.dout.raw();
    params.saved_lse = call.lse.data<float>();
    params.delta = delta;
    params.dq = dq_acc;
    for (const PatternSlice& slice : slices) {
      cuda_kernels::backward_pattern(dtype, with_slice(params, slice, device_tasks), deterministic_,
                                     stream);
    }
    if (!wide) cuda_kernels::convert_from_float(dtype, dq_acc, call.dq.raw(), elements, stream);
    if (!keys_in_place) {
      cuda_kernels::sum_from_float(dtype, dk_acc, group, call.dk.raw(), key_elements, stream);
      cuda_kernels::sum_from_float(dtype, dv_acc, group, call.dv.raw(), key_elements, stream);
    }
    download_dbias(call.dbias, dbias_acc, stream);
    LONGNET_CUDA_CHECK(cudaStreamSynchronize(stream), "the dilated-attention backward");
  }

  void do_forward_tasks(const AttentionParams& params, const PatternTasks& pattern) override {
    check_task_alignment(params, pattern, false);
    DeviceGuard guard(device_);
    cudaStream_t stream = this->stream();
    check_pointer_here(params.q, "AttentionParams::q");
    check_pointer_here(params.o, "AttentionParams::o");
    check_pointer_here(params.lse, "AttentionParams::lse");
    check_task_extras_here(pattern);
    std::vector<SegmentTask> all;
    const PatternSlice slice = append_tasks(pattern, all);
    const SegmentTask* device_tasks = upload(all, stream);
    FlashParams flash = task_params(params);
    flash.o = params.o;
    flash.lse = params.lse;
    cuda_kernels::forward_pattern(params.input_dtype, with_slice(flash, slice, device_tasks),
                                  stream);
    LONGNET_CUDA_CHECK(cudaStreamSynchronize(stream), "forward_tasks");
  }

  void do_backward_tasks(const AttentionParams& params, const PatternTasks& pattern) override {
    check_task_alignment(params, pattern, true);
    DeviceGuard guard(device_);
    cudaStream_t stream = this->stream();
    check_pointer_here(params.q, "AttentionParams::q");
    check_pointer_here(params.dout, "AttentionParams::dout");
    check_pointer_here(params.dq, "AttentionParams::dq");
    check_task_extras_here(pattern);
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
    LONGNET_CUDA_CHECK(cudaStreamSynchronize(stream), "backward_tasks");
  }

  void do_output_gradient_dot(const Tensor& o, const Tensor& dout, Tensor& delta) override {
    DeviceGuard guard(device_);
    cudaStream_t stream = this->stream();
    check_tensors_here({{&o, "o"}, {&dout, "do"}, {&delta, "delta"}});
    cuda_kernels::row_dot(o.dtype(), dout.raw(), o.raw(), delta.data<float>(), delta.numel(),
                          o.dim(3), stream);
    LONGNET_CUDA_CHECK(cudaStreamSynchronize(stream), "output_gradient_dot");
  }

 private:
  // Created on first use, on device_ (the caller holds a DeviceGuard).
  cudaStream_t stream() {
    if (stream_ == nullptr) LONGNET_CUDA_CHECK(cudaStreamCreate(&stream_));
    return stream_;
  }

  void check_pointer_here(const void* p, const char* what) const {
    cudaPointerAttributes attributes{};
    LONGNET_CUDA_CHECK(cudaPointerGetAttributes(&attributes, p), what);
    LONGNET_CHECK(
        attributes.type == cudaMemoryTypeDevice || attributes.type == cudaMemoryTypeManaged,
        "{} is not device memory; the CUDA backend takes device pointers", what);
    LONGNET_CHECK(attributes.device == device_,
                  "{} lives on CUDA device {}, but this backend runs on device {}", what,
                  attributes.device, device_);
  }
  using NamedTensors = std::initializer_list<std::pair<const Tensor*, const char*>>;
  void check_tensors_here(NamedTensors tensors) const {
    for (const auto& [t, what] : tensors) check_pointer_here(t->raw(), what);
  }
  // Every distinct bias and dbias pointer of the tasks (one per head, typically).
  void check_task_extras_here(const PatternTasks& pattern) const {
    std::vector<const void*> checked;
    auto check = [&](const void* p, const char* what) {
      if (p == nullptr || std::find(checked.begin(), checked.end(), p) != checked.end()) return;
      check_pointer_here(p, what);
      checked.push_back(p);
    };
    for (const SegmentTask& task : pattern.tasks) {
      check(task.bias, "a task's bias");
      check(task.dbias, "a task's dbias");
    }
  }

  // Device pointers to each pattern's bias tensor (empty: no bias): a device tensor's own
  // data, or a copy of a host tensor in bias_, made in stream order.
  std::vector<const float*> device_bias(const AttentionExtras& extras, cudaStream_t stream) {
    std::vector<const float*> out;
    int64_t host_elements = 0;
    for (const Tensor& b : extras.bias) host_elements += b.device() == Device::cpu ? b.numel() : 0;
    float* staging = host_elements > 0 ? bias_.ensure_elements<float>(host_elements) : nullptr;
    for (std::size_t p = 0; p < extras.bias.size(); ++p) {
      const Tensor& b = extras.bias[p];
      if (b.device() == Device::cuda) {
        check_pointer_here(b.raw(), "extras.bias");
        out.push_back(b.data<float>());
        continue;
      }
      LONGNET_CUDA_CHECK(
          cudaMemcpyAsync(staging, b.raw(), b.nbytes(), cudaMemcpyHostToDevice, stream),
          "copying the bias to the device");
      out.push_back(staging);
      staging += b.numel();
    }
    return out;
  }

  // Zeroed device accumulators for each pattern's dbias (empty: not wanted): a device
  // tensor itself, or space in dbias_ for a host tensor (download_dbias copies it back).
  std::vector<float*> device_dbias(std::span<Tensor> dbias, cudaStream_t stream) {
    std::vector<float*> out;
    int64_t host_elements = 0;
    for (const Tensor& d : dbias) host_elements += d.device() == Device::cpu ? d.numel() : 0;
    float* staging = host_elements > 0 ? dbias_.ensure_elements<float>(host_elements) : nullptr;
    for (Tensor& d : dbias) {
      float* acc = nullptr;
      if (d.device() == Device::cuda) {
        check_pointer_here(d.raw(), "dbias");
        acc = d.data<float>();
      } else {
        acc = staging;
        staging += d.numel();
      }
      LONGNET_CUDA_CHECK(cudaMemsetAsync(acc, 0, d.nbytes(), stream));
      out.push_back(acc);
    }
    return out;
  }
  // Copies the accumulators of host dbias tensors back (the caller synchronises).
  static void download_dbias(std::span<Tensor> dbias, const std::vector<float*>& acc,
                             cudaStream_t stream) {
    for (std::size_t p = 0; p < dbias.size(); ++p) {
      if (dbias[p].device() == Device::cuda) continue;
      LONGNET_CUDA_CHECK(cudaMemcpyAsync(dbias[p].raw(), acc[p], dbias[p].nbytes(),
                                         cudaMemcpyDeviceToHost, stream),
                         "copying dbias to the host");
    }
  }

  // Copies the task array to the reusable device buffer, in stream order. The host vector
  // outlives the copy: the caller synchronises before it returns.
  const SegmentTask* upload(const std::vector<SegmentTask>& tasks, cudaStream_t stream) {
    auto* device_tasks = tasks_.ensure_elements<SegmentTask>(static_cast<int64_t>(tasks.size()));
    if (!tasks.empty()) {
      LONGNET_CUDA_CHECK(
          cudaMemcpyAsync(device_tasks, tasks.data(), tasks.size() * sizeof(SegmentTask),
                          cudaMemcpyHostToDevice, stream),
          "copying the task list to the device");
    }
    return device_tasks;
  }

  // Dropout probability p (checked to lie in [0, 1)) as the kernels take it.
  static void set_dropout(FlashParams& params, float p) {
    params.dropout_threshold = p > 0.0f ? dropout_threshold(p) : 0;
    params.dropout_scale = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f;
  }
  static FlashParams task_params(const AttentionParams& params) {
    FlashParams flash;
    flash.q = params.q;
    flash.head_dim = static_cast<int>(params.head_dim);
    flash.scale = params.scale;
    flash.scale_log2 = params.scale * kLog2e;
    flash.causal = params.causal;
    set_dropout(flash, params.dropout_p);
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
    params.extras = slice.task_extras || params.dropout_threshold != 0;
    return params;
  }

  int device_;
  bool deterministic_;
  cudaStream_t stream_ = nullptr;
  DeviceBuffer tasks_, o_accumulator_, grad_accumulator_, delta_, bias_, dbias_;
};

}  // namespace

std::unique_ptr<DilatedAttentionOp> make_cuda_dilated_attention(int device, bool deterministic) {
  return std::make_unique<CudaDilatedAttention>(device, deterministic);
}

}  // namespace longnet
