// CollectiveWatchdog: the test loop, the side-channel probe and the timeout message (see
// the header for the design and its cost).
#include "comm/collective_watchdog.hpp"

#include "runtime/error.hpp"
#include "runtime/mpi_check.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <thread>

namespace longnet {
namespace {

using Clock = std::chrono::steady_clock;

// Message tags on the side channel (a duplicate used for nothing else).
constexpr int kProbeTag = 1;
constexpr int kAnswerTag = 2;

// What a waiting rank answers to a probe: the number the prober asked about (so a late
// answer to an older probe is recognised), the number and name of the collective it is
// waiting in.
struct Answer {
  std::int64_t asked = 0;
  std::int64_t sequence = 0;
  std::array<char, 112> collective{};
};

std::string describe(std::string_view name, std::string_view tag) {
  return tag.empty() ? fmt::format("{} (no tag)", name) : fmt::format("{} (tag '{}')", name, tag);
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

double CollectiveWatchdog::resolve_timeout(std::optional<double> configured) {
  if (configured) {
    LONGNET_CHECK(*configured >= 0,
                  "collective timeout {} s is negative; give seconds, or 0 to turn the "
                  "watchdog off",
                  *configured);
    return *configured;
  }
  const char* text = std::getenv(kTimeoutVariable);
  if (text == nullptr || *text == '\0') return kDefaultTimeoutS;
  char* end = nullptr;
  errno = 0;
  const double value = std::strtod(text, &end);
  LONGNET_CHECK(errno == 0 && *end == '\0' && value >= 0,
                "{}='{}' is not a number of seconds >= 0; give e.g. {}=600, or 0 to turn the "
                "collective watchdog off",
                kTimeoutVariable, text, kTimeoutVariable);
  return value;
}

CollectiveWatchdog::CollectiveWatchdog(MPI_Comm comm, std::string name, double timeout_s)
    : name_(std::move(name)), timeout_s_(timeout_s) {
  const std::string context = fmt::format("communicator '{}' (watchdog side channel)", name_);
  LONGNET_MPI_CHECK(MPI_Comm_rank(comm, &rank_), context);
  LONGNET_MPI_CHECK(MPI_Comm_size(comm, &size_), context);
  LONGNET_MPI_CHECK(MPI_Comm_dup(comm, &side_), context);
  LONGNET_MPI_CHECK(MPI_Comm_set_errhandler(side_, MPI_ERRORS_RETURN), context);
}

void CollectiveWatchdog::set_timeout(double seconds) { timeout_s_ = resolve_timeout(seconds); }

CollectiveWatchdog::~CollectiveWatchdog() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized != 0) return;
  // A timed-out collective that has completed since can be released; one still pending
  // stays (MPI cannot cancel a collective; the job is ending).
  for (MPI_Request& request : abandoned_) {
    int done = 0;
    MPI_Test(&request, &done, MPI_STATUS_IGNORE);
  }
  if (side_ != MPI_COMM_NULL) MPI_Comm_free(&side_);
}

CollectiveWatchdog::Collective CollectiveWatchdog::begin(std::string_view name,
                                                         std::string_view tag) {
  return Collective{++sequence_, std::string(name), std::string(tag)};
}

bool CollectiveWatchdog::test(std::span<MPI_Request> requests) const {
  int done = 0;
  LONGNET_MPI_CHECK(
      MPI_Testall(static_cast<int>(requests.size()), requests.data(), &done, MPI_STATUSES_IGNORE),
      fmt::format("communicator '{}'", name_));
  return done != 0;
}

void CollectiveWatchdog::wait(std::span<MPI_Request> requests, const Collective& collective) {
  if (timeout_s_ == 0) {
    LONGNET_MPI_CHECK(
        MPI_Waitall(static_cast<int>(requests.size()), requests.data(), MPI_STATUSES_IGNORE),
        fmt::format("communicator '{}'", name_));
    return;
  }
  const Clock::time_point start = Clock::now();
  while (!test(requests)) {
    const auto waited = Clock::now() - start;
    if (waited < kSpin) continue;
    answer_probes(collective);
    const double waited_s = std::chrono::duration<double>(waited).count();
    if (waited_s >= timeout_s_) {
      if (!fail_after_timeout(requests, collective, waited_s)) return;
    }
    const auto nap = std::clamp(std::chrono::duration_cast<std::chrono::microseconds>(waited) / 20,
                                std::chrono::microseconds(20), std::chrono::microseconds(1000));
    std::this_thread::sleep_for(nap);
  }
}

void CollectiveWatchdog::answer_probes(const Collective& waiting_in) const {
  const std::string context = fmt::format("communicator '{}' (watchdog side channel)", name_);
  for (;;) {
    int queued = 0;
    MPI_Status status;
    LONGNET_MPI_CHECK(MPI_Iprobe(MPI_ANY_SOURCE, kProbeTag, side_, &queued, &status), context);
    if (queued == 0) return;
    std::int64_t asked = 0;
    LONGNET_MPI_CHECK(
        MPI_Recv(&asked, 1, MPI_INT64_T, status.MPI_SOURCE, kProbeTag, side_, MPI_STATUS_IGNORE),
        context);
    Answer answer{.asked = asked, .sequence = waiting_in.sequence};
    const std::string what = describe(waiting_in.name, waiting_in.tag);
    std::memcpy(answer.collective.data(), what.data(),
                std::min(what.size(), answer.collective.size() - 1));
    // Small enough to be sent eagerly: returns even if the prober has given up.
    LONGNET_MPI_CHECK(
        MPI_Send(&answer, sizeof(Answer), MPI_BYTE, status.MPI_SOURCE, kAnswerTag, side_), context);
  }
}

bool CollectiveWatchdog::fail_after_timeout(std::span<MPI_Request> requests,
                                            const Collective& collective, double waited_s) {
  const std::string context = fmt::format("communicator '{}' (watchdog side channel)", name_);
  for (int r = 0; r < size_; ++r) {
    if (r == rank_) continue;
    LONGNET_MPI_CHECK(MPI_Send(&collective.sequence, 1, MPI_INT64_T, r, kProbeTag, side_), context);
  }
  const double window_s = std::min(timeout_s_, std::chrono::duration<double>(kProbeWindow).count());
  std::map<int, Answer> answers;
  const Clock::time_point probed = Clock::now();
  while (static_cast<int>(answers.size()) < size_ - 1 && seconds_since(probed) < window_s) {
    if (test(requests)) return false;  // late, but complete: nothing is missing
    answer_probes(collective);         // another rank may be timing out too
    int queued = 0;
    MPI_Status status;
    LONGNET_MPI_CHECK(MPI_Iprobe(MPI_ANY_SOURCE, kAnswerTag, side_, &queued, &status), context);
    if (queued == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      continue;
    }
    Answer answer;
    LONGNET_MPI_CHECK(MPI_Recv(&answer, sizeof(Answer), MPI_BYTE, status.MPI_SOURCE, kAnswerTag,
                               side_, MPI_STATUS_IGNORE),
                      context);
    answer.collective.back() = '\0';
    if (answer.asked == collective.sequence) answers[status.MPI_SOURCE] = answer;
  }

  std::vector<std::string> missing;
  std::vector<int> arrived;
  for (int r = 0; r < size_; ++r) {
    if (r == rank_) continue;
    const auto it = answers.find(r);
    if (it == answers.end()) {
      missing.push_back(fmt::format(
          "rank {} (no answer within {:.1f} s: it is not waiting in any collective of this "
          "communicator; computing, waiting on another communicator, or gone)",
          r, window_s));
    } else if (it->second.sequence != collective.sequence) {
      missing.push_back(fmt::format("rank {} (waiting in collective #{} of this communicator, {})",
                                    r, it->second.sequence, it->second.collective.data()));
    } else {
      arrived.push_back(r);
    }
  }
  // The requests cannot be cancelled; they are kept so the destructor can release them
  // if they complete before the job ends.
  abandoned_.insert(abandoned_.end(), requests.begin(), requests.end());
  std::fill(requests.begin(), requests.end(), MPI_REQUEST_NULL);
  fail(
      "collective watchdog: {} on communicator '{}' (rank {} of {}), collective #{} of this "
      "communicator, did not complete within {:.1f} s. Not arrived: {}. Arrived: {}. A rank "
      "that skipped or added a collective, or one far slower than the others, causes this; "
      "if such a wait is expected, raise the limit ({}=seconds, 0 = off; default {:.0f})",
      describe(collective.name, collective.tag), name_, rank_, size_, collective.sequence, waited_s,
      missing.empty() ? "none known" : fmt::format("{}", fmt::join(missing, "; ")),
      arrived.empty() ? "no other rank" : fmt::format("ranks {}", fmt::join(arrived, ", ")),
      kTimeoutVariable, kDefaultTimeoutS);
}

}  // namespace longnet
