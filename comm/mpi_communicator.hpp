// The MPI Communicator: host memory, and the reference every other back end is tested
// against.
//
// Each MpiCommunicator owns a duplicate of an MPI communicator, named with
// MPI_Comm_set_name and set to MPI_ERRORS_RETURN, so every call is checked with
// LONGNET_MPI_CHECK (comm/mpi_check.hpp) and our traffic never matches messages of code
// that uses the parent communicator.
//
// Counts beyond INT_MAX. MPI-3 counts and displacements are int (the large-count "_c"
// functions arrive with MPI-4, which Open MPI 4.1 does not have). A collective whose
// total element count (hence every count and displacement) fits in
// Options::max_elements_per_call, INT_MAX, is one MPI call: MPI_Bcast, MPI_Allreduce,
// MPI_Allgather(v), MPI_Reduce_scatter(_block). A larger one is split into calls of at
// most that many elements, with pointers computed in 64 bits:
//   broadcast, all-reduce      consecutive slices;
//   all-gather(v)              each rank's block broadcast from its owner, slice by slice;
//   reduce-scatter(v)          each rank's block reduced onto its owner (MPI_Reduce),
//                              slice by slice.
// The rooted form delivers the same data with about P times more calls; it is only taken
// at 2^31 elements and more, where bandwidth, not the number of calls, sets the time.
// Derived datatypes would avoid the split for gathers but not for reductions (MPI's
// predefined ops only reduce predefined types), so one mechanism serves all. Tests lower
// the limit to a few elements to run the split paths on small buffers.
//
// Every collective is started non-blocking (MPI_I*) and completed under the collective
// watchdog (comm/collective_watchdog.hpp), so a rank left waiting by the others ends the
// job with a message instead of hanging it.
#pragma once

#include "comm/collective_watchdog.hpp"
#include "comm/communicator.hpp"

#include <mpi.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>

namespace longnet {

// The most elements one MPI call can carry: MPI counts are int.
inline constexpr std::int64_t kMaxMpiCount = std::numeric_limits<int>::max();

// (At namespace scope: a nested struct with default member initialisers cannot be a
// default argument of its enclosing class's members.)
struct MpiCommunicatorOptions {
  // The most elements (and the largest displacement) one MPI call may carry; larger
  // collectives are split as the file top describes. In 1..kMaxMpiCount.
  std::int64_t max_elements_per_call = kMaxMpiCount;
};

class MpiCommunicator final : public Communicator {
 public:
  using Options = MpiCommunicatorOptions;

  // A communicator over every rank (a duplicate of MPI_COMM_WORLD). Collective; MPI must
  // be running (an MpiSession exists).
  static std::unique_ptr<MpiCommunicator> world(std::string name = "world", Options options = {});
  // A duplicate of `comm`. Collective over comm.
  static std::unique_ptr<MpiCommunicator> duplicate(MPI_Comm comm, std::string name,
                                                    Options options = {});

  // Frees the MPI communicator; destroy every MpiCommunicator before the MpiSession.
  ~MpiCommunicator() override;

  // The MPI handle, for code that calls MPI directly (check it with LONGNET_MPI_CHECK).
  MPI_Comm handle() const { return comm_; }
  const Options& options() const { return options_; }

  // Seconds a rank may wait in one collective before it throws Error naming the missing
  // ranks (comm/collective_watchdog.hpp); 0 = no limit. At creation: the environment
  // variable LONGNET_COLLECTIVE_TIMEOUT, else 600 s; sub-communicators from split start
  // with their parent's. Set it alike on every rank.
  void set_collective_timeout(double seconds) { watchdog_->set_timeout(seconds); }
  double collective_timeout() const { return watchdog_->timeout_s(); }

  std::string_view backend() const override { return "mpi"; }
  MemorySpace memory_space() const override { return MemorySpace::host; }
  void synchronize() override {}

  // split() keeping the MPI type, e.g. to bootstrap an NcclCommunicator on a subgroup.
  std::unique_ptr<MpiCommunicator> split_mpi(std::optional<int> color, int key, std::string name);
  // The ranks that share this rank's node (MPI_COMM_TYPE_SHARED), in the order they have
  // here; its rank() is the local index that picks this rank's GPU. Collective.
  std::unique_ptr<MpiCommunicator> split_by_node(std::string name);

 protected:
  void do_barrier() override;
  void do_broadcast(void* buffer, std::int64_t count, ElementType type, int root) override;
  std::unique_ptr<PendingCollective> do_start_all_reduce(void* buffer, std::int64_t count,
                                                         ElementType type, ReduceOp op) override;
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
  // Takes ownership of `comm` (freed if this throws): sets its name and error handler.
  // The watchdog's limit: timeout_s, else CollectiveWatchdog::resolve_timeout's.
  static std::unique_ptr<MpiCommunicator> adopt(MPI_Comm comm, std::string name, Options options,
                                                std::optional<double> timeout_s = std::nullopt);
  MpiCommunicator(MPI_Comm comm, int rank, int size, std::string name, Options options);

  // The split paths of the file top.
  void all_gatherv_by_broadcasts(const void* send, void* recv, std::span<const std::int64_t> counts,
                                 ElementType type);
  void reduce_scatterv_by_reduces(const void* send, void* recv,
                                  std::span<const std::int64_t> counts, ElementType type,
                                  ReduceOp op);
  // Starts one MPI collective, start(&request), and completes it under the watchdog.
  template <typename Start>
  void run(std::string_view collective, Start&& start);
  // Calls fn(first, n) for consecutive slices [first, first + n) of count elements, each
  // at most max_elements_per_call long; none when count is 0.
  template <typename Fn>
  void for_each_slice(std::int64_t count, Fn&& fn) const;

  MPI_Comm comm_;
  Options options_;
  std::string context_;  // "communicator 'name'", for LONGNET_MPI_CHECK messages
  std::unique_ptr<CollectiveWatchdog> watchdog_;
};

}  // namespace longnet
