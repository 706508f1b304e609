#include "op_adapter.hpp"

#include "kernels/cpu/dilated_attention_cpu.hpp"
#include "kernels/dilated_attention.hpp"
#ifdef LONGNET_HAVE_CUDA_KERNELS
#include "kernels/cuda/dilated_attention_cuda.hpp"

#include <cuda_runtime_api.h>
#endif

#include <map>
#include <memory>
#include <mutex>

namespace longnet::python {
namespace {

DilatedAttentionConfig to_config(const AttentionCall& call) {
  return DilatedAttentionConfig::from_lists(call.segment_lengths, call.dilation_rates, call.causal,
                                            parse_head_offsets(call.head_offsets), call.scale);
}

Tensor to_tensor(const ArrayView& view) {
  return Tensor::borrow(view.data, view.shape, view.dtype, view.device);
}

// One backend per device, made on first use and kept (the CPU one picks its ISA once).
DilatedAttentionKernels& kernels_for(const ArrayView& q) {
  static std::mutex mutex;
  static std::unique_ptr<DilatedAttentionKernels> cpu;
  static std::map<int, std::unique_ptr<DilatedAttentionKernels>> cuda;
  std::lock_guard lock(mutex);
  if (q.device == Device::cpu) {
    if (!cpu) cpu = make_cpu_dilated_attention();
    return *cpu;
  }
#ifdef LONGNET_HAVE_CUDA_KERNELS
  auto& slot = cuda[q.device_id];
  if (!slot) slot = make_cuda_dilated_attention(q.device_id);
  return *slot;
#else
  fail("{} is on a CUDA device, but this build of longnet has no CUDA kernels: rebuild the "
       "package with the CUDA toolkit present (LONGNET_CUDA=ON), or move the tensors to the CPU",
       q.name);
#endif
}

void check_same_device(const ArrayView& first, std::initializer_list<const ArrayView*> others) {
  for (const ArrayView* other : others) {
    LONGNET_CHECK(other->device == first.device && other->device_id == first.device_id,
                  "{} is on {}:{} but {} is on {}:{}: put every tensor on one device", other->name,
                  device_name(other->device), other->device_id, first.name,
                  device_name(first.device), first.device_id);
  }
}

// The op runs on its own stream and returns when its work is done; ordering it after the
// caller's stream (whose pending work may still be writing the inputs) makes the call
// behave as if it ran on that stream.
void wait_for_caller_stream([[maybe_unused]] const AttentionCall& call, const ArrayView& q) {
  if (q.device != Device::cuda) return;
#ifdef LONGNET_HAVE_CUDA_KERNELS
  const cudaError_t status =
      cudaStreamSynchronize(reinterpret_cast<cudaStream_t>(call.stream));  // NOLINT
  LONGNET_CHECK(status == cudaSuccess, "waiting for the caller's CUDA stream failed: {}",
                cudaGetErrorString(status));
#endif
}

}  // namespace

void attention_forward(const AttentionCall& call, const ArrayView& q, const ArrayView& k,
                       const ArrayView& v, const ArrayView& o, const ArrayView& lse) {
  check_same_device(q, {&k, &v, &o, &lse});
  const DilatedAttentionConfig config = to_config(call);
  validate_config(config);
  const Tensor tq = to_tensor(q), tk = to_tensor(k), tv = to_tensor(v);
  const AttentionShape shape = check_qkv(tq, tk, tv);
  Tensor to = to_tensor(o), tlse = to_tensor(lse);
  check_tensor(to, qkv_shape(shape), o.name);
  check_tensor(tlse, lse_shape(shape), lse.name);
  DilatedAttentionKernels& kernels = kernels_for(q);
  wait_for_caller_stream(call, q);
  kernels.forward(config, tq, tk, tv, to, tlse);
  kernels.synchronize();
}

void attention_backward(const AttentionCall& call, const ArrayView& q, const ArrayView& k,
                        const ArrayView& v, const ArrayView& o, const ArrayView& lse,
                        const ArrayView& dout, const ArrayView& dq, const ArrayView& dk,
                        const ArrayView& dv) {
  check_same_device(q, {&k, &v, &o, &lse, &dout, &dq, &dk, &dv});
  const DilatedAttentionConfig config = to_config(call);
  validate_config(config);
  const Tensor tq = to_tensor(q), tk = to_tensor(k), tv = to_tensor(v);
  const AttentionShape shape = check_qkv(tq, tk, tv);
  const Tensor to = to_tensor(o), tlse = to_tensor(lse), tdout = to_tensor(dout);
  Tensor tdq = to_tensor(dq), tdk = to_tensor(dk), tdv = to_tensor(dv);
  check_tensor(to, qkv_shape(shape), o.name);
  check_tensor(tlse, lse_shape(shape), lse.name);
  check_tensor(tdout, qkv_shape(shape), dout.name);
  check_tensor(tdq, qkv_shape(shape), dq.name);
  check_tensor(tdk, qkv_shape(shape), dk.name);
  check_tensor(tdv, qkv_shape(shape), dv.name);
  DilatedAttentionKernels& kernels = kernels_for(q);
  wait_for_caller_stream(call, q);
  kernels.backward(config, tq, tk, tv, to, tlse, tdout, tdq, tdk, tdv);
  kernels.synchronize();
}

bool cuda_kernels_built() {
#ifdef LONGNET_HAVE_CUDA_KERNELS
  return true;
#else
  return false;
#endif
}

}  // namespace longnet::python
