// The __half instantiations of the dilated-attention launchers (flash_launch_template.cuh).
#include "kernels/cuda/flash_launch_template.cuh"

namespace longnet::cuda_kernels {

LONGNET_INSTANTIATE_FLASH_LAUNCHERS(__half);

}  // namespace longnet::cuda_kernels
