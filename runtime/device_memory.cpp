#include "runtime/device_memory.hpp"
#include "longnet/config.hpp"

#include "runtime/error.hpp"

#ifdef LONGNET_HAVE_CUDA
#include <cuda_runtime.h>
#endif

namespace longnet {

#ifdef LONGNET_HAVE_CUDA
namespace {

void check(cudaError_t status, const char* what, std::size_t bytes) {
  if (status != cudaSuccess) {
    fail("{} of {} bytes failed: {} ({})", what, bytes, cudaGetErrorString(status),
         cudaGetErrorName(status));
  }
}

}  // namespace

bool cuda_device_available(std::string* reason) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess || count == 0) {
    if (reason) {
      *reason = status != cudaSuccess
                    ? fmt::format("no CUDA device: cudaGetDeviceCount returned {} ({})",
                                  cudaGetErrorName(status), cudaGetErrorString(status))
                    : std::string("no CUDA device: the driver reports 0 devices");
    }
    cudaGetLastError();  // clear the sticky error so later calls are not blamed for it
    return false;
  }
  return true;
}

std::shared_ptr<void> allocate_device(std::size_t bytes) {
  void* p = nullptr;
  check(cudaMalloc(&p, bytes == 0 ? 1 : bytes), "cudaMalloc", bytes);
  return {p, [](void* q) { cudaFree(q); }};
}

void copy_memory(void* dst, const void* src, std::size_t bytes, CopyKind kind) {
  if (bytes == 0) return;
  const cudaMemcpyKind cuda_kind = kind == CopyKind::host_to_device   ? cudaMemcpyHostToDevice
                                   : kind == CopyKind::device_to_host ? cudaMemcpyDeviceToHost
                                                                      : cudaMemcpyDeviceToDevice;
  check(cudaMemcpy(dst, src, bytes, cuda_kind), "cudaMemcpy", bytes);
}

void set_device_bytes(void* dst, int byte, std::size_t bytes) {
  check(cudaMemset(dst, byte, bytes), "cudaMemset", bytes);
}

#else

namespace {
[[noreturn]] void no_cuda() {
  fail(
      "this build has no CUDA (configured with LONGNET_CUDA=OFF or without nvcc); rebuild "
      "with -DLONGNET_CUDA=ON to use Device::cuda");
}
}  // namespace

bool cuda_device_available(std::string* reason) {
  if (reason) *reason = "this build has no CUDA (LONGNET_CUDA=OFF)";
  return false;
}
std::shared_ptr<void> allocate_device(std::size_t) { no_cuda(); }
void copy_memory(void*, const void*, std::size_t, CopyKind) { no_cuda(); }
void set_device_bytes(void*, int, std::size_t) { no_cuda(); }

#endif

}  // namespace longnet
