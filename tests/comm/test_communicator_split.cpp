// MpiCommunicator under mpirun, beyond the collectives themselves: sub-communicators from
// split() (even/odd, the group {1, 2}, key order, nesting) are named objects whose
// collectives reach exactly their members; counters follow the convention of
// comm/comm_counters.hpp; and every failure is a longnet::Error that names the call,
// the communicator and the rank, raised before anything is communicated.
#include "comm/mpi_communicator.hpp"
#include "runtime/error.hpp"
#include "runtime/mpi_check.hpp"
#include "tests/support/comm_test_support.hpp"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

namespace longnet {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

// The world ranks of a communicator's members, in its rank order, learned through it.
std::vector<std::int32_t> members_of(Communicator& comm, int world_rank) {
  std::vector<std::int32_t> members(static_cast<std::size_t>(comm.size()));
  comm.all_gather<std::int32_t>(std::vector<std::int32_t>{world_rank}, members);
  return members;
}

std::vector<std::int32_t> world_ranks_where(int world_size, bool (*member)(int)) {
  std::vector<std::int32_t> ranks;
  for (int r = 0; r < world_size; ++r)
    if (member(r)) ranks.push_back(r);
  return ranks;
}

// ---- split ------------------------------------------------------------------------------

TEST(SplitTest, EvenAndOddRanksFormTwoNamedGroups) {
  const auto world = MpiCommunicator::world();
  const int me = world->rank();
  const auto half = world->split(me % 2, me, me % 2 == 0 ? "even" : "odd");
  ASSERT_NE(half, nullptr);
  EXPECT_EQ(half->name(), me % 2 == 0 ? "even" : "odd");
  EXPECT_EQ(half->rank(), me / 2);
  EXPECT_EQ(half->size(), (world->size() + (me % 2 == 0 ? 1 : 0)) / 2);
  const auto expected = me % 2 == 0
                            ? world_ranks_where(world->size(), [](int r) { return r % 2 == 0; })
                            : world_ranks_where(world->size(), [](int r) { return r % 2 == 1; });
  EXPECT_EQ(members_of(*half, me), expected);
  // A reduction over the group sums exactly the members' values.
  std::vector<std::int64_t> value{me + 1};
  half->all_reduce_in_place(std::span(value), ReduceOp::sum);
  std::int64_t expected_sum = 0;
  for (const int r : expected) expected_sum += r + 1;
  EXPECT_EQ(value[0], expected_sum);
}

TEST(SplitTest, RanksOneAndTwoFormAGroupAndTheOthersGetNone) {
  const auto world = MpiCommunicator::world();
  const int me = world->rank();
  const bool member = me == 1 || me == 2;
  const auto group =
      world->split(member ? std::optional<int>(0) : Communicator::kNoColor, me, "ranks 1 and 2");
  if (!member) {
    EXPECT_EQ(group, nullptr);
    return;
  }
  ASSERT_NE(group, nullptr);
  EXPECT_EQ(group->name(), "ranks 1 and 2");
  EXPECT_EQ(group->rank(), me - 1);
  const auto expected = world_ranks_where(world->size(), [](int r) { return r == 1 || r == 2; });
  EXPECT_EQ(group->size(), static_cast<int>(expected.size()));
  EXPECT_EQ(members_of(*group, me), expected);
  // Uneven counts inside the group: rank 1 sends 3 elements, rank 2 none.
  const std::vector<std::int64_t> counts =
      group->size() == 2 ? std::vector<std::int64_t>{3, 0} : std::vector<std::int64_t>{3};
  const auto mine = test::pattern_block<float>(me, counts[group->rank()]);
  std::vector<float> all(3);
  group->all_gatherv<float>(mine, all, counts);
  EXPECT_EQ(all, test::pattern_block<float>(1, 3));
}

TEST(SplitTest, KeyOrdersTheRanksOfTheGroup) {
  const auto world = MpiCommunicator::world();
  const auto reversed = world->split(0, -world->rank(), "reversed");
  ASSERT_NE(reversed, nullptr);
  EXPECT_EQ(reversed->rank(), world->size() - 1 - world->rank());
  std::vector<std::int32_t> expected(static_cast<std::size_t>(world->size()));
  std::iota(expected.rbegin(), expected.rend(), 0);
  EXPECT_EQ(members_of(*reversed, world->rank()), expected);
}

TEST(SplitTest, SubCommunicatorsSplitAgainAndOutliveTheirParent) {
  std::unique_ptr<Communicator> quarter;
  {
    const auto world = MpiCommunicator::world();
    const auto half = world->split(world->rank() % 2, world->rank(), "half");
    ASSERT_NE(half, nullptr);
    quarter = half->split(half->rank() % 2, half->rank(), "quarter");
  }  // world and half are freed here
  ASSERT_NE(quarter, nullptr);
  EXPECT_EQ(quarter->name(), "quarter");
  int world_rank = 0;
  int world_size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world_size);
  // Ranks r with the same r mod 4 share a quarter.
  const auto expected = [&] {
    std::vector<std::int32_t> ranks;
    for (int r = world_rank % 4; r < world_size; r += 4) ranks.push_back(r);
    return ranks;
  }();
  EXPECT_EQ(members_of(*quarter, world_rank), expected);
}

TEST(SplitTest, NegativeColorAndEmptyNameAreRejected) {
  const auto world = MpiCommunicator::world();
  EXPECT_THROW(world->split(-2, 0, "bad"), Error);
  EXPECT_THROW(world->split(0, 0, ""), Error);
}

// ---- counters ---------------------------------------------------------------------------

TEST(CountersTest, EachCallIsCountedByTheDocumentedConvention) {
  const auto world = MpiCommunicator::world();
  const int me = world->rank();
  const int size = world->size();
  std::vector<std::int64_t> counts(static_cast<std::size_t>(size));
  for (int r = 0; r < size; ++r) counts[r] = (r % 2 == 0) ? 5 * r + 2 : 0;  // zeros on odd ranks
  const std::int64_t total = test::sum_of(counts);
  const std::int64_t others = total - counts[me];

  std::vector<double> packed(static_cast<std::size_t>(total), 1.0);
  std::vector<double> block(static_cast<std::size_t>(counts[me]), 1.0);
  world->all_gatherv<double>(block, packed, counts, "pattern 2 gather k");
  world->all_gatherv<double>(block, packed, counts, "pattern 2 gather k");
  world->reduce_scatterv<double>(packed, block, counts, ReduceOp::sum, "pattern 2 scatter dk");
  std::vector<float> ten(10, 1.0f);
  world->broadcast<float>(ten, 1, "weights");
  std::vector<std::int32_t> three(3, 1);
  world->all_reduce_in_place<std::int32_t>(three, ReduceOp::max);
  std::vector<std::uint8_t> gathered(static_cast<std::size_t>(4 * size));
  world->all_gather<std::uint8_t>(std::vector<std::uint8_t>(4, 1), gathered, "bytes");
  world->barrier();

  const CommCounters& c = world->counters();
  EXPECT_EQ(c.at(CollectiveKind::all_gather, "pattern 2 gather k"),
            (CommTraffic{
                .calls = 2, .bytes_sent = 2 * 8 * counts[me], .bytes_received = 2 * 8 * others}));
  EXPECT_EQ(c.at(CollectiveKind::reduce_scatter, "pattern 2 scatter dk"),
            (CommTraffic{.calls = 1, .bytes_sent = 8 * others, .bytes_received = 8 * counts[me]}));
  EXPECT_EQ(c.at(CollectiveKind::broadcast, "weights"),
            (me == 1 ? CommTraffic{.calls = 1, .bytes_sent = 40}
                     : CommTraffic{.calls = 1, .bytes_received = 40}));
  EXPECT_EQ(c.at(CollectiveKind::all_reduce),  // untagged
            (CommTraffic{.calls = 1, .bytes_sent = 12, .bytes_received = 12}));
  EXPECT_EQ(c.at(CollectiveKind::all_gather, "bytes"),
            (CommTraffic{.calls = 1, .bytes_sent = 4, .bytes_received = 4 * (size - 1)}));
  EXPECT_EQ(c.at(CollectiveKind::barrier), (CommTraffic{.calls = 1}));
  EXPECT_EQ(c.at(CollectiveKind::all_gather, "never used"), CommTraffic{});
  EXPECT_EQ(c.total(CollectiveKind::all_gather).calls, 3);
  EXPECT_EQ(c.total_for_tag("pattern 2 gather k").bytes_received, 2 * 8 * others);
  EXPECT_EQ(c.total().calls, 7);
  EXPECT_EQ(c.entries().size(), 6U);

  world->reset_counters();
  EXPECT_EQ(world->counters().total(), CommTraffic{});
}

TEST(CountersTest, AcrossRanksAGatherReceivesWhatTheOthersSent) {
  // Summed over ranks, an all-gather's received bytes are (P-1) times its sent bytes,
  // and a reduce-scatter's the other way round: each block reaches every other rank.
  const auto world = MpiCommunicator::world();
  const int size = world->size();
  std::vector<std::int64_t> counts(static_cast<std::size_t>(size));
  for (int r = 0; r < size; ++r) counts[r] = 3 * r + 1;
  const std::int64_t total = test::sum_of(counts);
  std::vector<float> packed(static_cast<std::size_t>(total));
  std::vector<float> block(static_cast<std::size_t>(counts[world->rank()]));
  world->all_gatherv<float>(block, packed, counts, "g");
  world->reduce_scatterv<float>(packed, block, counts, ReduceOp::sum, "s");

  const CommTraffic g = world->counters().at(CollectiveKind::all_gather, "g");
  const CommTraffic s = world->counters().at(CollectiveKind::reduce_scatter, "s");
  std::vector<std::int64_t> sums{g.bytes_sent, g.bytes_received, s.bytes_sent, s.bytes_received};
  world->all_reduce_in_place(std::span(sums), ReduceOp::sum);
  EXPECT_EQ(sums[0], 4 * total);
  EXPECT_EQ(sums[1], (size - 1) * sums[0]);
  EXPECT_EQ(sums[3], 4 * total);
  EXPECT_EQ(sums[2], (size - 1) * sums[3]);
}

TEST(CountersTest, SubCommunicatorsCountOnTheirOwn) {
  const auto world = MpiCommunicator::world();
  const auto half = world->split(world->rank() % 2, world->rank(), "half");
  std::vector<double> x(6, 1.0);
  half->all_reduce_in_place<double>(x, ReduceOp::sum, "t");
  EXPECT_EQ(world->counters().total().calls, 0);
  EXPECT_EQ(half->counters().at(CollectiveKind::all_reduce, "t").calls, 1);
  // One member: nothing crosses a rank boundary (np 2 leaves each half with one rank).
  const std::int64_t bytes = half->size() > 1 ? 48 : 0;
  EXPECT_EQ(half->counters().at(CollectiveKind::all_reduce, "t").bytes_sent, bytes);
}

// ---- failures ---------------------------------------------------------------------------

// Collective validation happens on every rank alike here, so no rank is left waiting.
TEST(FailureTest, CheckedMpiFailureNamesTheCallTheErrorAndTheRank) {
  const auto world = MpiCommunicator::world("checked");
  std::vector<int> value(1, 0);
  const std::string rank_tag = fmt::format("[rank {}/{} ", world->rank(), world->size());
  try {
    LONGNET_MPI_CHECK(MPI_Bcast(value.data(), 1, MPI_INT, world->size() + 5, world->handle()),
                      "communicator 'checked'");
    FAIL() << "an invalid root was accepted";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(),
                AllOf(HasSubstr("MPI_Bcast(value.data(), 1, MPI_INT"),
                      HasSubstr("test_communicator_split.cpp:"), HasSubstr("MPI_ERR_ROOT"),
                      HasSubstr("communicator 'checked'"), HasSubstr(rank_tag)));
  }
  try {
    LONGNET_MPI_CHECK(MPI_Bcast(value.data(), -1, MPI_INT, 0, world->handle()));
    FAIL() << "a negative count was accepted";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(),
                AllOf(HasSubstr("MPI_Bcast"), HasSubstr("MPI_ERR_COUNT"), HasSubstr(rank_tag)));
  }
}

TEST(FailureTest, BadArgumentsAreRejectedBeforeAnythingIsCommunicated) {
  const auto world = MpiCommunicator::world("args");
  const std::string where =
      fmt::format("communicator 'args' (rank {} of {})", world->rank(), world->size());
  std::vector<float> one(1);
  const auto message_of = [](auto&& call) -> std::string {
    try {
      call();
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  };
  EXPECT_THAT(message_of([&] { world->broadcast<float>(one, world->size()); }),
              AllOf(HasSubstr("broadcast"), HasSubstr(where), HasSubstr("root")));
  std::vector<std::int64_t> counts(static_cast<std::size_t>(world->size()), 1);
  counts.back() = -1;
  std::vector<float> all(static_cast<std::size_t>(world->size()));
  EXPECT_THAT(message_of([&] { world->all_gatherv<float>(one, all, counts); }),
              AllOf(HasSubstr("all_gatherv"), HasSubstr(where), HasSubstr("negative")));
  const std::vector<std::int64_t> too_few(static_cast<std::size_t>(world->size()) - 1, 1);
  EXPECT_THAT(message_of([&] { world->reduce_scatterv<float>(all, one, too_few, ReduceOp::sum); }),
              AllOf(HasSubstr("reduce_scatterv"), HasSubstr("one per rank")));
  std::vector<float> two(2);
  EXPECT_THAT(message_of([&] { world->all_gather<float>(two, all); }),
              AllOf(HasSubstr("all_gather"), HasSubstr(where), HasSubstr("expected")));
  EXPECT_THAT(message_of([&] { world->all_reduce<float>(one, two, ReduceOp::sum); }),
              HasSubstr("same count"));
  std::vector<float> shared(4 * static_cast<std::size_t>(world->size()));
  EXPECT_THAT(message_of([&] {
                world->all_gather<float>(std::span(shared).first(1),
                                         std::span(shared).first(world->size()));
              }),
              HasSubstr("overlap"));
  EXPECT_EQ(world->counters().total().calls, 0) << "a rejected call was counted";
}

TEST(FailureTest, CallLimitOutsideTheIntRangeIsRejected) {
  EXPECT_THROW(MpiCommunicator::world("w", MpiCommunicatorOptions{.max_elements_per_call = 0}),
               Error);
  EXPECT_THROW(MpiCommunicator::world(
                   "w", MpiCommunicatorOptions{.max_elements_per_call = kMaxMpiCount + 1}),
               Error);
}

// Typed counts: a byte/element mix-up or a mismatch of element types does not compile.
template <typename Send, typename Recv>
concept CanAllGather = requires(Communicator& c, Send send, Recv recv) {
  c.all_gather(send, recv);
};
static_assert(CanAllGather<std::span<const float>, std::span<float>>);
static_assert(CanAllGather<std::vector<float>, std::span<float>>);
static_assert(!CanAllGather<std::span<const std::byte>, std::span<float>>);
static_assert(!CanAllGather<std::span<const float>, std::span<double>>);
static_assert(!CanAllGather<std::span<const char>, std::span<char>>);
static_assert(!CommElement<char> && !CommElement<std::byte> && !CommElement<long double>);
static_assert(CommElement<std::uint8_t> && CommElement<double>);

}  // namespace
}  // namespace longnet
