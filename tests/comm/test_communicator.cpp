// The communicator contract under mpirun (np 2, 3, 4), on every host-memory back end the
// factory makes (make_communicator: "mpi", and "self", a world of one in each process) and
// on an MPI world that splits every collective into MPI calls of at most 7 elements (the
// path that carries counts beyond INT_MAX): every collective, for every element type, with
// equal and uneven counts (zeros on some ranks included), gives what each rank computes
// alone from the other ranks' known inputs and writes nothing outside its receive span.
// The tests are written against Communicator only; a back end is one more entry in
// contract_backends(). NCCL (device memory) is checked against MPI in
// test_nccl_communicator.cpp.
#include "comm/communicator_factory.hpp"
#include "comm/mpi_communicator.hpp"
#include "runtime/error.hpp"
#include "tests/support/comm_test_support.hpp"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace longnet {
namespace {

using test::count_layouts;
using test::GuardedBuffer;
using test::offsets_of;
using test::pattern;
using test::pattern_block;
using test::reduced_pattern;
using test::same_values;
using test::sum_of;

// Small enough that every collective below is split into many MPI calls, and odd, so
// that slices end at awkward places.
constexpr std::int64_t kTinyCallLimit = 7;

struct ContractBackend {
  std::string name;
  std::function<std::unique_ptr<Communicator>()> make;
};

std::vector<ContractBackend> contract_backends() {
  return {
      {"make_communicator(\"mpi\")", [] { return make_communicator("mpi", "contract mpi"); }},
      {"make_communicator(\"self\")", [] { return make_communicator("self", "contract self"); }},
      {fmt::format("MPI calls of at most {} elements", kTinyCallLimit),
       [] {
         return MpiCommunicator::world(
             "contract mpi sliced",
             MpiCommunicatorOptions{.max_elements_per_call = kTinyCallLimit});
       }},
  };
}

// Runs body on a communicator of each back end in contract_backends(), every rank in step.
void for_each_backend(const std::function<void(Communicator&)>& body) {
  for (const ContractBackend& backend : contract_backends()) {
    SCOPED_TRACE(backend.name);
    const auto comm = backend.make();
    ASSERT_GE(comm->size(), 1);
    ASSERT_TRUE(comm->rank() >= 0 && comm->rank() < comm->size());
    body(*comm);
  }
}

constexpr ReduceOp kOps[] = {ReduceOp::sum, ReduceOp::max, ReduceOp::min};

template <typename T>
class CollectivesTest : public ::testing::Test {};
using ElementTypes = ::testing::Types<float, double, std::int32_t, std::int64_t, std::uint8_t,
                                      std::int8_t, std::uint32_t, std::uint64_t>;
TYPED_TEST_SUITE(CollectivesTest, ElementTypes, test::ElementTypeName);

TYPED_TEST(CollectivesTest, BroadcastFromEveryRootReachesEveryRank) {
  using T = TypeParam;
  for_each_backend([](Communicator& comm) {
    for (const std::int64_t count : {std::int64_t{0}, std::int64_t{1}, std::int64_t{97}}) {
      for (int root = 0; root < comm.size(); ++root) {
        SCOPED_TRACE(fmt::format("count {} root {}", count, root));
        GuardedBuffer<T> buffer(count);
        if (comm.rank() == root) {
          const auto mine = pattern_block<T>(root, count);
          std::ranges::copy(mine, buffer.span().begin());
        }
        comm.broadcast(buffer.span(), root);
        EXPECT_TRUE(same_values<T>(buffer.values(), pattern_block<T>(root, count)));
        EXPECT_TRUE(buffer.guards_intact());
      }
    }
  });
}

TYPED_TEST(CollectivesTest, AllReduceMatchesTheReductionEachRankComputesAlone) {
  using T = TypeParam;
  for_each_backend([](Communicator& comm) {
    for (const std::int64_t count : {std::int64_t{0}, std::int64_t{1}, std::int64_t{1025}}) {
      for (const ReduceOp op : kOps) {
        SCOPED_TRACE(fmt::format("count {} op {}", count, reduce_op_name(op)));
        std::vector<T> expected(static_cast<std::size_t>(count));
        for (std::int64_t i = 0; i < count; ++i)
          expected[static_cast<std::size_t>(i)] = reduced_pattern<T>(comm.size(), i, op);

        const auto mine = pattern_block<T>(comm.rank(), count);
        GuardedBuffer<T> out(count);
        comm.all_reduce(mine, out.span(), op);
        EXPECT_TRUE(same_values<T>(out.values(), expected));
        EXPECT_TRUE(out.guards_intact());

        auto in_place = pattern_block<T>(comm.rank(), count);
        comm.all_reduce_in_place(std::span(in_place), op);
        EXPECT_TRUE(same_values<T>(in_place, expected)) << "in place";

        // Started, two in flight at once, then waited for in reverse order.
        auto first = pattern_block<T>(comm.rank(), count);
        auto second = pattern_block<T>(comm.rank(), count);
        auto pending_first = comm.start_all_reduce_in_place(std::span(first), op);
        auto pending_second = comm.start_all_reduce_in_place(std::span(second), op);
        pending_second->wait();
        pending_first->wait();
        EXPECT_TRUE(same_values<T>(first, expected)) << "started (first)";
        EXPECT_TRUE(same_values<T>(second, expected)) << "started (second)";
      }
    }
  });
}

TYPED_TEST(CollectivesTest, AllGatherConcatenatesTheBlocksOfAllRanks) {
  using T = TypeParam;
  for_each_backend([](Communicator& comm) {
    for (const std::int64_t count : {std::int64_t{0}, std::int64_t{1}, std::int64_t{97}}) {
      SCOPED_TRACE(fmt::format("count {}", count));
      std::vector<T> expected;
      for (int r = 0; r < comm.size(); ++r)
        for (const T x : pattern_block<T>(r, count)) expected.push_back(x);

      const auto mine = pattern_block<T>(comm.rank(), count);
      GuardedBuffer<T> all(count * comm.size());
      comm.all_gather(mine, all.span());
      EXPECT_TRUE(same_values<T>(all.values(), expected));
      EXPECT_TRUE(all.guards_intact());
    }
  });
}

TYPED_TEST(CollectivesTest, AllGathervPlacesEachRanksBlockAtItsOffset) {
  using T = TypeParam;
  for_each_backend([](Communicator& comm) {
    for (const auto& layout : count_layouts()) {
      SCOPED_TRACE("counts: " + layout.name);
      const std::vector<std::int64_t> counts = layout.counts(comm.size());
      std::vector<T> expected;
      for (int r = 0; r < comm.size(); ++r)
        for (const T x : pattern_block<T>(r, counts[r])) expected.push_back(x);

      const auto mine = pattern_block<T>(comm.rank(), counts[comm.rank()]);
      GuardedBuffer<T> all(sum_of(counts));
      comm.all_gatherv(mine, all.span(), counts);
      EXPECT_TRUE(same_values<T>(all.values(), expected));
      EXPECT_TRUE(all.guards_intact());
    }
  });
}

TYPED_TEST(CollectivesTest, ReduceScatterGivesEachRankItsReducedBlock) {
  using T = TypeParam;
  for_each_backend([](Communicator& comm) {
    for (const std::int64_t count : {std::int64_t{0}, std::int64_t{1}, std::int64_t{97}}) {
      for (const ReduceOp op : kOps) {
        SCOPED_TRACE(fmt::format("count {} op {}", count, reduce_op_name(op)));
        // Every rank sends size() blocks; block j is reduced onto rank j.
        const auto mine = pattern_block<T>(comm.rank(), count * comm.size());
        std::vector<T> expected(static_cast<std::size_t>(count));
        for (std::int64_t i = 0; i < count; ++i)
          expected[static_cast<std::size_t>(i)] =
              reduced_pattern<T>(comm.size(), comm.rank() * count + i, op);

        GuardedBuffer<T> block(count);
        comm.reduce_scatter(mine, block.span(), op);
        EXPECT_TRUE(same_values<T>(block.values(), expected));
        EXPECT_TRUE(block.guards_intact());
      }
    }
  });
}

TYPED_TEST(CollectivesTest, ReduceScattervGivesEachRankItsReducedBlock) {
  using T = TypeParam;
  for_each_backend([](Communicator& comm) {
    for (const auto& layout : count_layouts()) {
      for (const ReduceOp op : kOps) {
        SCOPED_TRACE(fmt::format("counts: {}, op {}", layout.name, reduce_op_name(op)));
        const std::vector<std::int64_t> counts = layout.counts(comm.size());
        const std::int64_t first = offsets_of(counts)[comm.rank()];
        const std::int64_t count = counts[comm.rank()];
        const auto mine = pattern_block<T>(comm.rank(), sum_of(counts));
        std::vector<T> expected(static_cast<std::size_t>(count));
        for (std::int64_t i = 0; i < count; ++i)
          expected[static_cast<std::size_t>(i)] = reduced_pattern<T>(comm.size(), first + i, op);

        GuardedBuffer<T> block(count);
        comm.reduce_scatterv(mine, block.span(), counts, op);
        EXPECT_TRUE(same_values<T>(block.values(), expected));
        EXPECT_TRUE(block.guards_intact());
      }
    }
  });
}

// ---- the communicator itself --------------------------------------------------------

TEST(MpiCommunicatorTest, WorldHasEveryRankAndItsName) {
  int world_rank = -1;
  int world_size = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world_size);
  const auto world = MpiCommunicator::world("everyone");
  EXPECT_EQ(world->rank(), world_rank);
  EXPECT_EQ(world->size(), world_size);
  EXPECT_EQ(world->name(), "everyone");
  EXPECT_EQ(world->backend(), "mpi");
  EXPECT_EQ(world->memory_space(), MemorySpace::host);
  // The MPI handle carries the name too, for MPI tools and debuggers.
  char mpi_name[MPI_MAX_OBJECT_NAME] = {};
  int length = 0;
  MPI_Comm_get_name(world->handle(), mpi_name, &length);
  EXPECT_EQ(std::string(mpi_name, static_cast<std::size_t>(length)), "everyone");
}

TEST(MpiCommunicatorTest, BarrierReturnsOnEveryRank) {
  const auto world = MpiCommunicator::world();
  world->barrier();
  world->barrier("second");
  world->synchronize();  // a no-op for MPI: its collectives complete before returning
  EXPECT_EQ(world->counters().total(CollectiveKind::barrier).calls, 2);
}

TEST(MpiCommunicatorTest, AllGathervLargerThanTheCallLimitIsSplitOnEveryRank) {
  // A total above the limit with every block below it, and blocks above it: both
  // ways of crossing the limit take the split path and give the packed result.
  for (const std::int64_t limit : {std::int64_t{64}, std::int64_t{5}}) {
    SCOPED_TRACE(fmt::format("limit {}", limit));
    const auto world =
        MpiCommunicator::world("world", MpiCommunicatorOptions{.max_elements_per_call = limit});
    std::vector<std::int64_t> counts(static_cast<std::size_t>(world->size()));
    for (int r = 0; r < world->size(); ++r) counts[r] = 30 + 11 * r;
    std::vector<double> expected;
    for (int r = 0; r < world->size(); ++r)
      for (const double x : pattern_block<double>(r, counts[r])) expected.push_back(x);
    const auto mine = pattern_block<double>(world->rank(), counts[world->rank()]);
    GuardedBuffer<double> all(sum_of(counts));
    world->all_gatherv(mine, all.span(), counts);
    EXPECT_TRUE(same_values<double>(all.values(), expected));
    EXPECT_TRUE(all.guards_intact());
  }
}

// bfloat16 and float16 travel as opaque 2-byte elements: every bit pattern arrives as
// sent. MPI has no arithmetic on them, so a reduction is refused, naming the fix.
TEST(MpiCommunicatorTest, HalfPrecisionIsGatheredBitExactAndNotReduced) {
  const auto world = MpiCommunicator::world();
  const int n = world->size();
  auto bits_of = [](int rank, int i) { return static_cast<std::uint16_t>(0x3F80 + 37 * rank + i); };
  std::vector<bfloat16> mine(5);
  for (int i = 0; i < 5; ++i) mine[i].bits = bits_of(world->rank(), i);
  std::vector<bfloat16> all(static_cast<std::size_t>(5 * n));
  world->all_gather<bfloat16>(mine, all);
  for (int r = 0; r < n; ++r) {
    for (int i = 0; i < 5; ++i) {
      EXPECT_EQ(all[static_cast<std::size_t>(5 * r + i)].bits, bits_of(r, i));
    }
  }
  std::vector<float16> root_values(3);
  for (int i = 0; i < 3; ++i) {
    root_values[i].bits = static_cast<std::uint16_t>(world->rank() == 0 ? 0x3C00 + i : 0);
  }
  world->broadcast<float16>(root_values, 0);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(root_values[i].bits, 0x3C00 + i);

  EXPECT_THAT([&] { world->all_reduce_in_place<bfloat16>(mine, ReduceOp::sum); },
              ::testing::ThrowsMessage<Error>(
                  ::testing::AllOf(::testing::HasSubstr("MPI cannot sum-reduce bfloat16"),
                                   ::testing::HasSubstr("convert them to float32"))));
}

}  // namespace
}  // namespace longnet
