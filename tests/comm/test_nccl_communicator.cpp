// NcclCommunicator against MpiCommunicator, the reference (label gpu; np 1 and 2): every
// collective, for several element types, equal and uneven counts (zeros included), in
// groups, on sub-communicators, gives on the device exactly what MPI gives on the host
// for the same inputs, and counts the same bytes. The inputs are small integers, so the
// results are exact whatever order either library adds in.
//
// Without a usable GPU every test is skipped, with the reason, on every rank alike (the
// test main then exits 77 and ctest reports the test as skipped, not passed). NCCL
// needs one device per rank, so np 2 on a one-GPU machine is skipped too.
#include "comm/mpi_communicator.hpp"
#include "comm/nccl_communicator.hpp"
#include "runtime/cuda_check.hpp"
#include "runtime/error.hpp"
#include "runtime/nccl_check.hpp"
#include "tests/support/comm_test_support.hpp"

#include <cuda_runtime_api.h>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace longnet {
namespace {

using test::count_layouts;
using test::pattern_block;
using test::same_values;
using test::sum_of;

// Why this rank cannot run the NCCL tests ("" when it can), agreed on by every rank.
std::string why_no_gpu(MpiCommunicator& world) {
  int devices = 0;
  const cudaError_t status = cudaGetDeviceCount(&devices);
  const auto node = world.split_by_node("node");
  std::string reason;
  if (status != cudaSuccess || devices == 0)
    reason = fmt::format("no CUDA device: cudaGetDeviceCount returned {} ({}) and {} devices",
                         cudaGetErrorName(status), cudaGetErrorString(status), devices);
  else if (devices < node->size())
    reason = fmt::format(
        "{} ranks on this node but {} CUDA device(s): NCCL needs one device "
        "per rank",
        node->size(), devices);
  std::vector<std::int32_t> any_missing{reason.empty() ? 0 : 1};
  world.all_reduce_in_place<std::int32_t>(any_missing, ReduceOp::max, "gpu check");
  if (reason.empty() && any_missing[0] != 0) reason = "another rank has no usable CUDA device";
  return reason;
}

// T elements of device memory, filled from and read back to host vectors.
template <CommElement T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(std::size_t n) : n_(n) {
    if (n_ > 0) LONGNET_CUDA_CHECK(cudaMalloc(&data_, n_ * sizeof(T)));
  }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) {
    if (n_ > 0)
      LONGNET_CUDA_CHECK(cudaMemcpy(data_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice));
  }
  ~DeviceBuffer() {
    if (data_ != nullptr) cudaFree(data_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  std::span<T> span() { return {static_cast<T*>(data_), n_}; }
  std::vector<T> to_host() const {
    std::vector<T> host(n_);
    if (n_ > 0)
      LONGNET_CUDA_CHECK(cudaMemcpy(host.data(), data_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }

 private:
  std::size_t n_;
  void* data_ = nullptr;
};

class NcclTest : public ::testing::Test {
 protected:
  void SetUp() override {
    mpi_ = MpiCommunicator::world("mpi reference");
    const std::string reason = why_no_gpu(*mpi_);
    if (!reason.empty()) GTEST_SKIP() << reason;
    const auto node = mpi_->split_by_node("node");
    nccl_ = NcclCommunicator::create(*mpi_, node->rank(), "nccl world");
  }

  std::unique_ptr<MpiCommunicator> mpi_;
  std::unique_ptr<NcclCommunicator> nccl_;
};

template <typename T>
class NcclCollectivesTest : public NcclTest {};
using ElementTypes = ::testing::Types<float, double, std::int32_t, std::int64_t, std::uint8_t>;
TYPED_TEST_SUITE(NcclCollectivesTest, ElementTypes, test::ElementTypeName);

constexpr ReduceOp kOps[] = {ReduceOp::sum, ReduceOp::max, ReduceOp::min};

TYPED_TEST(NcclCollectivesTest, BroadcastMatchesMpi) {
  using T = TypeParam;
  for (int root = 0; root < this->nccl_->size(); ++root) {
    auto host = pattern_block<T>(this->mpi_->rank() == root ? root : 99, 1025);
    DeviceBuffer<T> device(host);
    this->mpi_->broadcast(std::span(host), root);
    this->nccl_->broadcast(device.span(), root);
    this->nccl_->synchronize();
    EXPECT_TRUE(same_values<T>(device.to_host(), host)) << "root " << root;
  }
}

TYPED_TEST(NcclCollectivesTest, AllReduceMatchesMpi) {
  using T = TypeParam;
  for (const ReduceOp op : kOps) {
    const auto mine = pattern_block<T>(this->mpi_->rank(), 4099);
    std::vector<T> expected(mine.size());
    this->mpi_->all_reduce(mine, std::span(expected), op);
    DeviceBuffer<T> send(mine);
    DeviceBuffer<T> recv(mine.size());
    this->nccl_->all_reduce(send.span(), recv.span(), op);
    this->nccl_->synchronize();
    EXPECT_TRUE(same_values<T>(recv.to_host(), expected)) << reduce_op_name(op);
  }
}

TYPED_TEST(NcclCollectivesTest, AllGatherAndAllGathervMatchMpi) {
  using T = TypeParam;
  const int me = this->mpi_->rank();
  for (const auto& layout : count_layouts()) {
    SCOPED_TRACE("counts: " + layout.name);
    const auto counts = layout.counts(this->mpi_->size());
    const auto mine = pattern_block<T>(me, counts[me]);
    std::vector<T> expected(static_cast<std::size_t>(sum_of(counts)));
    this->mpi_->all_gatherv(mine, std::span(expected), counts);
    DeviceBuffer<T> send(mine);
    DeviceBuffer<T> recv(expected.size());
    this->nccl_->all_gatherv(send.span(), recv.span(), counts);
    this->nccl_->synchronize();
    EXPECT_TRUE(same_values<T>(recv.to_host(), expected));
  }
}

TYPED_TEST(NcclCollectivesTest, ReduceScatterAndReduceScattervMatchMpi) {
  using T = TypeParam;
  const int me = this->mpi_->rank();
  for (const auto& layout : count_layouts()) {
    for (const ReduceOp op : kOps) {
      SCOPED_TRACE(fmt::format("counts: {}, op {}", layout.name, reduce_op_name(op)));
      const auto counts = layout.counts(this->mpi_->size());
      const auto mine = pattern_block<T>(me, sum_of(counts));
      std::vector<T> expected(static_cast<std::size_t>(counts[me]));
      this->mpi_->reduce_scatterv(mine, std::span(expected), counts, op);
      DeviceBuffer<T> send(mine);
      DeviceBuffer<T> recv(expected.size());
      this->nccl_->reduce_scatterv(send.span(), recv.span(), counts, op);
      this->nccl_->synchronize();
      EXPECT_TRUE(same_values<T>(recv.to_host(), expected));
    }
  }
}

TEST_F(NcclTest, EqualCountFormsMatchMpi) {
  const int size = mpi_->size();
  const auto mine = pattern_block<float>(mpi_->rank(), 97 * size);
  std::vector<float> gathered(static_cast<std::size_t>(97 * size * size));
  std::vector<float> scattered(97);
  mpi_->all_gather(mine, std::span(gathered));
  mpi_->reduce_scatter(mine, std::span(scattered), ReduceOp::sum);
  DeviceBuffer<float> send(mine);
  DeviceBuffer<float> all(gathered.size());
  DeviceBuffer<float> block(scattered.size());
  nccl_->all_gather<float>(send.span(), all.span());
  nccl_->reduce_scatter<float>(send.span(), block.span(), ReduceOp::sum);
  nccl_->synchronize();
  EXPECT_TRUE(same_values<float>(all.to_host(), gathered));
  EXPECT_TRUE(same_values<float>(block.to_host(), scattered));
}

TEST_F(NcclTest, GroupedGathersMatchSeparateMpiGathers) {
  const int me = mpi_->rank();
  std::vector<std::int64_t> counts(static_cast<std::size_t>(mpi_->size()));
  for (int r = 0; r < mpi_->size(); ++r) counts[r] = 31 * r + 5;
  const auto k = pattern_block<float>(me, counts[me]);
  const auto v = pattern_block<float>(me + 10, counts[me]);
  std::vector<float> k_all(static_cast<std::size_t>(sum_of(counts)));
  std::vector<float> v_all(k_all.size());
  mpi_->all_gatherv(k, std::span(k_all), counts);
  mpi_->all_gatherv(v, std::span(v_all), counts);

  DeviceBuffer<float> k_mine(k), v_mine(v), k_dev(k_all.size()), v_dev(v_all.size());
  NcclGroup group;
  nccl_->all_gatherv<float>(k_mine.span(), k_dev.span(), counts, "gather k");
  nccl_->all_gatherv<float>(v_mine.span(), v_dev.span(), counts, "gather v");
  group.end();
  nccl_->synchronize();
  EXPECT_TRUE(same_values<float>(k_dev.to_host(), k_all));
  EXPECT_TRUE(same_values<float>(v_dev.to_host(), v_all));
  EXPECT_EQ(nccl_->counters().at(CollectiveKind::all_gather, "gather k").bytes_received,
            4 * (sum_of(counts) - counts[me]));
}

TEST_F(NcclTest, SplitMatchesMpiSplit) {
  const int me = mpi_->rank();
  const auto mpi_half = mpi_->split(me % 2, me, "half");
  const auto nccl_half = nccl_->split(me % 2, me, "half");
  ASSERT_NE(nccl_half, nullptr);
  EXPECT_EQ(nccl_half->name(), "half");
  EXPECT_EQ(nccl_half->rank(), mpi_half->rank());
  EXPECT_EQ(nccl_half->size(), mpi_half->size());
  const auto nobody = nccl_->split(Communicator::kNoColor, me, "nobody");
  EXPECT_EQ(nobody, nullptr);

  const auto mine = pattern_block<std::int32_t>(me, 3 + me);
  std::vector<std::int64_t> counts(static_cast<std::size_t>(mpi_half->size()));
  mpi_half->all_gather<std::int64_t>(std::vector<std::int64_t>{3 + me}, counts);
  std::vector<std::int32_t> expected(static_cast<std::size_t>(sum_of(counts)));
  mpi_half->all_gatherv(mine, std::span(expected), counts);
  DeviceBuffer<std::int32_t> send(mine);
  DeviceBuffer<std::int32_t> recv(expected.size());
  nccl_half->all_gatherv<std::int32_t>(send.span(), recv.span(), counts);
  nccl_half->synchronize();
  EXPECT_TRUE(same_values<std::int32_t>(recv.to_host(), expected));
}

TEST_F(NcclTest, CountersMatchMpiCounters) {
  const int me = mpi_->rank();
  std::vector<std::int64_t> counts(static_cast<std::size_t>(mpi_->size()));
  for (int r = 0; r < mpi_->size(); ++r) counts[r] = r == 0 ? 0 : 7 * r;
  const auto mine = pattern_block<double>(me, counts[me]);
  std::vector<double> all(static_cast<std::size_t>(sum_of(counts)));
  mpi_->reset_counters();
  mpi_->all_gatherv(mine, std::span(all), counts, "t");
  std::vector<double> reduced(mine.size());
  mpi_->reduce_scatterv(all, std::span(reduced), counts, ReduceOp::sum, "t");
  DeviceBuffer<double> send(mine), recv(all.size()), block(mine.size());
  nccl_->all_gatherv<double>(send.span(), recv.span(), counts, "t");
  nccl_->reduce_scatterv<double>(recv.span(), block.span(), counts, ReduceOp::sum, "t");
  nccl_->synchronize();
  EXPECT_EQ(nccl_->counters().entries(), mpi_->counters().entries());
}

TEST_F(NcclTest, BarrierAndArgumentChecksWork) {
  nccl_->barrier();
  DeviceBuffer<float> buffer(4);
  EXPECT_THROW(nccl_->broadcast(buffer.span(), nccl_->size()), Error);
  EXPECT_EQ(nccl_->backend(), "nccl");
  EXPECT_EQ(nccl_->memory_space(), MemorySpace::device);
}

}  // namespace
}  // namespace longnet
