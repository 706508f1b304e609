#include "launch/info_command.hpp"
#include "longnet/config.hpp"

#include "kernels/cpu/cpu_isa.hpp"
#include "runtime/device_memory.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <hdf5.h>
#include <omp.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#ifdef LONGNET_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif
#ifdef LONGNET_HAVE_NCCL
#include <nccl.h>
#endif
#ifdef LONGNET_HAVE_MPI
#include <mpi.h>
#endif

#include "comm/communicator_factory.hpp"

namespace longnet {
namespace {

std::string cuda_versions() {
#ifdef LONGNET_HAVE_CUDA
  int runtime = 0, driver = 0;
  cudaRuntimeGetVersion(&runtime);
  const std::string built =
      fmt::format("built with CUDA {}.{}", CUDART_VERSION / 1000, CUDART_VERSION % 1000 / 10);
  if (cudaDriverGetVersion(&driver) != cudaSuccess || driver == 0)
    return built + ", no CUDA driver on this machine";
  return fmt::format("{}, runtime {}.{}, driver supports {}.{}", built, runtime / 1000,
                     runtime % 1000 / 10, driver / 1000, driver % 1000 / 10);
#else
  return "not built (LONGNET_CUDA=OFF or no nvcc at configure time)";
#endif
}

std::string nccl_version() {
#ifdef LONGNET_HAVE_NCCL
  int version = 0;
  if (ncclGetVersion(&version) != ncclSuccess) return "built in, version unknown";
  return fmt::format("{}.{}.{}", version / 10000, version / 100 % 100, version % 100);
#else
  return "not built (needs LONGNET_CUDA and NCCL)";
#endif
}

std::string mpi_version() {
#ifdef LONGNET_HAVE_MPI
  std::array<char, MPI_MAX_LIBRARY_VERSION_STRING> text{};
  int length = 0;
  MPI_Get_library_version(text.data(), &length);
  std::string version(text.data(), static_cast<std::size_t>(length));
  return version.substr(0, version.find_first_of(",\n"));
#else
  return "not built (LONGNET_MPI=OFF)";
#endif
}

std::string hdf5_version() {
  unsigned major = 0, minor = 0, release = 0;
  H5get_libversion(&major, &minor, &release);
  return fmt::format("{}.{}.{}", major, minor, release);
}

// "cuda:0 NVIDIA H100 80GB HBM3 (79.1 GiB, sm_90)" per device, or why there is none.
std::vector<std::string> cuda_devices() {
  std::string reason;
  if (!cuda_device_available(&reason)) return {fmt::format("none ({})", reason)};
  std::vector<std::string> devices;
#ifdef LONGNET_HAVE_CUDA
  int count = 0;
  cudaGetDeviceCount(&count);
  for (int d = 0; d < count; ++d) {
    cudaDeviceProp props{};
    cudaGetDeviceProperties(&props, d);
    devices.push_back(fmt::format("cuda:{} {} ({:.1f} GiB, sm_{}{})", d, props.name,
                                  static_cast<double>(props.totalGlobalMem) / (1 << 30),
                                  props.major, props.minor));
  }
#endif
  return devices;
}

// "0-1" style list of the CPUs this process may run on.
std::string cpu_binding() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return "unknown";
  std::vector<std::string> ranges;
  const int cpus = CPU_SETSIZE;
  for (int c = 0; c < cpus; ++c) {
    if (!CPU_ISSET(c, &set)) continue;
    int end = c;
    while (end + 1 < cpus && CPU_ISSET(end + 1, &set)) ++end;
    ranges.push_back(end == c ? std::to_string(c) : fmt::format("{}-{}", c, end));
    c = end;
  }
  return fmt::format("{} ({} of {})", fmt::join(ranges, ","), CPU_COUNT(&set),
                     std::thread::hardware_concurrency());
}

std::string host_name() {
  std::array<char, 256> host{};
  gethostname(host.data(), host.size() - 1);
  return host.data();
}

void print_build() {
  fmt::print("longnet {}\n", LONGNET_VERSION);
  fmt::print("  compiler      {}\n", __VERSION__);
  fmt::print("  CPU kernels   {} (available: ", cpu_isa_name(default_cpu_isa()));
  std::vector<std::string_view> isas;
  for (const CpuIsa isa : available_cpu_isas()) isas.push_back(cpu_isa_name(isa));
  fmt::print("{})\n", fmt::join(isas, ", "));
  fmt::print("  CUDA          {}\n", cuda_versions());
  fmt::print("  NCCL          {}\n", nccl_version());
  fmt::print("  MPI           {}\n", mpi_version());
  fmt::print("  HDF5          {}\n", hdf5_version());
}

// This rank's line: where it runs and what it may use.
std::string rank_line(int rank, int size, int local_rank, int local_size) {
  const std::vector<std::string> devices = cuda_devices();
  std::string gpu = "no GPU";
  if (devices.front().rfind("cuda:", 0) == 0) {
    const auto count = static_cast<int>(devices.size());
    gpu = local_size <= count
              ? fmt::format("GPU {}", devices[static_cast<std::size_t>(local_rank)])
              : fmt::format("{} ranks share {} GPU(s): NCCL needs one per rank", local_size, count);
  }
  return fmt::format("rank {}/{} on {} (local {}/{}), pid {}, cpus {}, {} OpenMP threads, {}", rank,
                     size, host_name(), local_rank, local_size, ::getpid(), cpu_binding(),
                     omp_get_max_threads(), gpu);
}

// Fixed-size records of every rank's `text`, gathered so that each rank holds all of them
// in rank order ("info" output and node grouping need nothing more).
std::vector<std::string> gather_strings(Communicator& world, std::string text,
                                        std::string_view tag) {
  constexpr std::size_t kRecordBytes = 512;
  if (text.size() >= kRecordBytes) text = text.substr(0, kRecordBytes - 5) + " ...";  // said
  text.resize(kRecordBytes, '\0');
  const std::vector<std::uint8_t> send(text.begin(), text.end());
  std::vector<std::uint8_t> all(kRecordBytes * static_cast<std::size_t>(world.size()));
  world.all_gather<std::uint8_t>(send, all, tag);
  std::vector<std::string> out;
  for (int r = 0; r < world.size(); ++r) {
    const char* record = reinterpret_cast<const char*>(all.data()) + r * kRecordBytes;
    out.emplace_back(record, strnlen(record, kRecordBytes));
  }
  return out;
}

void run_info() {
  // The same path in every build: MPI's world, or this process alone without MPI.
  auto world = make_world_communicator("info");
  // Ranks on one host form a node (as MPI's shared-memory split groups them).
  const std::vector<std::string> hosts = gather_strings(*world, host_name(), "info hosts");
  const std::string& mine = hosts[static_cast<std::size_t>(world->rank())];
  const auto before_me = hosts.begin() + world->rank();
  const auto local_rank = static_cast<int>(std::count(hosts.begin(), before_me, mine));
  const auto local_size = static_cast<int>(std::count(hosts.begin(), hosts.end(), mine));
  const std::size_t nodes = std::set<std::string>(hosts.begin(), hosts.end()).size();
  const std::vector<std::string> lines = gather_strings(
      *world, rank_line(world->rank(), world->size(), local_rank, local_size), "info lines");
  if (world->rank() != 0) return;
  print_build();
  fmt::print("devices (rank 0's node)\n");
  for (const std::string& device : cuda_devices()) fmt::print("  {}\n", device);
  fmt::print("world: {} rank(s) on {} node(s)\n", world->size(), nodes);
  for (const std::string& line : lines) fmt::print("  {}\n", line);
}

}  // namespace

void add_info_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand(
      "info",
      "Print the build (CUDA, NCCL, MPI, HDF5 versions), the devices seen, the world layout "
      "and each rank's host, CPU binding and GPU");
  cmd->callback([] { run_info(); });
}

}  // namespace longnet
