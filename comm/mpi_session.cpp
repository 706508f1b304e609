// MpiSession: MPI_Init_thread / MPI_Finalize, and MPI_Abort with a tagged message.
#include "comm/mpi_session.hpp"

#include "runtime/error.hpp"
#include "runtime/mpi_check.hpp"

#include <fmt/format.h>
#include <mpi.h>

#include <array>
#include <cstdio>
#include <cstdlib>

namespace longnet {
namespace {

int to_mpi(MpiThreadLevel level) {
  switch (level) {
    case MpiThreadLevel::single:
      return MPI_THREAD_SINGLE;
    case MpiThreadLevel::funneled:
      return MPI_THREAD_FUNNELED;
    case MpiThreadLevel::serialized:
      return MPI_THREAD_SERIALIZED;
    case MpiThreadLevel::multiple:
      return MPI_THREAD_MULTIPLE;
  }
  return MPI_THREAD_SINGLE;
}

MpiThreadLevel from_mpi(int level) {
  if (level >= MPI_THREAD_MULTIPLE) return MpiThreadLevel::multiple;
  if (level >= MPI_THREAD_SERIALIZED) return MpiThreadLevel::serialized;
  if (level >= MPI_THREAD_FUNNELED) return MpiThreadLevel::funneled;
  return MpiThreadLevel::single;
}

std::string_view level_name(MpiThreadLevel level) {
  switch (level) {
    case MpiThreadLevel::single:
      return "MPI_THREAD_SINGLE";
    case MpiThreadLevel::funneled:
      return "MPI_THREAD_FUNNELED";
    case MpiThreadLevel::serialized:
      return "MPI_THREAD_SERIALIZED";
    case MpiThreadLevel::multiple:
      return "MPI_THREAD_MULTIPLE";
  }
  return "?";
}

}  // namespace

MpiSession::MpiSession(int* argc, char*** argv, MpiThreadLevel required) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  LONGNET_CHECK(initialized == 0,
                "MPI is already initialised: create one MpiSession per process, in main");
  int provided = MPI_THREAD_SINGLE;
  // MPI_Init_thread reports failure through MPI_ERRORS_ARE_FATAL (no communicator has
  // another handler yet), so a failure here ends the job inside MPI with its own message.
  MPI_Init_thread(argc, argv, to_mpi(required), &provided);
  provided_ = from_mpi(provided);
  if (provided_ < required) {
    MPI_Finalize();  // every rank gets the same level from the same library: no rank waits
    fail("this MPI provides {} but {} was required; use an MPI built with thread support",
         level_name(provided_), level_name(required));
  }
  LONGNET_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  LONGNET_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank_));
  LONGNET_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size_));
  register_process_rank(rank_, size_);  // for every library failure's message
  std::array<char, MPI_MAX_PROCESSOR_NAME> name{};
  int length = 0;
  LONGNET_MPI_CHECK(MPI_Get_processor_name(name.data(), &length));
  host_.assign(name.data(), static_cast<std::size_t>(length));
}

MpiSession::~MpiSession() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized == 0) MPI_Finalize();
  register_process_rank(-1, -1);
}

void MpiSession::abort_job(std::string_view message, int exit_code) const {
  fmt::print(stderr, "[rank {}/{} {}] {}\n", rank_, size_, host_, message);
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::abort();  // MPI_Abort does not return; this keeps [[noreturn]] honest if it did
}

}  // namespace longnet
