// One collective API over host memory (MPI, the reference) and device memory (NCCL).
//
// A Communicator is a named group of ranks. Its collectives are templated over the
// element type T (comm/element_type.hpp) and take std::span<T>: every count is in
// elements of T, never in bytes, and mixing element types does not compile. Per-rank
// counts are std::span<const int64_t>, one entry per rank, also in elements of T.
// Blocks are packed: rank j's block starts at element sum_{i<j} counts[i]. T is deduced
// from a std::span<T> receive buffer; with vectors or arrays, name it:
// comm.all_gather<float>(mine, all), comm.broadcast<std::uint8_t>(bytes, 0).
//
// The contract, as in MPI: every rank of the communicator calls the same collectives in
// the same order, with the same root, op and counts vector. Send and receive spans must
// not overlap (use all_reduce_in_place for the one in-place form). Counts may be zero.
//
// Failures. Arguments are checked before anything is communicated, and a bad argument
// throws longnet::Error naming the call, the communicator and the rank; so do failed
// library calls (comm/library_check.hpp). If only some ranks throw, the others are left
// waiting inside the collective: an Error from a communicator must travel to main (or
// the test main), which ends the whole job with MpiSession::abort_job. Do not catch one
// and carry on communicating, unless every rank is known to throw it too (a bad root
// or counts vector passed alike on all ranks). That is how a failure on one rank ends
// the job instead of hanging it.
//
// Counting. Each call is recorded in counters() under its kind and the optional tag
// (comm/comm_counters.hpp defines the bytes counted).
#pragma once

#include "comm/comm_counters.hpp"
#include "comm/element_type.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace longnet {

// Where the spans passed to a communicator must live.
enum class MemorySpace { host, device };

// A collective that was started and may still be running (start_all_reduce_in_place).
// wait() completes it and reports a failure as Error; the destructor of a handle never
// waited for waits too, ignoring errors (they would have no one to report to). test()
// says whether it has completed without blocking, for a rank that would rather sleep
// than spin while it waits (an idle rank of a benchmark sharing the cores).
class PendingCollective {
 public:
  virtual ~PendingCollective() = default;
  virtual void wait() = 0;
  virtual bool test() = 0;
};

class Communicator {
 public:
  // The color of split() for a rank that joins no sub-communicator.
  static constexpr std::nullopt_t kNoColor = std::nullopt;

  virtual ~Communicator() = default;
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  // The name given at creation, e.g. "world" or "pattern 2 group 1": it appears in
  // every error message about this communicator.
  const std::string& name() const { return name_; }
  virtual std::string_view backend() const = 0;  // "mpi", "nccl"
  virtual MemorySpace memory_space() const = 0;

  // Returns on each rank once every rank has entered it.
  void barrier(std::string_view tag = {});

  // Copies root's buffer to every rank's buffer (buffer.size() elements, equal on all).
  template <CommElement T>
  void broadcast(std::span<T> buffer, int root, std::string_view tag = {});

  // recv[i] = op over ranks of send[i]; send and recv hold the same count on all ranks.
  template <CommElement T>
  void all_reduce(std::span<const std::type_identity_t<T>> send, std::span<T> recv, ReduceOp op,
                  std::string_view tag = {});
  template <CommElement T>
  void all_reduce_in_place(std::span<T> buffer, ReduceOp op, std::string_view tag = {});
  // The same, started and left to complete while this rank does other work (gradient
  // buckets reduced while the backward goes on): buffer must stay untouched until the
  // returned handle's wait(). Every rank starts the same collectives in the same order.
  // A back end without non-blocking collectives completes it before returning.
  template <CommElement T>
  std::unique_ptr<PendingCollective> start_all_reduce_in_place(std::span<T> buffer, ReduceOp op,
                                                               std::string_view tag = {});

  // recv = the send spans of ranks 0..size-1, concatenated. Every rank sends the same
  // count c; recv holds size() * c elements.
  template <CommElement T>
  void all_gather(std::span<const std::type_identity_t<T>> send, std::span<T> recv,
                  std::string_view tag = {});
  // As all_gather with per-rank counts: send holds counts[rank()] elements, recv holds
  // sum(counts), rank j's block at sum_{i<j} counts[i].
  template <CommElement T>
  void all_gatherv(std::span<const std::type_identity_t<T>> send, std::span<T> recv,
                   std::span<const std::int64_t> counts, std::string_view tag = {});

  // send holds size() blocks of recv.size() elements; recv = op over ranks of block rank().
  template <CommElement T>
  void reduce_scatter(std::span<const std::type_identity_t<T>> send, std::span<T> recv, ReduceOp op,
                      std::string_view tag = {});
  // As reduce_scatter with per-rank counts: send holds sum(counts) elements, rank j's
  // block at sum_{i<j} counts[i]; recv holds counts[rank()] elements.
  template <CommElement T>
  void reduce_scatterv(std::span<const std::type_identity_t<T>> send, std::span<T> recv,
                       std::span<const std::int64_t> counts, ReduceOp op,
                       std::string_view tag = {});

  // Collective: ranks passing the same color (>= 0) form one sub-communicator named
  // `name`, ranked by key (ties broken by rank here). A rank passing kNoColor takes
  // part in the call and gets nullptr. The result is independent of this communicator
  // (its own counters, its own stream for NCCL) and may outlive it.
  std::unique_ptr<Communicator> split(std::optional<int> color, int key, std::string name);

  // Waits until every collective issued so far has completed on this rank. MPI's
  // collectives complete before they return, so for MPI this returns at once; NCCL's
  // are enqueued on a stream (see NcclCommunicator::synchronize).
  virtual void synchronize() = 0;

  const CommCounters& counters() const { return counters_; }
  void reset_counters() { counters_.reset(); }

 protected:
  Communicator(int rank, int size, std::string name);

  // The back end. Buffers are untyped here; counts are in elements of `type` and have
  // been checked by the front end. send == recv in do_all_reduce means in place.
  virtual void do_barrier() = 0;
  virtual void do_broadcast(void* buffer, std::int64_t count, ElementType type, int root) = 0;
  virtual void do_all_reduce(const void* send, void* recv, std::int64_t count, ElementType type,
                             ReduceOp op) = 0;
  // Default: do_all_reduce in place, then a completed handle.
  virtual std::unique_ptr<PendingCollective> do_start_all_reduce(void* buffer, std::int64_t count,
                                                                 ElementType type, ReduceOp op);
  virtual void do_all_gather(const void* send, void* recv, std::int64_t count,
                             ElementType type) = 0;
  virtual void do_all_gatherv(const void* send, void* recv, std::span<const std::int64_t> counts,
                              ElementType type) = 0;
  virtual void do_reduce_scatter(const void* send, void* recv, std::int64_t count, ElementType type,
                                 ReduceOp op) = 0;
  virtual void do_reduce_scatterv(const void* send, void* recv,
                                  std::span<const std::int64_t> counts, ElementType type,
                                  ReduceOp op) = 0;
  // color is >= 0 or absent; returns nullptr exactly when color is absent.
  virtual std::unique_ptr<Communicator> do_split(std::optional<int> color, int key,
                                                 std::string name) = 0;
  // The tag of the collective the front end is running now (valid during a do_* call),
  // for back ends whose errors name it (the MPI watchdog).
  std::string_view current_tag() const { return tag_in_flight_; }

 private:
  // One contiguous buffer as the checks see it: where, how many elements, of what.
  struct Extent {
    const void* data;
    std::int64_t count;
    ElementType type;
  };
  template <typename T>
  requires CommElement<std::remove_const_t<T>>
  static Extent extent(std::span<T> s) {
    return {s.data(), static_cast<std::int64_t>(s.size()), element_type_v<std::remove_const_t<T>>};
  }

  // The argument checks; each throws Error naming the call, the communicator and rank.
  void check_root(std::string_view call, int root) const;
  void check_same_count(std::string_view call, Extent send, Extent recv) const;
  void check_disjoint(std::string_view call, Extent send, Extent recv) const;
  void check_all_gather(Extent send, Extent recv) const;
  void check_reduce_scatter(Extent send, Extent recv) const;
  // Checks counts (one per rank, none negative), that the rank's own block holds
  // counts[rank] elements and the packed buffer sum(counts).
  void check_counts(std::string_view call, std::span<const std::int64_t> counts, Extent own,
                    Extent packed) const;
  std::vector<std::int64_t> equal_counts(std::int64_t count) const {
    return std::vector<std::int64_t>(static_cast<std::size_t>(size_), count);
  }

  int rank_;
  int size_;
  std::string name_;
  CommCounters counters_;
  std::string_view tag_in_flight_;
};

// ---- the typed front end: check, call the back end, count ---------------------------

template <CommElement T>
void Communicator::broadcast(std::span<T> buffer, int root, std::string_view tag) {
  check_root("broadcast", root);
  const auto count = static_cast<std::int64_t>(buffer.size());
  tag_in_flight_ = tag;
  do_broadcast(buffer.data(), count, element_type_v<T>, root);
  counters_.record(CollectiveKind::broadcast, tag,
                   broadcast_traffic(rank_, size_, root, count, sizeof(T)));
}

template <CommElement T>
void Communicator::all_reduce(std::span<const std::type_identity_t<T>> send, std::span<T> recv,
                              ReduceOp op, std::string_view tag) {
  check_same_count("all_reduce", extent(send), extent(recv));
  check_disjoint("all_reduce", extent(send), extent(recv));
  const auto count = static_cast<std::int64_t>(recv.size());
  tag_in_flight_ = tag;
  do_all_reduce(send.data(), recv.data(), count, element_type_v<T>, op);
  counters_.record(CollectiveKind::all_reduce, tag, all_reduce_traffic(size_, count, sizeof(T)));
}

template <CommElement T>
std::unique_ptr<PendingCollective> Communicator::start_all_reduce_in_place(std::span<T> buffer,
                                                                           ReduceOp op,
                                                                           std::string_view tag) {
  const auto count = static_cast<std::int64_t>(buffer.size());
  tag_in_flight_ = tag;
  auto pending = do_start_all_reduce(buffer.data(), count, element_type_v<T>, op);
  counters_.record(CollectiveKind::all_reduce, tag, all_reduce_traffic(size_, count, sizeof(T)));
  return pending;
}

template <CommElement T>
void Communicator::all_reduce_in_place(std::span<T> buffer, ReduceOp op, std::string_view tag) {
  const auto count = static_cast<std::int64_t>(buffer.size());
  tag_in_flight_ = tag;
  do_all_reduce(buffer.data(), buffer.data(), count, element_type_v<T>, op);
  counters_.record(CollectiveKind::all_reduce, tag, all_reduce_traffic(size_, count, sizeof(T)));
}

template <CommElement T>
void Communicator::all_gather(std::span<const std::type_identity_t<T>> send, std::span<T> recv,
                              std::string_view tag) {
  check_all_gather(extent(send), extent(recv));
  const auto count = static_cast<std::int64_t>(send.size());
  tag_in_flight_ = tag;
  do_all_gather(send.data(), recv.data(), count, element_type_v<T>);
  counters_.record(CollectiveKind::all_gather, tag,
                   all_gather_traffic(rank_, equal_counts(count), sizeof(T)));
}

template <CommElement T>
void Communicator::all_gatherv(std::span<const std::type_identity_t<T>> send, std::span<T> recv,
                               std::span<const std::int64_t> counts, std::string_view tag) {
  check_counts("all_gatherv", counts, extent(send), extent(recv));
  check_disjoint("all_gatherv", extent(send), extent(recv));
  tag_in_flight_ = tag;
  do_all_gatherv(send.data(), recv.data(), counts, element_type_v<T>);
  counters_.record(CollectiveKind::all_gather, tag, all_gather_traffic(rank_, counts, sizeof(T)));
}

template <CommElement T>
void Communicator::reduce_scatter(std::span<const std::type_identity_t<T>> send, std::span<T> recv,
                                  ReduceOp op, std::string_view tag) {
  check_reduce_scatter(extent(send), extent(recv));
  const auto count = static_cast<std::int64_t>(recv.size());
  tag_in_flight_ = tag;
  do_reduce_scatter(send.data(), recv.data(), count, element_type_v<T>, op);
  counters_.record(CollectiveKind::reduce_scatter, tag,
                   reduce_scatter_traffic(rank_, equal_counts(count), sizeof(T)));
}

template <CommElement T>
void Communicator::reduce_scatterv(std::span<const std::type_identity_t<T>> send, std::span<T> recv,
                                   std::span<const std::int64_t> counts, ReduceOp op,
                                   std::string_view tag) {
  check_counts("reduce_scatterv", counts, extent(recv), extent(send));
  check_disjoint("reduce_scatterv", extent(send), extent(recv));
  tag_in_flight_ = tag;
  do_reduce_scatterv(send.data(), recv.data(), counts, element_type_v<T>, op);
  counters_.record(CollectiveKind::reduce_scatter, tag,
                   reduce_scatter_traffic(rank_, counts, sizeof(T)));
}

}  // namespace longnet
