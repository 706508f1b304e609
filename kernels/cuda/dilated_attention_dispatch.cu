// Dispatch of one pattern over (dtype in {bf16, fp16, fp32}) x (head dim in {32, 64, 128})
// x causal x extras to the launcher instantiation for it (flash_launch.hpp). bf16 and fp16 run the
// tensor-core kernels, fp32 the CUDA-core ones (flash_traits.cuh says why).
#include "kernels/cuda/dilated_attention_launch.hpp"
#include "kernels/cuda/flash_launch.hpp"
#include "runtime/cuda_check.hpp"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <string>

namespace longnet::cuda_kernels {
namespace {

// Calls fn.template operator()<T, kHeadDim, kCausal, kExtras>() for the run-time
// choices; the backend has validated them, so a miss here is a bug reported as an Error.
template <typename Fn>
void dispatch(DType dtype, int head_dim, bool causal, bool extras, Fn&& fn) {
  auto with_extras = [&]<typename T, int kHeadDim, bool kCausal>() {
    if (extras) {
      fn.template operator()<T, kHeadDim, kCausal, true>();
    } else {
      fn.template operator()<T, kHeadDim, kCausal, false>();
    }
  };
  auto with_causal = [&]<typename T, int kHeadDim>() {
    if (causal) {
      with_extras.template operator()<T, kHeadDim, true>();
    } else {
      with_extras.template operator()<T, kHeadDim, false>();
    }
  };
  auto with_head_dim = [&]<typename T>() {
    switch (head_dim) {
      case 32:
        return with_causal.template operator()<T, 32>();
      case 64:
        return with_causal.template operator()<T, 64>();
      case 128:
        return with_causal.template operator()<T, 128>();
      default:
        ::longnet::detail::throw_error("no CUDA kernels for head dim " + std::to_string(head_dim) +
                                       " (supported: 32, 64, 128)");
    }
  };
  switch (dtype) {
    case DType::bfloat16:
      return with_head_dim.template operator()<__nv_bfloat16>();
    case DType::float16:
      return with_head_dim.template operator()<__half>();
    case DType::float32:
      return with_head_dim.template operator()<float>();
    case DType::float64:
      break;
  }
  ::longnet::detail::throw_error("no CUDA kernels for dtype " + std::string(dtype_name(dtype)) +
                                 " (supported: bfloat16, float16, float32)");
}

}  // namespace

void forward_pattern(DType dtype, const FlashParams& params, cudaStream_t stream) {
  dispatch(dtype, params.head_dim, params.causal, params.extras,
           [&]<typename T, int kHeadDim, bool kCausal, bool kExtras>() {
             launch_forward<T, kHeadDim, kCausal, kExtras>(params, stream);
           });
}

void backward_pattern(DType dtype, const FlashParams& params, bool deterministic,
                      cudaStream_t stream) {
  dispatch(dtype, params.head_dim, params.causal, params.extras,
           [&]<typename T, int kHeadDim, bool kCausal, bool kExtras>() {
             launch_backward<T, kHeadDim, kCausal, kExtras>(params, deterministic, stream);
           });
}

}  // namespace longnet::cuda_kernels
