// The MPI collective watchdog under mpirun (np 2 and 3): a rank left waiting in a
// collective by a late rank fails after the limit, not before and not much after, with a
// message naming the collective, the communicator, the tag and the late rank (and, with
// three ranks, the rank that did arrive); the limit comes from the options or from
// LONGNET_COLLECTIVE_TIMEOUT (sub-communicators inherit it), and a bad value of either is
// refused.
#include "comm/collective_watchdog.hpp"
#include "comm/mpi_communicator.hpp"
#include "runtime/error.hpp"
#include "runtime/mpi_check.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

namespace longnet {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr double kLimitS = 2.0;
constexpr int kLateRank = 1;

TEST(CollectiveWatchdog, ARankLeftWaitingByALateRankFailsNamingTheCollectiveAndTheLateRank) {
  // Collectives of the test's own choreography, outside the watchdog.
  const auto sync = MpiCommunicator::world("sync");
  sync->set_collective_timeout(0);
  const auto watched = MpiCommunicator::world("watched");
  watched->set_collective_timeout(kLimitS);
  const int rank = watched->rank();
  const int size = watched->size();
  // The waiting ranks' collective cannot be cancelled: its buffer outlives the test.
  static std::vector<double> values;
  values.assign(4, 1.0);
  sync->barrier();

  if (rank != kLateRank) {
    const auto start = std::chrono::steady_clock::now();
    std::string message;
    try {
      watched->all_reduce_in_place<double>(values, ReduceOp::sum, "late rank");
    } catch (const Error& e) {
      message = e.what();
    }
    const double waited =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_THAT(
        message,
        AllOf(HasSubstr("all_reduce (tag 'late rank')"), HasSubstr("communicator 'watched'"),
              HasSubstr("did not complete within"), HasSubstr("Not arrived: rank 1 (no answer"),
              HasSubstr("LONGNET_COLLECTIVE_TIMEOUT")));
    if (size == 3) {
      // Each waiting rank answered the other's probe.
      EXPECT_THAT(message, HasSubstr(rank == 0 ? "Arrived: ranks 2" : "Arrived: ranks 0"));
      EXPECT_THAT(message, Not(HasSubstr(rank == 0 ? "rank 2 (" : "rank 0 (")));
    }
    // The limit, then a probe window of at most the limit, then the message.
    EXPECT_GE(waited, kLimitS);
    EXPECT_LT(waited, 2 * kLimitS + 3.0);
  }
  // The late rank arrives once the others have failed; their abandoned collective
  // completes with it, as MPI_Barrier on `sync` drives their progress.
  sync->barrier();
  if (rank == kLateRank) {
    watched->all_reduce_in_place<double>(values, ReduceOp::sum, "late rank");
    EXPECT_EQ(values, std::vector<double>(4, static_cast<double>(size)));
  }
  sync->barrier();
}

TEST(CollectiveWatchdog, CollectivesThatEveryRankEntersCompleteUnderTheWatchdog) {
  const auto watched = MpiCommunicator::world("watched");
  watched->set_collective_timeout(kLimitS);
  const auto half = watched->split(watched->rank() % 2, 0, "half");
  EXPECT_EQ(dynamic_cast<MpiCommunicator&>(*half).collective_timeout(), kLimitS);
  std::vector<int> values(3, watched->rank());
  watched->all_reduce_in_place<int>(values, ReduceOp::max, "all present");
  EXPECT_EQ(values, std::vector<int>(3, watched->size() - 1));
  watched->barrier("all present");
}

TEST(CollectiveWatchdog, TheLimitComesFromTheOptionsElseTheEnvironmentElseTheDefault) {
  const char* variable = CollectiveWatchdog::kTimeoutVariable;
  ::unsetenv(variable);
  EXPECT_EQ(CollectiveWatchdog::resolve_timeout(std::nullopt),
            CollectiveWatchdog::kDefaultTimeoutS);
  ::setenv(variable, "12.5", 1);
  EXPECT_EQ(CollectiveWatchdog::resolve_timeout(std::nullopt), 12.5);
  EXPECT_EQ(CollectiveWatchdog::resolve_timeout(3.0), 3.0);
  ::setenv(variable, "0", 1);
  EXPECT_EQ(CollectiveWatchdog::resolve_timeout(std::nullopt), 0.0);
  for (const char* bad : {"ten", "-1", "5s"}) {
    ::setenv(variable, bad, 1);
    try {
      CollectiveWatchdog::resolve_timeout(std::nullopt);
      ADD_FAILURE() << "accepted " << variable << "=" << bad;
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), AllOf(HasSubstr(variable), HasSubstr(bad)));
    }
  }
  ::unsetenv(variable);
  EXPECT_THROW(CollectiveWatchdog::resolve_timeout(-1.0), Error);
}

}  // namespace
}  // namespace longnet
