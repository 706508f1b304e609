// The lifetime of MPI in one process, and the one way to end a job on failure.
//
// main() (or a test main) creates one MpiSession before anything else touches MPI and
// keeps it alive until every communicator is destroyed: the constructor calls
// MPI_Init_thread, the destructor MPI_Finalize. The session also sets MPI_ERRORS_RETURN
// on MPI_COMM_WORLD, so that failures come back as codes for LONGNET_MPI_CHECK instead
// of aborting inside MPI.
//
// abort_job() is for main and the test mains only: library code throws longnet::Error
// (runtime/error.hpp), and main turns it into abort_job(e.what()), which prints the
// message tagged with the rank and host and ends every rank of the job with MPI_Abort.
// Returning from main on one rank instead would leave the others waiting in their next
// collective for ever.
#pragma once

#include <string>
#include <string_view>

namespace longnet {

// MPI's thread-support levels, in increasing order (MPI_THREAD_SINGLE .. MULTIPLE).
enum class MpiThreadLevel { single, funneled, serialized, multiple };

class MpiSession {
 public:
  // The exit status abort_job gives the job unless told otherwise.
  static constexpr int kAbortExitCode = 1;

  // Initialises MPI with at least `required` thread support (argc and argv may be null).
  // Throws Error when MPI is already initialised or cannot provide `required`; MPI is
  // then finalised again, on every rank alike, so main can simply return.
  MpiSession(int* argc, char*** argv, MpiThreadLevel required = MpiThreadLevel::funneled);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  int rank() const { return rank_; }  // in MPI_COMM_WORLD
  int size() const { return size_; }
  const std::string& host() const { return host_; }
  MpiThreadLevel thread_level() const { return provided_; }

  // Prints "[rank r/P host] message" to stderr and ends the whole job with MPI_Abort.
  // Safe from any thread when the thread level is `multiple`.
  [[noreturn]] void abort_job(std::string_view message, int exit_code = kAbortExitCode) const;

 private:
  int rank_ = 0;
  int size_ = 0;
  std::string host_;
  MpiThreadLevel provided_ = MpiThreadLevel::single;
};

}  // namespace longnet
