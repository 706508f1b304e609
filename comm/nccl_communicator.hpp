// The NCCL Communicator: device memory, one CUDA device per rank. Built with LONGNET_CUDA.
//
// Creation is collective over an MpiCommunicator, the bootstrap: rank 0 makes the
// ncclUniqueId and broadcasts it over MPI, and every rank joins with
// ncclCommInitRankConfig on its own device. split() is ncclCommSplit. Spans passed to
// the collectives point to memory of this rank's device.
//
// Streams. Each communicator owns a non-blocking CUDA stream (stream()); a collective is
// enqueued there and returns at once, and synchronize() waits for it. Work on other
// streams must be ordered with events or by synchronising. Counters are recorded when a
// collective is enqueued.
//
// Per-rank counts. all_gatherv is one ncclBroadcast per rank with a nonzero count, from
// that rank into its place in recv; reduce_scatterv is one ncclReduce per rank, to that
// rank; either way they are grouped (ncclGroupStart/End) into one launch. With equal
// counts they are ncclAllGather / ncclReduceScatter. Why not ncclSend/ncclRecv: a
// reduce-scatterv by send/recv needs a staging buffer of size * block and a reduction
// kernel of our own, where ncclReduce reduces inside NCCL with no extra memory; and the
// rooted collectives keep NCCL's ring and tree algorithms and topology awareness, where
// P-1 direct sends from every rank only match them on an all-to-all switch (NVSwitch).
// The cost: NCCL runs the grouped operations one after another on its channels, so an
// uneven gather takes about P/(P-1) times a ring all-gather of the same total.
//
// Grouping. Collectives issued while an NcclGroup is open (on any NcclCommunicator of
// this thread) are launched together when it ends, e.g. the gathers of several patterns:
//   NcclGroup group;
//   comm.all_gatherv(k_local, k_all, counts, "pattern 1 gather k");
//   comm.all_gatherv(v_local, v_all, counts, "pattern 1 gather v");
//   group.end();  // launches both; NCCL errors are thrown here
// Inside a group, do not call barrier() or synchronize(): nothing has been launched yet.
//
// Failures. A failed call throws (LONGNET_NCCL_CHECK, LONGNET_CUDA_CHECK). Errors that
// happen later on the device or on the network (a peer died, a link failed) surface in
// synchronize(), which polls the stream and ncclCommGetAsyncError and gives up after
// Options::timeout; either way it calls ncclCommAbort, which stops what is still running
// on the device, and throws. The trap is the destructor: ncclCommDestroy waits for
// outstanding work, which after a failure may never finish, and then main would never
// reach MpiSession::abort_job and the job would hang. So a communicator that failed,
// whose stream does not drain within the timeout, or that is destroyed during stack
// unwinding is aborted, never destroyed.
#pragma once

#include "comm/communicator.hpp"
#include "comm/mpi_communicator.hpp"

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

namespace longnet {

struct NcclCommunicatorOptions {
  // How long synchronize() (and the destructor) wait for the stream before they abort
  // the communicator. A deadlock detector, not a performance knob: ten minutes, like
  // PyTorch's default NCCL timeout.
  std::chrono::seconds timeout{600};
};

class NcclCommunicator final : public Communicator {
 public:
  using Options = NcclCommunicatorOptions;

  // Collective over `bootstrap`: each rank passes the CUDA device it will use (one rank
  // per device). Throws on every rank if any rank cannot select its device.
  static std::unique_ptr<NcclCommunicator> create(MpiCommunicator& bootstrap, int device,
                                                  std::string name, Options options = {});
  ~NcclCommunicator() override;

  ncclComm_t handle() const { return comm_; }
  cudaStream_t stream() const { return stream_; }
  int device() const { return device_; }

  std::string_view backend() const override { return "nccl"; }
  MemorySpace memory_space() const override { return MemorySpace::device; }

  // Waits for every collective enqueued on stream(); throws (after ncclCommAbort) on an
  // asynchronous CUDA or NCCL error or when Options::timeout passes.
  void synchronize() override;

  // Stops this communicator's work on the device and frees it (ncclCommAbort); any later
  // call throws. For callers that know the job is failing.
  void abort() noexcept;

 protected:
  // Barrier: an all-reduce of one word, then synchronize().
  void do_barrier() override;
  void do_broadcast(void* buffer, std::int64_t count, ElementType type, int root) override;
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

 private:
  // Takes ownership of `comm` (aborted if this throws): creates the stream and scratch.
  static std::unique_ptr<NcclCommunicator> adopt(ncclComm_t comm, int device, std::string name,
                                                 Options options);
  NcclCommunicator(ncclComm_t comm, int rank, int size, int device, std::string name,
                   Options options);

  // How waiting for the stream ended; the error code when it did not drain.
  struct StreamWait {
    enum class Outcome { drained, cuda_error, nccl_error, timed_out } outcome;
    cudaError_t cuda = cudaSuccess;
    ncclResult_t nccl = ncclSuccess;
  };
  StreamWait wait_for_stream() const noexcept;

  // Runs fn; a throw marks the communicator failed, so the destructor aborts it.
  template <typename Fn>
  void guarded(Fn&& fn);

  ncclComm_t comm_;
  cudaStream_t stream_ = nullptr;
  int device_;
  Options options_;
  std::string context_;                   // "NCCL communicator 'name'", for check messages
  std::int32_t* barrier_word_ = nullptr;  // one device word for barrier()
  bool failed_ = false;                   // a call threw: abort, never destroy
  bool aborted_ = false;                  // ncclCommAbort was called: comm_ is gone
};

// An open NCCL group (ncclGroupStart); end() launches what was issued since (ncclGroupEnd)
// and throws on failure. Groups nest: the outermost end() launches. If end() was not
// called, as when an exception unwinds through the group, the destructor ends it and
// ignores the result: the job is failing, and main's abort_job ends it.
class NcclGroup {
 public:
  NcclGroup();
  ~NcclGroup();
  NcclGroup(const NcclGroup&) = delete;
  NcclGroup& operator=(const NcclGroup&) = delete;
  void end();

 private:
  bool open_ = true;
};

// Runs fn inside an NcclGroup and ends it: nccl_group([&] { a.all_gatherv(...); ... });
template <typename Fn>
void nccl_group(Fn&& fn) {
  NcclGroup group;
  std::forward<Fn>(fn)();
  group.end();
}

}  // namespace longnet
