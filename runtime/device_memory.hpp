// Device memory for tensors: allocation and copies through the CUDA runtime, checked.
//
// In a build without CUDA (LONGNET_CUDA=OFF) every function throws an Error that says
// so, rather than pretend: a tensor on Device::cuda cannot exist there.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

namespace longnet {

// Whether this build has CUDA and a device is present; `reason` says why not.
bool cuda_device_available(std::string* reason = nullptr);

std::shared_ptr<void> allocate_device(std::size_t bytes);
enum class CopyKind { host_to_device, device_to_host, device_to_device };
void copy_memory(void* dst, const void* src, std::size_t bytes, CopyKind kind);
// Sets every byte of device memory to `byte`.
void set_device_bytes(void* dst, int byte, std::size_t bytes);

}  // namespace longnet
