// A GoogleTest main for tests run under mpirun (longnet_add_mpi_test in CMakeLists.txt).
//
// - MPI lives in an MpiSession at MPI_THREAD_MULTIPLE: the watchdog aborts from its own
//   thread while the main thread may be inside an MPI call.
// - Only rank 0 prints GoogleTest's output and writes --gtest_output files.
// - After each test, the failures of every rank are gathered to rank 0, which adds those
//   of the other ranks to the same test tagged "[rank r/P]": the result rank 0 prints
//   for a test is its result on every rank.
// - Every rank exits with the same status: 1 if any rank failed; 77 (the SKIP_RETURN_CODE
//   the ctest registration sets) if tests ran and every one was skipped, so that ctest
//   shows "Skipped", not "Passed", for a GPU test on a machine without a GPU; else 0.
// - A watchdog ends the job (MPI_Abort, with the test's name and this rank's failures in
//   it) when one test has run for longer than 60 s (LONGNET_TEST_WATCHDOG_SECONDS
//   overrides): a test stuck in a collective that another rank never entered would
//   otherwise hang until ctest kills mpirun, without a word about which test it was.
//   GoogleTest records an exception escaping a test as a failure on the rank that threw;
//   the other ranks, waiting for it in a collective, wait 5 s longer before they fire, so
//   that the failing rank's message is the one printed before MPI_Abort ends the job.
#include "comm/mpi_communicator.hpp"
#include "comm/mpi_session.hpp"
#include "runtime/error.hpp"
#include "runtime/mpi_check.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <mpi.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace longnet {
namespace {

constexpr std::chrono::seconds kDefaultWatchdogLimit{60};
// How much longer a rank without failures in the stuck test waits before it aborts.
constexpr std::chrono::seconds kQuietRankGrace{5};
constexpr int kExitFailed = 1;
constexpr int kExitAllSkipped = 77;
// Separators of the failure records sent to rank 0: ASCII unit and record separators,
// which no file name or GoogleTest message contains.
constexpr char kFieldSeparator = '\x1f';
constexpr char kRecordSeparator = '\x1e';

std::chrono::seconds watchdog_limit() {
  const char* text = std::getenv("LONGNET_TEST_WATCHDOG_SECONDS");
  if (text == nullptr) return kDefaultWatchdogLimit;
  char* end = nullptr;
  const long seconds = std::strtol(text, &end, 10);
  LONGNET_CHECK(end != text && *end == '\0' && seconds > 0,
                "LONGNET_TEST_WATCHDOG_SECONDS='{}' is not a positive number of seconds", text);
  return std::chrono::seconds(seconds);
}

// Ends the job when the running test has taken longer than the limit.
class Watchdog {
 public:
  Watchdog(const MpiSession& session, std::chrono::seconds limit)
      : session_(session), limit_(limit), thread_([this] { run(); }) {}
  ~Watchdog() {
    {
      const std::lock_guard lock(mutex_);
      quit_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  void start(std::string test) {
    const std::lock_guard lock(mutex_);
    running_ = Running{std::move(test), std::chrono::steady_clock::now(), {}};
  }
  // A failure of the running test on this rank, for the abort message: when the ranks
  // are stuck, the gather to rank 0 never happens, and this is the only report of it.
  void note_failure(const std::string& where, const std::string& message) {
    const std::lock_guard lock(mutex_);
    if (running_) running_->failures += fmt::format("\n  {}: {}", where, message);
  }
  void stop() {
    const std::lock_guard lock(mutex_);
    running_.reset();
  }

 private:
  struct Running {
    std::string test;
    std::chrono::steady_clock::time_point since;
    std::string failures;  // this rank's, one per line
  };

  void run() {
    std::unique_lock lock(mutex_);
    while (!quit_) {
      wake_.wait_for(lock, std::chrono::seconds(1), [this] { return quit_; });
      if (quit_ || !running_) continue;
      // A rank with failures fires first, so its message is the one that gets out
      // before MPI_Abort ends the others.
      const auto limit = running_->failures.empty() ? limit_ + kQuietRankGrace : limit_;
      const auto elapsed = std::chrono::steady_clock::now() - running_->since;
      if (elapsed > limit)
        session_.abort_job(fmt::format(
            "watchdog: test {} has run for more than {} s; it is probably waiting in a "
            "collective that another rank never entered (look for that rank's failure). "
            "Ending the job. This rank's failures in the test:{}",
            running_->test, std::chrono::duration_cast<std::chrono::seconds>(limit).count(),
            running_->failures.empty() ? std::string(" none") : running_->failures));
    }
  }

  const MpiSession& session_;
  const std::chrono::seconds limit_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool quit_ = false;
  std::optional<Running> running_;
  std::thread thread_;  // last: it starts running in the constructor
};

// Gathers each test's failures to rank 0 and reports them there; drives the watchdog.
class MpiResultGatherer : public ::testing::EmptyTestEventListener {
 public:
  MpiResultGatherer(MPI_Comm comm, int rank, int size, Watchdog& watchdog)
      : comm_(comm), rank_(rank), size_(size), watchdog_(watchdog) {}

  void OnTestStart(const ::testing::TestInfo& test) override {
    records_.clear();
    watchdog_.start(fmt::format("{}.{}", test.test_suite_name(), test.name()));
  }

  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (!result.failed() || reporting_) return;
    const char* file = result.file_name() != nullptr ? result.file_name() : "unknown";
    records_ += fmt::format("{}{}{}{}{}{}", file, kFieldSeparator, result.line_number(),
                            kFieldSeparator, result.message(), kRecordSeparator);
    watchdog_.note_failure(fmt::format("{}:{}", file, result.line_number()), result.message());
  }

  // Runs before the default printer's OnTestEnd (GoogleTest calls end events in reverse
  // order of registration), so the failures added here are part of the printed result.
  void OnTestEnd(const ::testing::TestInfo&) override {
    // The gather is part of the test for the watchdog: a rank whose test failed waits
    // here for ranks that may be stuck inside the test.
    const std::vector<std::string> per_rank = gather_all(records_);
    watchdog_.stop();
    records_.clear();
    if (rank_ != 0) return;
    reporting_ = true;
    for (int r = 1; r < size_; ++r) report(r, per_rank[static_cast<std::size_t>(r)]);
    reporting_ = false;
  }

  // Failures outside any test (in environments or static set-up) are printed at the end.
  void OnTestProgramEnd(const ::testing::UnitTest&) override {
    const std::vector<std::string> per_rank = gather_all(records_);
    if (rank_ != 0) return;
    for (int r = 1; r < size_; ++r)
      for (const auto& [file, line, message] : parse(per_rank[static_cast<std::size_t>(r)]))
        fmt::print("[rank {}/{}] {}:{}: failure outside a test\n{}\n", r, size_, file, line,
                   message);
  }

 private:
  struct Record {
    std::string file;
    int line;
    std::string message;
  };

  static std::vector<Record> parse(const std::string& text) {
    std::vector<Record> records;
    std::size_t begin = 0;
    while (begin < text.size()) {
      const std::size_t end = text.find(kRecordSeparator, begin);
      const std::string record = text.substr(begin, end - begin);
      const std::size_t a = record.find(kFieldSeparator);
      const std::size_t b = record.find(kFieldSeparator, a + 1);
      records.push_back({record.substr(0, a), std::atoi(record.substr(a + 1, b - a - 1).c_str()),
                         record.substr(b + 1)});
      begin = end + 1;
    }
    return records;
  }

  void report(int from_rank, const std::string& text) const {
    for (const auto& [file, line, message] : parse(text))
      ADD_FAILURE_AT(file.c_str(), line)
          << "[rank " << from_rank << "/" << size_ << "] " << message;
  }

  // Every rank's text, on every rank. An all-gather rather than a gather to rank 0: a
  // rank cannot leave it before every rank has entered it (a small MPI_Gather may return
  // at once on a non-root rank), so a rank whose failure left the others stuck stays
  // inside its test, where its watchdog reports that failure.
  std::vector<std::string> gather_all(const std::string& mine) const {
    const int length = static_cast<int>(mine.size());
    std::vector<int> lengths(static_cast<std::size_t>(size_), 0);
    LONGNET_MPI_CHECK(MPI_Allgather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, comm_));
    std::vector<int> offsets(lengths.size(), 0);
    int total = 0;
    for (std::size_t r = 0; r < lengths.size(); ++r) {
      offsets[r] = total;
      total += lengths[r];
    }
    std::string all(static_cast<std::size_t>(total), '\0');
    LONGNET_MPI_CHECK(MPI_Allgatherv(mine.data(), length, MPI_CHAR, all.data(), lengths.data(),
                                     offsets.data(), MPI_CHAR, comm_));
    std::vector<std::string> per_rank(lengths.size());
    for (std::size_t r = 0; r < lengths.size(); ++r)
      per_rank[r] =
          all.substr(static_cast<std::size_t>(offsets[r]), static_cast<std::size_t>(lengths[r]));
    return per_rank;
  }

  MPI_Comm comm_;
  int rank_;
  int size_;
  Watchdog& watchdog_;
  std::string records_;     // this rank's failures in the current test
  bool reporting_ = false;  // rank 0 is adding other ranks' failures: do not collect them
};

// Runs the tests and returns the exit status every rank agrees on.
int run_tests(const MpiSession& session) {
  // The main's own communicator keeps its gathers apart from the tests' traffic.
  const auto world = MpiCommunicator::world("test main");
  Watchdog watchdog(session, watchdog_limit());
  auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
  if (world->rank() != 0) {
    delete listeners.Release(listeners.default_result_printer());
    delete listeners.Release(listeners.default_xml_generator());
  }
  listeners.Append(new MpiResultGatherer(world->handle(), world->rank(), world->size(), watchdog));

  const int local_status = RUN_ALL_TESTS();
  const auto* unit = ::testing::UnitTest::GetInstance();
  // [any rank failed, any rank ran a test that was not skipped]
  std::array<int, 2> flags{local_status != 0 ? 1 : 0,
                           unit->test_to_run_count() > unit->skipped_test_count() ? 1 : 0};
  LONGNET_MPI_CHECK(
      MPI_Allreduce(MPI_IN_PLACE, flags.data(), 2, MPI_INT, MPI_MAX, world->handle()));
  const bool any_failed = flags[0] != 0;
  const bool all_skipped = unit->test_to_run_count() > 0 && flags[1] == 0;
  if (any_failed) return kExitFailed;
  return all_skipped ? kExitAllSkipped : 0;
}

}  // namespace
}  // namespace longnet

int main(int argc, char** argv) {
  std::optional<longnet::MpiSession> session;
  try {
    session.emplace(&argc, &argv, longnet::MpiThreadLevel::multiple);
  } catch (const std::exception& e) {
    fmt::print(stderr, "mpi test main: {}\n", e.what());
    return longnet::kExitFailed;
  }
  ::testing::InitGoogleTest(&argc, argv);
  try {
    return longnet::run_tests(*session);
  } catch (const std::exception& e) {
    session->abort_job(e.what());  // never return from one rank while others wait
  }
}
