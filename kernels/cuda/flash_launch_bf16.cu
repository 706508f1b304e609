// The __nv_bfloat16 instantiations of the dilated-attention launchers (flash_launch_template.cuh).
#include "kernels/cuda/flash_launch_template.cuh"

namespace longnet::cuda_kernels {

LONGNET_INSTANTIATE_FLASH_LAUNCHERS(__nv_bfloat16);

}  // namespace longnet::cuda_kernels
