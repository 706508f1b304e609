// `longnet`: the command-line entry point.
//
// Each subcommand registers itself from its own file (add_<name>_command) and does its
// work in a callback that CLI11 runs inside parse(). Library code only throws; this is
// the one place that turns an error into an exit status, with a one-line message:
//   0  success
//   2  bad usage or bad input (a CLI11 parse error or a longnet::Error; the message
//      says what to fix)
//   1  a failed correctness check (longnet::CheckFailed: a benchmark's results against
//      float64), or anything unexpected (an exception that is not a longnet::Error)
#include "launch/attend_command.hpp"
#include "launch/data_command.hpp"
#include "launch/demo_command.hpp"
#include "launch/eval_command.hpp"
#include "launch/info_command.hpp"
#include "longnet/config.hpp"
#include "runtime/check_failed.hpp"
#include "runtime/error.hpp"

#ifdef LONGNET_HAVE_BENCH
#include "bench/bench_commands.hpp"
#endif

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "launch/train_command.hpp"

#ifdef LONGNET_HAVE_MPI
#include "comm/collective_step.hpp"
#include "comm/mpi_session.hpp"
#endif

#include <algorithm>
#include <exception>
#include <optional>
#include <string>

namespace {

constexpr int kExitUsageOrInput = 2;
constexpr int kExitUnexpected = 1;
constexpr int kExitCheckFailed = 1;

// "longnet bench scaling" once CLI11 has recognised the subcommands, else "longnet".
std::string command_name(const CLI::App& app) {
  std::string name = app.get_name();
  for (const CLI::App* level = &app; !level->get_subcommands().empty();) {
    level = level->get_subcommands().front();
    name += " " + level->get_name();
  }
  return name;
}

// One line per failure, so that it reads whole in a log and greps as one record.
int report(const CLI::App& app, std::string message, int status) {
  std::ranges::replace(message, '\n', ' ');
  fmt::print(stderr, "{}: error: {}\n", command_name(app), message);
  return status;
}

#ifdef LONGNET_HAVE_MPI
// Under mpirun with several ranks, an error that only this rank may have hit must end
// the whole job (the others may be waiting in a collective): MPI_Abort. An AgreedError
// was thrown by every rank alike, so rank 0 reports it and all ranks exit normally.
// Any other exception (std::bad_alloc on one rank, say) ends the job the same way.
int report_on_ranks(const CLI::App& app, const std::exception& e, std::string message, int status,
                    const std::optional<longnet::MpiSession>& mpi) {
  if (!mpi || mpi->size() == 1) return report(app, std::move(message), status);
  const auto* check = dynamic_cast<const longnet::CheckFailed*>(&e);
  if (dynamic_cast<const longnet::AgreedError*>(&e) != nullptr || (check && check->agreed())) {
    return mpi->rank() == 0 ? report(app, std::move(message), status) : status;
  }
  message = fmt::format("{}: error: {}", command_name(app), message);
  std::ranges::replace(message, '\n', ' ');
  mpi->abort_job(message, status);
}
#endif

}  // namespace

int main(int argc, char** argv) {
#ifdef LONGNET_HAVE_MPI
  std::optional<longnet::MpiSession> mpi;  // outlives every communicator the commands make
  try {
    mpi.emplace(&argc, &argv);
  } catch (const longnet::Error& e) {
    fmt::print(stderr, "longnet: error: cannot start MPI: {}\n", e.what());
    return kExitUnexpected;
  }
#endif
  CLI::App app{"LongNet dilated attention", "longnet"};
  app.require_subcommand(1);

  // Subcommands, one file each (launch/<name>_command.cpp), registered here in the order
  // `longnet --help` lists them.
  longnet::add_attend_command(app);
  longnet::add_demo_command(app);
  longnet::add_data_command(app);
  longnet::add_train_command(app);
  longnet::add_eval_command(app);
#ifdef LONGNET_HAVE_BENCH
  longnet::bench::add_bench_command(app);
#endif
  longnet::add_info_command(app);

  // Under mpirun a failure must end every rank (report_on_ranks); alone, it is reported.
  const auto report_failure = [&](const std::exception& e, std::string message, int status) {
#ifdef LONGNET_HAVE_MPI
    return report_on_ranks(app, e, std::move(message), status, mpi);
#else
    (void)e;
    return report(app, std::move(message), status);
#endif
  };
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return report(app, fmt::format("{} (see '{} --help')", e.what(), command_name(app)),
                  kExitUsageOrInput);
  } catch (const longnet::CheckFailed& e) {
    return report_failure(e, e.what(), kExitCheckFailed);
  } catch (const longnet::Error& e) {
    return report_failure(e, e.what(), kExitUsageOrInput);
  } catch (const std::exception& e) {
    return report_failure(e, fmt::format("unexpected failure: {}", e.what()), kExitUnexpected);
  }
  return 0;
}
