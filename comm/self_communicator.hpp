// The size-1 communicator: one process on its own, host memory. Every collective is the
// copy it amounts to with one rank (a reduction over one rank is its input, bit for bit),
// so code written for P ranks runs unchanged, through the same front end, checks and
// counters, in a process without MPI.
#pragma once

#include "comm/communicator.hpp"

#include <memory>
#include <string>

namespace longnet {

class SelfCommunicator final : public Communicator {
 public:
  explicit SelfCommunicator(std::string name = "self");

  std::string_view backend() const override { return "self"; }
  MemorySpace memory_space() const override { return MemorySpace::host; }
  void synchronize() override {}

 protected:
  void do_barrier() override {}
  void do_broadcast(void*, std::int64_t, ElementType, int) override {}
  void do_all_reduce(const void* send, void* recv, std::int64_t count, ElementType type,
                     ReduceOp op) override;
  void do_all_gather(const void* send, void* recv, std::int64_t count, ElementType type) override;
  void do_all_gatherv(const void* send, void* recv, std::span<const std::int64_t> counts,
                      ElementType type) override;
  void do_reduce_scatter(const void* send, void* recv, std::int64_t count, ElementType type,
                         ReduceOp op) override;
  void do_reduce_scatterv(const void* send, void* recv, std::span<const std::int64_t> counts,
                          ElementType type, ReduceOp op) override;
  std::unique_ptr<Communicator> do_split(std::optional<int> color, int key,
                                         std::string name) override;
};

}  // namespace longnet
