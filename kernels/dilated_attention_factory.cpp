#include "kernels/dilated_attention_factory.hpp"

#include "kernels/cpu/dilated_attention_cpu.hpp"
#include "longnet/config.hpp"
#include "runtime/error.hpp"

#ifdef LONGNET_HAVE_CUDA_KERNELS
#include "kernels/cuda/dilated_attention_cuda.hpp"
#endif

namespace longnet {
namespace {

std::unique_ptr<DilatedAttentionOp> make_cuda(DType dtype, [[maybe_unused]] int cuda_device) {
#ifdef LONGNET_HAVE_CUDA_KERNELS
  (void)dtype;
  return make_cuda_dilated_attention(cuda_device);
#else
  fail(
      "no CUDA backend for {} inputs: this build has no CUDA kernels (configured with "
      "LONGNET_CUDA=OFF or without nvcc); rebuild with nvcc on PATH",
      dtype_name(dtype));
#endif
}

}  // namespace

std::unique_ptr<DilatedAttentionOp> make_dilated_attention(Device device, DType dtype,
                                                           std::optional<CpuIsa> isa,
                                                           int cuda_device) {
  std::unique_ptr<DilatedAttentionOp> op;
  if (device == Device::cuda) {
    op = make_cuda(dtype, cuda_device);
  } else {
    const CpuIsa chosen = isa.value_or(default_cpu_isa());
    LONGNET_CHECK(cpu_isa_available(chosen),
                  "the {} CPU kernels cannot run on this processor or build; the best available "
                  "is {}",
                  cpu_isa_name(chosen), cpu_isa_name(available_cpu_isas().back()));
    op = make_cpu_dilated_attention(chosen);
  }
  if (auto reason = op->supports_dtype(dtype)) {
    fail("the {} backend cannot take {} inputs: {}", op->name(), dtype_name(dtype), *reason);
  }
  return op;
}

}  // namespace longnet
