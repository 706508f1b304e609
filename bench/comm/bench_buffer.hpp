// A benchmark buffer in host or device memory, with guard regions on both sides.
//
// The collective sees only the interior span (count elements); kGuardElements elements
// before and after it are filled with kPoison and checked after the correctness pass, so
// a library writing outside the span is counted in #wrong rather than corrupting the
// heap silently. Device memory (MemorySpace::device, the NCCL backend) exists only in a
// build with NCCL (LONGNET_HAVE_NCCL); upload and download copy the whole allocation,
// guards included, so the check reads exactly what the device holds.
#pragma once

#include "comm/communicator.hpp"
#include "longnet/config.hpp"
#include "runtime/error.hpp"

#ifdef LONGNET_HAVE_NCCL
#include "runtime/cuda_check.hpp"
#include "runtime/nccl_check.hpp"

#include <cuda_runtime_api.h>
#endif

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

namespace longnet::bench {

// Elements of guard on each side of a buffer: 64 bytes and more for every element type.
inline constexpr std::int64_t kGuardElements = 16;

template <CommElement T>
class BenchBuffer {
 public:
  BenchBuffer(std::int64_t count, MemorySpace space) : count_(count), space_(space) {
    const std::size_t n = allocated();
    if (space_ == MemorySpace::host) {
      host_.resize(n);
      data_ = host_.data();
      return;
    }
#ifdef LONGNET_HAVE_NCCL
    LONGNET_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&data_), n * sizeof(T)),
                       "benchmark buffer");
#else
    fail("device buffers need a build with NCCL (LONGNET_CUDA=ON and NCCL found)");
#endif
  }
  ~BenchBuffer() {
#ifdef LONGNET_HAVE_NCCL
    if (space_ == MemorySpace::device && data_ != nullptr) cudaFree(data_);
#endif
  }
  BenchBuffer(const BenchBuffer&) = delete;
  BenchBuffer& operator=(const BenchBuffer&) = delete;

  // Elements including both guards.
  std::size_t allocated() const { return static_cast<std::size_t>(count_ + 2 * kGuardElements); }
  // What the collective reads or writes.
  std::span<T> interior() { return {data_ + kGuardElements, static_cast<std::size_t>(count_)}; }

  // whole.size() == allocated(): guards, interior, guards.
  void upload(std::span<const T> whole) {
    LONGNET_CHECK(whole.size() == allocated(), "upload of {} elements into a buffer of {}",
                  whole.size(), allocated());
    if (space_ == MemorySpace::host) {
      std::copy(whole.begin(), whole.end(), host_.begin());
      return;
    }
#ifdef LONGNET_HAVE_NCCL
    LONGNET_CUDA_CHECK(cudaMemcpy(data_, whole.data(), whole.size_bytes(), cudaMemcpyHostToDevice));
#endif
  }
  std::vector<T> download() const {
    if (space_ == MemorySpace::host) return host_;
    std::vector<T> whole(allocated());
#ifdef LONGNET_HAVE_NCCL
    LONGNET_CUDA_CHECK(
        cudaMemcpy(whole.data(), data_, whole.size() * sizeof(T), cudaMemcpyDeviceToHost));
#endif
    return whole;
  }

 private:
  std::int64_t count_;
  MemorySpace space_;
  std::vector<T> host_;  // the storage when space_ is host
  T* data_ = nullptr;
};

}  // namespace longnet::bench
