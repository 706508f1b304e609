// MpiCommunicator: each collective as one checked MPI call, or split into rooted calls
// when it exceeds the int range of MPI counts (see the header).
#include "comm/mpi_communicator.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <numeric>
#include <utility>
#include <vector>

#include "runtime/error.hpp"
#include "runtime/mpi_check.hpp"

namespace longnet {
namespace {

MPI_Datatype mpi_type(ElementType type) {
  switch (type) {
    case ElementType::int8:
      return MPI_INT8_T;
    case ElementType::uint8:
      return MPI_UINT8_T;
    case ElementType::int32:
      return MPI_INT32_T;
    case ElementType::uint32:
      return MPI_UINT32_T;
    case ElementType::int64:
      return MPI_INT64_T;
    case ElementType::uint64:
      return MPI_UINT64_T;
    case ElementType::float32:
      return MPI_FLOAT;
    case ElementType::float64:
      return MPI_DOUBLE;
    // No MPI type for 16-bit floats: opaque 2-byte elements, fine for moving them
    // (reductions go through mpi_reduce_type, which refuses them).
    case ElementType::bfloat16:
    case ElementType::float16:
      return MPI_UINT16_T;
  }
  fail("no MPI datatype for element type {}", static_cast<int>(type));
}

// The datatype of a reduction: MPI cannot add or compare 16-bit floats.
MPI_Datatype mpi_reduce_type(ElementType type, ReduceOp op) {
  LONGNET_CHECK(!is_half_precision(type),
                "MPI cannot {}-reduce {} elements (MPI has no 16-bit float type); convert "
                "them to float32 first, or use the NCCL communicator",
                reduce_op_name(op), element_type_name(type));
  return mpi_type(type);
}

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum:
      return MPI_SUM;
    case ReduceOp::max:
      return MPI_MAX;
    case ReduceOp::min:
      return MPI_MIN;
  }
  fail("no MPI reduction for op {}", static_cast<int>(op));
}

// Callers have checked n against max_elements_per_call, which is at most INT_MAX.
int mpi_count(std::int64_t n) { return static_cast<int>(n); }

// Element `index` of a buffer of `type`, as a byte address computed in 64 bits.
std::byte* at(void* base, std::int64_t index, ElementType type) {
  return static_cast<std::byte*>(base) + index * static_cast<std::int64_t>(element_size(type));
}
const std::byte* at(const void* base, std::int64_t index, ElementType type) {
  return static_cast<const std::byte*>(base) +
         index * static_cast<std::int64_t>(element_size(type));
}

// offsets[j] = sum_{i<j} counts[i]: where rank j's block starts in a packed buffer.
std::vector<std::int64_t> block_offsets(std::span<const std::int64_t> counts) {
  std::vector<std::int64_t> offsets(counts.size(), 0);
  std::exclusive_scan(counts.begin(), counts.end(), offsets.begin(), std::int64_t{0});
  return offsets;
}

std::int64_t sum_of(std::span<const std::int64_t> counts) {
  return std::accumulate(counts.begin(), counts.end(), std::int64_t{0});
}

std::vector<int> to_mpi_counts(std::span<const std::int64_t> values) {
  std::vector<int> out(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) out[i] = mpi_count(values[i]);
  return out;
}

// Owns an MPI communicator until released; frees it if construction throws midway.
class CommGuard {
 public:
  explicit CommGuard(MPI_Comm comm) : comm_(comm) {}
  ~CommGuard() {
    if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
  }
  CommGuard(const CommGuard&) = delete;
  CommGuard& operator=(const CommGuard&) = delete;
  MPI_Comm get() const { return comm_; }
  MPI_Comm release() { return std::exchange(comm_, MPI_COMM_NULL); }

 private:
  MPI_Comm comm_;
};

}  // namespace

// ---- creation and destruction ---------------------------------------------------------

std::unique_ptr<MpiCommunicator> MpiCommunicator::world(std::string name, Options options) {
  int initialized = 0;
  int finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  LONGNET_CHECK(initialized != 0 && finalized == 0,
                "MpiCommunicator::world('{}'): MPI is not running; create an MpiSession in "
                "main first and keep it alive while communicators exist",
                name);
  return duplicate(MPI_COMM_WORLD, std::move(name), options);
}

std::unique_ptr<MpiCommunicator> MpiCommunicator::duplicate(MPI_Comm comm, std::string name,
                                                            Options options) {
  // Errors name the process by its rank in the job, also where another library (mpi4py,
  // whose communicators come through here) started MPI rather than an MpiSession.
  int world_rank = 0;
  int world_size = 0;
  LONGNET_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &world_rank));
  LONGNET_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &world_size));
  register_process_rank(world_rank, world_size);
  MPI_Comm copy = MPI_COMM_NULL;
  LONGNET_MPI_CHECK(MPI_Comm_dup(comm, &copy), fmt::format("duplicating for '{}'", name));
  return adopt(copy, std::move(name), options);
}

std::unique_ptr<MpiCommunicator> MpiCommunicator::adopt(MPI_Comm comm, std::string name,
                                                        Options options,
                                                        std::optional<double> timeout_s) {
  CommGuard guard(comm);
  const std::string context = fmt::format("communicator '{}'", name);
  LONGNET_CHECK(options.max_elements_per_call >= 1 && options.max_elements_per_call <= kMaxMpiCount,
                "{}: max_elements_per_call = {} is outside 1..{} (MPI counts are int)", context,
                options.max_elements_per_call, kMaxMpiCount);
  LONGNET_MPI_CHECK(MPI_Comm_set_errhandler(guard.get(), MPI_ERRORS_RETURN), context);
  LONGNET_MPI_CHECK(MPI_Comm_set_name(guard.get(), name.c_str()), context);
  int rank = 0;
  int size = 0;
  LONGNET_MPI_CHECK(MPI_Comm_rank(guard.get(), &rank), context);
  LONGNET_MPI_CHECK(MPI_Comm_size(guard.get(), &size), context);
  // The constructor is private, so make_unique cannot reach it.
  auto watchdog = std::make_unique<CollectiveWatchdog>(
      guard.get(), name, CollectiveWatchdog::resolve_timeout(timeout_s));
  auto comm_ptr = std::unique_ptr<MpiCommunicator>(
      new MpiCommunicator(guard.release(), rank, size, std::move(name), options));
  comm_ptr->watchdog_ = std::move(watchdog);
  return comm_ptr;
}

MpiCommunicator::MpiCommunicator(MPI_Comm comm, int rank, int size, std::string name,
                                 Options options)
    : Communicator(rank, size, name),
      comm_(comm),
      options_(options),
      context_(fmt::format("communicator '{}'", name)) {}

MpiCommunicator::~MpiCommunicator() {
  watchdog_.reset();
  int finalized = 0;
  MPI_Finalized(&finalized);
  // After MPI_Finalize the handle is already gone; a destructor cannot report failure.
  if (finalized == 0 && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

std::unique_ptr<MpiCommunicator> MpiCommunicator::split_mpi(std::optional<int> color, int key,
                                                            std::string name) {
  LONGNET_CHECK(!color || *color >= 0,
                "split of {}: color {} is negative; pass kNoColor to "
                "join no sub-communicator",
                context_, color.value_or(0));
  MPI_Comm child = MPI_COMM_NULL;
  LONGNET_MPI_CHECK(MPI_Comm_split(comm_, color ? *color : MPI_UNDEFINED, key, &child), context_);
  if (child == MPI_COMM_NULL) return nullptr;
  return adopt(child, std::move(name), options_, collective_timeout());
}

std::unique_ptr<MpiCommunicator> MpiCommunicator::split_by_node(std::string name) {
  MPI_Comm child = MPI_COMM_NULL;
  LONGNET_MPI_CHECK(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank(), MPI_INFO_NULL, &child),
                    context_);
  return adopt(child, std::move(name), options_, collective_timeout());
}

std::unique_ptr<Communicator> MpiCommunicator::do_split(std::optional<int> color, int key,
                                                        std::string name) {
  return split_mpi(color, key, std::move(name));
}

// ---- collectives ------------------------------------------------------------------------

template <typename Fn>
void MpiCommunicator::for_each_slice(std::int64_t count, Fn&& fn) const {
  for (std::int64_t first = 0; first < count; first += options_.max_elements_per_call)
    fn(first, std::min(options_.max_elements_per_call, count - first));
}

template <typename Start>
void MpiCommunicator::run(std::string_view collective, Start&& start) {
  const CollectiveWatchdog::Collective watched = watchdog_->begin(collective, current_tag());
  MPI_Request request = MPI_REQUEST_NULL;
  LONGNET_MPI_CHECK(start(&request), context_);
  watchdog_->wait(std::span<MPI_Request>(&request, 1), watched);
}

void MpiCommunicator::do_barrier() {
  run("barrier", [&](MPI_Request* r) { return MPI_Ibarrier(comm_, r); });
}

void MpiCommunicator::do_broadcast(void* buffer, std::int64_t count, ElementType type, int root) {
  for_each_slice(count, [&](std::int64_t first, std::int64_t n) {
    run("broadcast", [&](MPI_Request* r) {
      return MPI_Ibcast(at(buffer, first, type), mpi_count(n), mpi_type(type), root, comm_, r);
    });
  });
}

void MpiCommunicator::do_all_reduce(const void* send, void* recv, std::int64_t count,
                                    ElementType type, ReduceOp op) {
  const bool in_place = send == recv;
  for_each_slice(count, [&](std::int64_t first, std::int64_t n) {
    const void* source = in_place ? MPI_IN_PLACE : at(send, first, type);
    run("all_reduce", [&](MPI_Request* r) {
      return MPI_Iallreduce(source, at(recv, first, type), mpi_count(n), mpi_reduce_type(type, op),
                            mpi_op(op), comm_, r);
    });
  });
}

namespace {

// MPI_Iallreduce requests (one per slice of at most max_elements_per_call elements).
class MpiPendingCollective final : public PendingCollective {
 public:
  MpiPendingCollective(std::vector<MPI_Request> requests, std::string context,
                       CollectiveWatchdog& watchdog, CollectiveWatchdog::Collective watched)
      : requests_(std::move(requests)),
        context_(std::move(context)),
        watchdog_(watchdog),
        watched_(std::move(watched)) {}
  ~MpiPendingCollective() override {
    if (!requests_.empty()) {
      MPI_Waitall(static_cast<int>(requests_.size()), requests_.data(), MPI_STATUSES_IGNORE);
    }
  }
  void wait() override {
    if (requests_.empty()) return;
    std::vector<MPI_Request> requests = std::move(requests_);
    requests_.clear();
    watchdog_.wait(requests, watched_);
  }
  bool test() override {
    if (requests_.empty()) return true;
    int done = 0;
    LONGNET_MPI_CHECK(MPI_Testall(static_cast<int>(requests_.size()), requests_.data(), &done,
                                  MPI_STATUSES_IGNORE),
                      context_);
    if (done) requests_.clear();
    return done != 0;
  }

 private:
  std::vector<MPI_Request> requests_;
  std::string context_;
  CollectiveWatchdog& watchdog_;  // the communicator's: it outlives the handle
  CollectiveWatchdog::Collective watched_;
};

}  // namespace

std::unique_ptr<PendingCollective> MpiCommunicator::do_start_all_reduce(void* buffer,
                                                                        std::int64_t count,
                                                                        ElementType type,
                                                                        ReduceOp op) {
  std::vector<MPI_Request> requests;
  auto watched = watchdog_->begin("all_reduce (started)", current_tag());
  for_each_slice(count, [&](std::int64_t first, std::int64_t n) {
    MPI_Request request = MPI_REQUEST_NULL;
    LONGNET_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, at(buffer, first, type), mpi_count(n),
                                     mpi_reduce_type(type, op), mpi_op(op), comm_, &request),
                      context_);
    requests.push_back(request);
  });
  return std::make_unique<MpiPendingCollective>(std::move(requests), context_, *watchdog_,
                                                std::move(watched));
}

void MpiCommunicator::do_all_gather(const void* send, void* recv, std::int64_t count,
                                    ElementType type) {
  if (count * size() <= options_.max_elements_per_call) {
    run("all_gather", [&](MPI_Request* r) {
      return MPI_Iallgather(send, mpi_count(count), mpi_type(type), recv, mpi_count(count),
                            mpi_type(type), comm_, r);
    });
    return;
  }
  const std::vector<std::int64_t> counts(static_cast<std::size_t>(size()), count);
  all_gatherv_by_broadcasts(send, recv, counts, type);
}

void MpiCommunicator::do_all_gatherv(const void* send, void* recv,
                                     std::span<const std::int64_t> counts, ElementType type) {
  if (sum_of(counts) > options_.max_elements_per_call) {
    all_gatherv_by_broadcasts(send, recv, counts, type);
    return;
  }
  const std::vector<int> mpi_counts = to_mpi_counts(counts);
  const std::vector<int> displacements = to_mpi_counts(block_offsets(counts));
  run("all_gatherv", [&](MPI_Request* r) {
    return MPI_Iallgatherv(send, mpi_counts[static_cast<std::size_t>(rank())], mpi_type(type), recv,
                           mpi_counts.data(), displacements.data(), mpi_type(type), comm_, r);
  });
}

void MpiCommunicator::do_reduce_scatter(const void* send, void* recv, std::int64_t count,
                                        ElementType type, ReduceOp op) {
  if (count * size() <= options_.max_elements_per_call) {
    run("reduce_scatter", [&](MPI_Request* r) {
      return MPI_Ireduce_scatter_block(send, recv, mpi_count(count), mpi_reduce_type(type, op),
                                       mpi_op(op), comm_, r);
    });
    return;
  }
  const std::vector<std::int64_t> counts(static_cast<std::size_t>(size()), count);
  reduce_scatterv_by_reduces(send, recv, counts, type, op);
}

void MpiCommunicator::do_reduce_scatterv(const void* send, void* recv,
                                         std::span<const std::int64_t> counts, ElementType type,
                                         ReduceOp op) {
  if (sum_of(counts) > options_.max_elements_per_call) {
    reduce_scatterv_by_reduces(send, recv, counts, type, op);
    return;
  }
  const std::vector<int> mpi_counts = to_mpi_counts(counts);
  run("reduce_scatterv", [&](MPI_Request* r) {
    return MPI_Ireduce_scatter(send, recv, mpi_counts.data(), mpi_reduce_type(type, op), mpi_op(op),
                               comm_, r);
  });
}

// ---- the split paths for counts beyond max_elements_per_call ------------------------------

void MpiCommunicator::all_gatherv_by_broadcasts(const void* send, void* recv,
                                                std::span<const std::int64_t> counts,
                                                ElementType type) {
  const std::vector<std::int64_t> offsets = block_offsets(counts);
  const auto me = static_cast<std::size_t>(rank());
  // The owner broadcasts its block from where it belongs in recv.
  if (counts[me] > 0)
    std::memcpy(at(recv, offsets[me], type), send,
                static_cast<std::size_t>(counts[me]) * element_size(type));
  for (int root = 0; root < size(); ++root) {
    const auto r = static_cast<std::size_t>(root);
    for_each_slice(counts[r], [&](std::int64_t first, std::int64_t n) {
      run("all_gatherv (broadcast of a block)", [&](MPI_Request* req) {
        return MPI_Ibcast(at(recv, offsets[r] + first, type), mpi_count(n), mpi_type(type), root,
                          comm_, req);
      });
    });
  }
}

void MpiCommunicator::reduce_scatterv_by_reduces(const void* send, void* recv,
                                                 std::span<const std::int64_t> counts,
                                                 ElementType type, ReduceOp op) {
  const std::vector<std::int64_t> offsets = block_offsets(counts);
  for (int root = 0; root < size(); ++root) {
    const auto r = static_cast<std::size_t>(root);
    for_each_slice(counts[r], [&](std::int64_t first, std::int64_t n) {
      // Only the root's receive buffer is written; MPI ignores it elsewhere.
      void* target = root == rank() ? at(recv, first, type) : nullptr;
      run("reduce_scatterv (reduce of a block)", [&](MPI_Request* req) {
        return MPI_Ireduce(at(send, offsets[r] + first, type), target, mpi_count(n),
                           mpi_reduce_type(type, op), mpi_op(op), root, comm_, req);
      });
    });
  }
}

}  // namespace longnet
