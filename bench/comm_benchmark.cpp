// `longnet bench comm`: the communication benchmark, nccl-tests style: the all-gather and
// reduce-scatter (equal and per-rank counts) that sequence-parallel attention uses, on MPI, or on
// NCCL where the build has it and every rank has a GPU.
//
//   mpirun -np 4 build/launch/longnet bench comm --op all --uneven --max-bytes 16M
//
// One row per (op, size): size count type redop time algbw busbw #wrong, with every
// element checked in an untimed call before the timing (bench/comm/driver.hpp). The
// formulas are in bench/README.md. Only rank 0 prints and writes files. Exit status 0,
// 1 when any element was wrong, 2 for a usage error or an unavailable backend (every
// rank alike, so thrown as agreed errors); any other failure ends the job through
// MpiSession::abort_job in main.
//
// --backend nccl never falls back to MPI: without NCCL in the build or without a GPU
// per rank it refuses, saying which, so a table labelled nccl is always NCCL's.
#include "bench/bench_commands.hpp"
#include "bench/comm/collective.hpp"
#include "bench/comm/driver.hpp"
#include "bench/comm/report.hpp"
#include "bench/result_table.hpp"
#include "comm/collective_step.hpp"
#include "comm/mpi_communicator.hpp"
#include "longnet/config.hpp"
#include "runtime/check_failed.hpp"
#include "runtime/error.hpp"

#ifdef LONGNET_HAVE_NCCL
#include "comm/nccl_communicator.hpp"
#include "runtime/cuda_check.hpp"
#include "runtime/nccl_check.hpp"

#include <cuda_runtime_api.h>
#include <nccl.h>
#endif

#include <fmt/format.h>
#include <mpi.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace longnet::bench {
namespace {

// Bytes of each rank's line in the header, gathered as fixed-size records.
constexpr std::size_t kRankLineBytes = 160;

struct Options {
  std::vector<std::string> ops{"all"};
  bool uneven = false;
  std::string backend = "mpi";
  std::string dtype = "float";
  std::string csv, json;
  DriverOptions driver;
};

std::string host_name() {
  std::array<char, MPI_MAX_PROCESSOR_NAME> name{};
  int length = 0;
  MPI_Get_processor_name(name.data(), &length);
  return {name.data(), static_cast<std::size_t>(length)};
}

std::string mpi_library() {
  std::array<char, MPI_MAX_LIBRARY_VERSION_STRING> text{};
  int length = 0;
  MPI_Get_library_version(text.data(), &length);
  std::string version(text.data(), static_cast<std::size_t>(length));
  version = version.substr(0, version.find_first_of(",\n"));  // "Open MPI v4.1.4"
  return version;
}

// The collectives --op and --uneven select, in table order.
std::vector<std::unique_ptr<Collective>> selected_collectives(const Options& opt) {
  std::vector<std::unique_ptr<Collective>> out;
  auto add = [&](std::unique_ptr<Collective> (*make)(bool), bool uneven) {
    out.push_back(make(uneven));
    if (!uneven && opt.uneven) out.push_back(make(true));
  };
  for (const std::string& op : opt.ops) {
    if (op == "all_gather" || op == "all") add(make_all_gather, false);
    if (op == "all_gatherv") add(make_all_gather, true);
    if (op == "reduce_scatter" || op == "all") add(make_reduce_scatter, false);
    if (op == "reduce_scatterv") add(make_reduce_scatter, true);
  }
  return out;
}

struct Backend {
  std::unique_ptr<Communicator> comm;
  std::string library;
  std::string device;  // "" for host memory, else "device 0 (NVIDIA H100 80GB HBM3)"
};

#ifdef LONGNET_HAVE_NCCL
// Why NCCL cannot run here ("" when it can), agreed on by every rank: NCCL needs one
// CUDA device per rank on each node.
std::string why_no_nccl(MpiCommunicator& world, int local_ranks) {
  int devices = 0;
  const cudaError_t status = cudaGetDeviceCount(&devices);
  std::string reason;
  if (status != cudaSuccess || devices == 0)
    reason = fmt::format("rank {} sees no CUDA device (cudaGetDeviceCount: {}; {} devices)",
                         world.rank(), cudaGetErrorString(status), devices);
  else if (devices < local_ranks)
    reason =
        fmt::format("{} ranks share a node with {} CUDA device(s); NCCL needs one device per rank",
                    local_ranks, devices);
  std::vector<std::int32_t> failed{reason.empty() ? 0 : 1};
  world.all_reduce_in_place<std::int32_t>(failed, ReduceOp::max, "nccl check");
  if (reason.empty() && failed[0] != 0) reason = "another rank has no usable CUDA device";
  return reason;
}
#endif

Backend make_backend(const Options& opt, [[maybe_unused]] MpiCommunicator& control) {
  if (opt.backend == "mpi") return {MpiCommunicator::world("bench"), mpi_library(), ""};
#ifndef LONGNET_HAVE_NCCL
  throw AgreedError{
      "--backend nccl: this build has no NCCL (it was configured without LONGNET_CUDA "
      "or NCCL was not found); not falling back to MPI, use --backend mpi for MPI"};
#else
  const auto node = control.split_by_node("bench node");
  const std::string why = why_no_nccl(control, node->size());
  if (!why.empty())
    throw AgreedError{
        fmt::format("--backend nccl: {}; not falling back to MPI, use --backend mpi for "
                    "MPI",
                    why)};
  const int device = node->rank();
  LONGNET_CUDA_CHECK(cudaSetDevice(device));
  cudaDeviceProp props{};
  LONGNET_CUDA_CHECK(cudaGetDeviceProperties(&props, device));
  int version = 0;
  LONGNET_NCCL_CHECK(ncclGetVersion(&version));
  Backend b;
  b.comm = NcclCommunicator::create(control, device, "bench");
  b.library = fmt::format("NCCL {}.{}.{}", version / 10000, version / 100 % 100, version % 100);
  b.device = fmt::format("device {} ({})", device, props.name);
  return b;
#endif
}

// One line per rank, gathered to every rank: "rank 1 pid 4242 on host, device 1 (...)".
std::vector<std::string> rank_lines(MpiCommunicator& control, const std::string& host,
                                    const std::string& device) {
  std::string mine = fmt::format("rank {} pid {} on {}{}{}", control.rank(), ::getpid(), host,
                                 device.empty() ? "" : ", ", device);
  mine.resize(kRankLineBytes, '\0');
  std::vector<std::uint8_t> send(mine.begin(), mine.end());
  std::vector<std::uint8_t> all(send.size() * static_cast<std::size_t>(control.size()));
  control.all_gather<std::uint8_t>(send, all, "rank lines");
  std::vector<std::string> lines;
  for (int r = 0; r < control.size(); ++r) {
    const char* start = reinterpret_cast<const char*>(all.data()) + r * kRankLineBytes;
    lines.emplace_back(start, strnlen(start, kRankLineBytes));
  }
  return lines;
}

void run(const Options& opt) {
  DriverOptions driver = opt.driver;
  driver.type = parse_bench_type(opt.dtype);
  auto control = MpiCommunicator::world("bench control");
  Backend backend = make_backend(opt, *control);
  const auto collectives = selected_collectives(opt);
  const bool printer = control->rank() == 0;

  RunInfo info;
  info.backend = opt.backend;
  info.library = backend.library;
  info.ranks = control->size();
  info.host = host_name();
  info.date = utc_now();
  info.rank_lines = rank_lines(*control, info.host, backend.device);
  info.options = driver;
  if (printer) print_header(info);

  std::vector<ResultRow> rows;
  for (const auto& collective : collectives) {
    auto more =
        run_collective(*collective, *backend.comm, *control, driver, [&](const ResultRow& row) {
          if (printer) print_row(row);
        });
    rows.insert(rows.end(), more.begin(), more.end());
  }
  std::int64_t wrong = 0;
  for (const ResultRow& row : rows) wrong += row.wrong;
  if (printer) {
    print_footer(rows);
    write_outputs(result_table(info, rows), opt.csv, opt.json);
  }
  if (wrong != 0)
    throw CheckFailed(fmt::format("{} elements held a wrong value after a collective (column "
                                  "#wrong); the timings of those rows are not to be trusted",
                                  wrong),
                      /*agreed=*/true);
}

}  // namespace

void add_comm_bench(CLI::App& bench) {
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = bench.add_subcommand(
      "comm",
      "The collectives of sequence parallelism in the nccl-tests style (under mpirun; MPI, or "
      "NCCL with a GPU per rank)");

  cmd->add_option("--op", opt->ops,
                  "all_gather, all_gatherv, reduce_scatter, reduce_scatterv or all "
                  "(all_gather and reduce_scatter)")
      ->delimiter(',')
      ->check(
          CLI::IsMember({"all_gather", "all_gatherv", "reduce_scatter", "reduce_scatterv", "all"}));
  cmd->add_flag("--uneven", opt->uneven,
                "also run the per-rank-count form of each op (rank j's block proportional to j+1)");
  cmd->add_option("--min-bytes,-b", opt->driver.min_bytes, "smallest size (e.g. 8, 1K, 4M)")
      ->transform(CLI::AsSizeValue(false));
  cmd->add_option("--max-bytes,-e", opt->driver.max_bytes, "largest size (e.g. 64M)")
      ->transform(CLI::AsSizeValue(false));
  cmd->add_option("--step-factor,-f", opt->driver.step_factor,
                  "multiply the size by this each step");
  cmd->add_option("--iters,-n", opt->driver.iters, "timed calls per size (median reported)");
  cmd->add_option("--warmup,-w", opt->driver.warmup,
                  "untimed calls per size before the timed ones");
  cmd->add_option("--dtype,-d", opt->dtype, "float, double, int32 or int64");
  cmd->add_option("--backend", opt->backend,
                  "mpi, or nccl (needs a build with NCCL and a GPU per rank)")
      ->check(CLI::IsMember({"mpi", "nccl"}));
  add_output_options(*cmd, opt->csv, opt->json);
  cmd->callback([opt] {
    // Every rank parses the same command line, so these refusals are agreed.
    if (opt->driver.iters < 1 || opt->driver.warmup < 0)
      throw AgreedError(fmt::format("--iters {} must be >= 1 and --warmup {} >= 0",
                                    opt->driver.iters, opt->driver.warmup));
    try {
      parse_bench_type(opt->dtype);
      bench_sizes(opt->driver);
    } catch (const AgreedError&) {
      throw;
    } catch (const Error& e) {
      throw AgreedError(e.what());
    }
    run(*opt);
  });
}

}  // namespace longnet::bench
