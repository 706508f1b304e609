// The MPI collective watchdog: a rank that waits in one collective longer than a limit
// ends the job with a message naming the collective, the communicator, the tag and what
// is known of the ranks that have not arrived, instead of hanging the allocation.
//
// How it waits. Every MpiCommunicator collective is started non-blocking (MPI_I*) and
// completed by wait(): MPI_Test in a loop, spinning for the first kSpin, then sleeping
// between tests for 1/20 of the time waited so far (20 us .. 1 ms), so a wait ends at
// most ~5% late and an idle rank does not steal the cores of busy ones. Past the limit,
// wait() throws longnet::Error; main ends the job with MpiSession::abort_job. The
// collective's request is then left unfinished (MPI cannot cancel a collective): the
// buffers stay in use until the process ends, which abort_job makes prompt.
//
// Which ranks have not arrived. Each watchdog numbers the collectives of its
// communicator (every rank calls the same ones in the same order, so equal numbers mean
// the same collective) and owns a duplicate of the communicator, the side channel. A
// rank that has waited past kSpin answers, between its tests, any probe on the side
// channel with its number and collective. On timeout the rank probes every other rank
// and collects answers for a window of min(limit, kProbeWindow); then each other rank is
// one of: waiting in the same collective (arrived), waiting in another collective of
// this communicator (not arrived; its number and collective are reported), or silent
// (not arrived: it is not waiting in any collective of this communicator; it may be
// computing, waiting on another communicator, or gone). Nothing is guessed: the message
// says which of these each rank is.
//
// Cost. One MPI_Comm_dup per communicator, at creation. Per collective: a counter
// increment, and the test loop; after kSpin one MPI_Iprobe per test on the side channel.
// Messages only on timeout: one probe to each other rank, one answer from each rank
// that is waiting. With the limit 0 (off), collectives still start non-blocking and are
// completed with MPI_Wait; nothing is probed (the side channel still exists, so the
// limit can be set again later).
//
// The limit: MpiCommunicator::set_collective_timeout, else the environment variable
// LONGNET_COLLECTIVE_TIMEOUT read at creation (seconds, 0 = off), else kDefaultTimeoutS.
#pragma once

#include <mpi.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace longnet {

class CollectiveWatchdog {
 public:
  static constexpr double kDefaultTimeoutS = 600.0;
  static constexpr const char* kTimeoutVariable = "LONGNET_COLLECTIVE_TIMEOUT";
  static constexpr std::chrono::microseconds kSpin{2000};
  static constexpr std::chrono::seconds kProbeWindow{5};

  // The limit in seconds: `configured` if given, else LONGNET_COLLECTIVE_TIMEOUT, else
  // kDefaultTimeoutS. Throws Error for a negative or unreadable value, naming its source.
  static double resolve_timeout(std::optional<double> configured);

  // Duplicates `comm` for the side channel (collective over comm).
  CollectiveWatchdog(MPI_Comm comm, std::string name, double timeout_s);
  ~CollectiveWatchdog();
  CollectiveWatchdog(const CollectiveWatchdog&) = delete;
  CollectiveWatchdog& operator=(const CollectiveWatchdog&) = delete;

  double timeout_s() const { return timeout_s_; }
  // 0 = no limit; throws Error for a negative value.
  void set_timeout(double seconds);

  // One collective as the watchdog knows it: its number on this communicator, its name
  // ("all_reduce") and tag.
  struct Collective {
    std::int64_t sequence = 0;
    std::string name;
    std::string tag;
  };

  // Numbers a collective about to start; every rank calls it once per MPI collective.
  Collective begin(std::string_view name, std::string_view tag);
  // Completes `requests` (those of `collective`) or, after the limit, throws Error naming
  // the collective, the communicator, the tag and what is known of the missing ranks.
  void wait(std::span<MPI_Request> requests, const Collective& collective);

 private:
  bool test(std::span<MPI_Request> requests) const;
  // Answers every probe queued on the side channel with `waiting_in`.
  void answer_probes(const Collective& waiting_in) const;
  // Probes the other ranks; returns false if the collective completed meanwhile, else
  // throws the timeout Error.
  bool fail_after_timeout(std::span<MPI_Request> requests, const Collective& collective,
                          double waited_s);

  MPI_Comm side_ = MPI_COMM_NULL;
  std::string name_;
  double timeout_s_;
  int rank_ = 0;
  int size_ = 1;
  std::int64_t sequence_ = 0;           // the number of the collective begun last
  std::vector<MPI_Request> abandoned_;  // of collectives that timed out
};

}  // namespace longnet
