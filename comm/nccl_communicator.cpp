// NcclCommunicator: bootstrap over MPI, collectives enqueued on the communicator's stream,
// and the abort-never-hang rules of the header.
#include "comm/nccl_communicator.hpp"

#include "runtime/cuda_check.hpp"
#include "runtime/error.hpp"
#include "runtime/nccl_check.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <exception>
#include <numeric>
#include <thread>
#include <vector>

namespace longnet {
namespace {

ncclDataType_t nccl_type(ElementType type) {
  switch (type) {
    case ElementType::int8:
      return ncclInt8;
    case ElementType::uint8:
      return ncclUint8;
    case ElementType::int32:
      return ncclInt32;
    case ElementType::uint32:
      return ncclUint32;
    case ElementType::int64:
      return ncclInt64;
    case ElementType::uint64:
      return ncclUint64;
    case ElementType::float32:
      return ncclFloat32;
    case ElementType::float64:
      return ncclFloat64;
    case ElementType::bfloat16:
      return ncclBfloat16;
    case ElementType::float16:
      return ncclFloat16;
  }
  fail("no NCCL datatype for element type {}", static_cast<int>(type));
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum:
      return ncclSum;
    case ReduceOp::max:
      return ncclMax;
    case ReduceOp::min:
      return ncclMin;
  }
  fail("no NCCL reduction for op {}", static_cast<int>(op));
}

std::size_t nccl_count(std::int64_t n) { return static_cast<std::size_t>(n); }

std::byte* at(void* base, std::int64_t index, ElementType type) {
  return static_cast<std::byte*>(base) + index * static_cast<std::int64_t>(element_size(type));
}
const std::byte* at(const void* base, std::int64_t index, ElementType type) {
  return static_cast<const std::byte*>(base) +
         index * static_cast<std::int64_t>(element_size(type));
}

bool all_equal(std::span<const std::int64_t> counts) {
  return std::adjacent_find(counts.begin(), counts.end(), std::not_equal_to<>()) == counts.end();
}

std::vector<std::int64_t> block_offsets(std::span<const std::int64_t> counts) {
  std::vector<std::int64_t> offsets(counts.size(), 0);
  std::exclusive_scan(counts.begin(), counts.end(), offsets.begin(), std::int64_t{0});
  return offsets;
}

ncclConfig_t blocking_config(const std::string& name) {
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 1;             // calls return when done (or failed), never ncclInProgress
  config.commName = name.c_str();  // names the communicator in NCCL's own logs
  return config;
}

// Selects `device` on this rank and tells every rank whether all ranks could: a rank
// that throws alone would leave the others waiting in ncclCommInitRank.
void select_device_everywhere(MpiCommunicator& bootstrap, int device, const std::string& name) {
  int count = 0;
  const cudaError_t counted = cudaGetDeviceCount(&count);
  std::string problem;
  if (counted != cudaSuccess)
    problem = fmt::format("cudaGetDeviceCount failed: {}", cudaGetErrorString(counted));
  else if (device < 0 || device >= count)
    problem = fmt::format("device {} does not exist ({} CUDA devices)", device, count);
  else if (const cudaError_t set = cudaSetDevice(device); set != cudaSuccess)
    problem = fmt::format("cudaSetDevice({}) failed: {}", device, cudaGetErrorString(set));
  std::array<std::int32_t, 1> failed{problem.empty() ? 0 : 1};
  bootstrap.all_reduce_in_place<std::int32_t>(failed, ReduceOp::max, "nccl bootstrap");
  LONGNET_CHECK(problem.empty(), "NCCL communicator '{}' (rank {} of {}): {} [{}]", name,
                bootstrap.rank(), bootstrap.size(), problem, process_identity());
  LONGNET_CHECK(failed[0] == 0,
                "NCCL communicator '{}' (rank {} of {}): another rank could not select its CUDA "
                "device (its own message says why) [{}]",
                name, bootstrap.rank(), bootstrap.size(), process_identity());
}

// Rank 0 makes the unique id and broadcasts it with its status, so that a failure there
// is an Error on every rank rather than a hang in ncclCommInitRank.
ncclUniqueId share_unique_id(MpiCommunicator& bootstrap, const std::string& name) {
  ncclUniqueId id{};
  std::int32_t status = ncclSuccess;
  if (bootstrap.rank() == 0) status = ncclGetUniqueId(&id);
  std::array<std::uint8_t, sizeof(status) + sizeof(id)> message{};
  std::memcpy(message.data(), &status, sizeof(status));
  std::memcpy(message.data() + sizeof(status), &id, sizeof(id));
  bootstrap.broadcast<std::uint8_t>(message, 0, "nccl bootstrap");
  std::memcpy(&status, message.data(), sizeof(status));
  std::memcpy(&id, message.data() + sizeof(status), sizeof(id));
  LONGNET_CHECK(status == ncclSuccess,
                "NCCL communicator '{}': rank 0 could not create the NCCL unique id: {} [{}]", name,
                ncclGetErrorString(static_cast<ncclResult_t>(status)), process_identity());
  return id;
}

}  // namespace

// ---- creation and destruction ---------------------------------------------------------

std::unique_ptr<NcclCommunicator> NcclCommunicator::create(MpiCommunicator& bootstrap, int device,
                                                           std::string name, Options options) {
  select_device_everywhere(bootstrap, device, name);
  const ncclUniqueId id = share_unique_id(bootstrap, name);
  ncclConfig_t config = blocking_config(name);
  ncclComm_t comm = nullptr;
  LONGNET_NCCL_CHECK(ncclCommInitRankConfig(&comm, bootstrap.size(), id, bootstrap.rank(), &config),
                     fmt::format("creating NCCL communicator '{}'", name));
  return adopt(comm, device, std::move(name), options);
}

std::unique_ptr<NcclCommunicator> NcclCommunicator::adopt(ncclComm_t comm, int device,
                                                          std::string name, Options options) {
  const std::string context = fmt::format("NCCL communicator '{}'", name);
  int rank = 0;
  int size = 0;
  try {
    LONGNET_NCCL_CHECK(ncclCommUserRank(comm, &rank), context);
    LONGNET_NCCL_CHECK(ncclCommCount(comm, &size), context);
  } catch (...) {
    ncclCommAbort(comm);
    throw;
  }
  // From here the object owns comm; its destructor aborts it if the rest throws.
  std::unique_ptr<NcclCommunicator> self(
      new NcclCommunicator(comm, rank, size, device, std::move(name), options));
  self->guarded([&] {
    LONGNET_CUDA_CHECK(cudaStreamCreateWithFlags(&self->stream_, cudaStreamNonBlocking), context);
    void* word = nullptr;
    LONGNET_CUDA_CHECK(cudaMalloc(&word, sizeof(std::int32_t)), context);
    self->barrier_word_ = static_cast<std::int32_t*>(word);
  });
  return self;
}

NcclCommunicator::NcclCommunicator(ncclComm_t comm, int rank, int size, int device,
                                   std::string name, Options options)
    : Communicator(rank, size, name),
      comm_(comm),
      device_(device),
      options_(options),
      context_(fmt::format("NCCL communicator '{}'", name)) {}

NcclCommunicator::~NcclCommunicator() {
  // A destructor cannot report failure: every result below is ignored on purpose.
  cudaSetDevice(device_);
  if (!aborted_) {
    const bool healthy = !failed_ && std::uncaught_exceptions() == 0 &&
                         wait_for_stream().outcome == StreamWait::Outcome::drained;
    if (healthy) {
      ncclCommFinalize(comm_);  // blocking communicator: returns once quiescent
      ncclCommDestroy(comm_);
    } else {
      ncclCommAbort(comm_);
    }
  }
  if (barrier_word_ != nullptr) cudaFree(barrier_word_);
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
}

void NcclCommunicator::abort() noexcept {
  if (aborted_) return;
  ncclCommAbort(comm_);
  aborted_ = true;
}

template <typename Fn>
void NcclCommunicator::guarded(Fn&& fn) {
  LONGNET_CHECK(!aborted_,
                "{} (rank {} of {}) was aborted after an earlier failure and cannot be used [{}]",
                context_, rank(), size(), process_identity());
  try {
    std::forward<Fn>(fn)();
  } catch (...) {
    failed_ = true;
    throw;
  }
}

std::unique_ptr<Communicator> NcclCommunicator::do_split(std::optional<int> color, int key,
                                                         std::string name) {
  ncclComm_t child = nullptr;
  guarded([&] {
    ncclConfig_t config = blocking_config(name);
    LONGNET_NCCL_CHECK(
        ncclCommSplit(comm_, color ? *color : NCCL_SPLIT_NOCOLOR, key, &child, &config), context_);
  });
  if (child == nullptr) return nullptr;
  return adopt(child, device_, std::move(name), options_);
}

// ---- waiting --------------------------------------------------------------------------

NcclCommunicator::StreamWait NcclCommunicator::wait_for_stream() const noexcept {
  // Polls instead of cudaStreamSynchronize, which would wait for ever on a collective
  // that a dead peer never joins.
  const auto deadline = std::chrono::steady_clock::now() + options_.timeout;
  while (true) {
    const cudaError_t state = cudaStreamQuery(stream_);
    if (state == cudaSuccess) return {StreamWait::Outcome::drained};
    if (state != cudaErrorNotReady) return {StreamWait::Outcome::cuda_error, state};
    ncclResult_t async = ncclSuccess;
    const ncclResult_t queried = ncclCommGetAsyncError(comm_, &async);
    if (queried != ncclSuccess) return {StreamWait::Outcome::nccl_error, cudaSuccess, queried};
    if (async != ncclSuccess && async != ncclInProgress)
      return {StreamWait::Outcome::nccl_error, cudaSuccess, async};
    if (std::chrono::steady_clock::now() > deadline) return {StreamWait::Outcome::timed_out};
    std::this_thread::yield();
  }
}

void NcclCommunicator::synchronize() {
  guarded([&] {
    const StreamWait wait = wait_for_stream();
    if (wait.outcome == StreamWait::Outcome::drained) return;
    abort();  // what is still on the device would never finish; ncclCommAbort stops it
    const std::string context = fmt::format("{}, now aborted", context_);
    switch (wait.outcome) {
      case StreamWait::Outcome::cuda_error:
        detail::throw_cuda_failure(wait.cuda, "cudaStreamQuery(stream_)", __FILE__, __LINE__,
                                   context);
      case StreamWait::Outcome::nccl_error:
        detail::throw_nccl_failure(wait.nccl, "ncclCommGetAsyncError(comm_, &async)", __FILE__,
                                   __LINE__, context);
      default:
        fail(
            "{} (rank {} of {}): its collectives did not finish within {}; another rank "
            "probably never entered one of them, or died. The communicator is aborted [{}]",
            context_, rank(), size(), options_.timeout, process_identity());
    }
  });
}

// ---- collectives ------------------------------------------------------------------------
// Zero-count calls are skipped: every rank knows the counts, so all skip alike.

void NcclCommunicator::do_barrier() {
  guarded([&] {
    LONGNET_NCCL_CHECK(
        ncclAllReduce(barrier_word_, barrier_word_, 1, ncclInt32, ncclSum, comm_, stream_),
        context_);
  });
  synchronize();
}

void NcclCommunicator::do_broadcast(void* buffer, std::int64_t count, ElementType type, int root) {
  if (count == 0) return;
  guarded([&] {
    LONGNET_NCCL_CHECK(
        ncclBroadcast(buffer, buffer, nccl_count(count), nccl_type(type), root, comm_, stream_),
        context_);
  });
}

void NcclCommunicator::do_all_reduce(const void* send, void* recv, std::int64_t count,
                                     ElementType type, ReduceOp op) {
  if (count == 0) return;
  guarded([&] {
    LONGNET_NCCL_CHECK(
        ncclAllReduce(send, recv, nccl_count(count), nccl_type(type), nccl_op(op), comm_, stream_),
        context_);
  });
}

void NcclCommunicator::do_all_gather(const void* send, void* recv, std::int64_t count,
                                     ElementType type) {
  if (count == 0) return;
  guarded([&] {
    LONGNET_NCCL_CHECK(
        ncclAllGather(send, recv, nccl_count(count), nccl_type(type), comm_, stream_), context_);
  });
}

void NcclCommunicator::do_all_gatherv(const void* send, void* recv,
                                      std::span<const std::int64_t> counts, ElementType type) {
  if (all_equal(counts)) return do_all_gather(send, recv, counts[0], type);
  const std::vector<std::int64_t> offsets = block_offsets(counts);
  guarded([&] {
    NcclGroup group;
    for (int root = 0; root < size(); ++root) {
      const auto r = static_cast<std::size_t>(root);
      if (counts[r] == 0) continue;
      void* block = at(recv, offsets[r], type);
      // Only the root reads its send buffer; the others pass their block, which NCCL ignores.
      const void* source = root == rank() ? send : block;
      LONGNET_NCCL_CHECK(ncclBroadcast(source, block, nccl_count(counts[r]), nccl_type(type), root,
                                       comm_, stream_),
                         context_);
    }
    group.end();
  });
}

void NcclCommunicator::do_reduce_scatter(const void* send, void* recv, std::int64_t count,
                                         ElementType type, ReduceOp op) {
  if (count == 0) return;
  guarded([&] {
    LONGNET_NCCL_CHECK(ncclReduceScatter(send, recv, nccl_count(count), nccl_type(type),
                                         nccl_op(op), comm_, stream_),
                       context_);
  });
}

void NcclCommunicator::do_reduce_scatterv(const void* send, void* recv,
                                          std::span<const std::int64_t> counts, ElementType type,
                                          ReduceOp op) {
  if (all_equal(counts)) return do_reduce_scatter(send, recv, counts[0], type, op);
  const std::vector<std::int64_t> offsets = block_offsets(counts);
  guarded([&] {
    NcclGroup group;
    for (int root = 0; root < size(); ++root) {
      const auto r = static_cast<std::size_t>(root);
      if (counts[r] == 0) continue;
      // recvbuff may be null except on the root (nccl.h).
      void* target = root == rank() ? recv : nullptr;
      LONGNET_NCCL_CHECK(ncclReduce(at(send, offsets[r], type), target, nccl_count(counts[r]),
                                    nccl_type(type), nccl_op(op), root, comm_, stream_),
                         context_);
    }
    group.end();
  });
}

// ---- groups -----------------------------------------------------------------------------

NcclGroup::NcclGroup() { LONGNET_NCCL_CHECK(ncclGroupStart()); }

NcclGroup::~NcclGroup() {
  if (open_) ncclGroupEnd();  // unwinding: the result cannot be reported
}

void NcclGroup::end() {
  LONGNET_CHECK(open_, "NcclGroup::end() called twice");
  open_ = false;
  LONGNET_NCCL_CHECK(ncclGroupEnd());
}

}  // namespace longnet
