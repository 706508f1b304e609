#include "bench/comm/driver.hpp"

#include "bench/comm/bench_buffer.hpp"
#include "bench/stats.hpp"
#include "runtime/error.hpp"

#include <algorithm>
#include <chrono>

namespace longnet::bench {
namespace {

constexpr double kBytesPerGB = 1e9;
constexpr double kMicrosecondsPerSecond = 1e6;

// Elements of `got` that differ from `want` (both whole buffers, guards included).
template <typename T>
std::int64_t mismatches(const std::vector<T>& got, const std::vector<T>& want) {
  std::int64_t wrong = 0;
  for (std::size_t i = 0; i < want.size(); ++i) wrong += got[i] != want[i] ? 1 : 0;
  return wrong;
}

template <CommElement T>
ResultRow measure(const Collective& collective, Communicator& comm, Communicator& control,
                  const DriverOptions& options, std::int64_t size) {
  const int ranks = comm.size(), rank = comm.rank();
  const BlockLayout layout = layout_for(size, sizeof(T), ranks, collective.uneven());
  const std::int64_t send_count = collective.send_count(layout, rank);
  const std::int64_t recv_count = collective.recv_count(layout, rank);
  BenchBuffer<T> send(send_count, comm.memory_space()), recv(recv_count, comm.memory_space());

  // 1. Correctness, untimed: poison, one call, compare every element and both guards.
  const T poison = static_cast<T>(kPoison);
  std::vector<T> send_want(send.allocated(), poison), recv_want(recv.allocated(), poison);
  for (std::int64_t i = 0; i < send_count; ++i)
    send_want[static_cast<std::size_t>(kGuardElements + i)] = static_cast<T>(input_value(rank, i));
  send.upload(send_want);
  recv.upload(recv_want);
  for (std::int64_t i = 0; i < recv_count; ++i)
    recv_want[static_cast<std::size_t>(kGuardElements + i)] =
        static_cast<T>(collective.expected_value(layout, rank, i));
  const TypedSpans spans = SpanPair<T>{send.interior(), recv.interior()};
  auto call = [&] {
    collective.run(comm, spans, layout);
    comm.synchronize();
  };
  call();
  std::vector<std::int64_t> wrong{mismatches(recv.download(), recv_want) +
                                  mismatches(send.download(), send_want)};

  // 2. Warm-up, then each timed call on its own, between barriers.
  comm.barrier();
  for (int i = 0; i < options.warmup; ++i) call();
  comm.barrier();
  std::vector<double> seconds;
  seconds.reserve(static_cast<std::size_t>(options.iters));
  for (int i = 0; i < options.iters; ++i) {
    const auto start = std::chrono::steady_clock::now();
    call();
    seconds.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::vector<double> time{median(std::move(seconds))};
  control.all_reduce_in_place<double>(time, ReduceOp::max, "bench time");
  control.all_reduce_in_place<std::int64_t>(wrong, ReduceOp::sum, "bench #wrong");

  ResultRow row;
  row.op = collective.name();
  row.type = type_column_name(options.type);
  row.redop = collective.redop();
  row.size = layout.total() * static_cast<std::int64_t>(sizeof(T));
  row.count = layout.total() / ranks;
  row.time_us = time[0] * kMicrosecondsPerSecond;
  row.algbw = time[0] > 0 ? static_cast<double>(row.size) / time[0] / kBytesPerGB : 0.0;
  row.busbw = collective.bus_bandwidth(row.algbw, ranks);
  row.wrong = wrong[0];
  return row;
}

}  // namespace

std::string_view type_column_name(ElementType type) {
  switch (type) {
    case ElementType::float32:
      return "float";
    case ElementType::float64:
      return "double";
    case ElementType::int32:
      return "int32";
    case ElementType::int64:
      return "int64";
    default:
      return element_type_name(type);
  }
}

ElementType parse_bench_type(std::string_view text) {
  if (text == "float" || text == "float32") return ElementType::float32;
  if (text == "double" || text == "float64") return ElementType::float64;
  if (text == "int32") return ElementType::int32;
  if (text == "int64") return ElementType::int64;
  fail("--dtype '{}' is not one of float, double, int32, int64", text);
}

std::vector<std::int64_t> bench_sizes(const DriverOptions& options) {
  LONGNET_CHECK(options.min_bytes > 0 && options.min_bytes <= options.max_bytes,
                "sizes: need 0 < --min-bytes ({}) <= --max-bytes ({})", options.min_bytes,
                options.max_bytes);
  LONGNET_CHECK(options.step_factor >= 2, "--step-factor {} must be at least 2",
                options.step_factor);
  std::vector<std::int64_t> sizes;
  for (std::int64_t s = options.min_bytes; s <= options.max_bytes; s *= options.step_factor) {
    sizes.push_back(s);
    if (s > options.max_bytes / options.step_factor) break;  // the next one would pass max
  }
  return sizes;
}

BlockLayout layout_for(std::int64_t size_bytes, std::size_t element_bytes, int ranks, bool uneven) {
  const std::int64_t elements = size_bytes / static_cast<std::int64_t>(element_bytes);
  std::vector<std::int64_t> counts(static_cast<std::size_t>(ranks));
  if (!uneven) {
    std::fill(counts.begin(), counts.end(), elements / ranks);
    return BlockLayout(std::move(counts));
  }
  const std::int64_t shares = static_cast<std::int64_t>(ranks) * (ranks + 1) / 2;
  std::int64_t unit = elements / shares;
  if (ranks % 2 == 0) unit -= unit % 2;  // total = unit * P (P+1) / 2 stays a multiple of P
  for (int j = 0; j < ranks; ++j) counts[static_cast<std::size_t>(j)] = unit * (j + 1);
  return BlockLayout(std::move(counts));
}

std::vector<ResultRow> run_collective(const Collective& collective, Communicator& comm,
                                      Communicator& control, const DriverOptions& options,
                                      const std::function<void(const ResultRow&)>& on_row) {
  LONGNET_CHECK(options.iters > 0 && options.warmup >= 0,
                "--iters {} must be > 0, --warmup {} >= 0", options.iters, options.warmup);
  std::vector<ResultRow> rows;
  for (const std::int64_t size : bench_sizes(options)) {
    ResultRow row;
    switch (options.type) {
      case ElementType::float32:
        row = measure<float>(collective, comm, control, options, size);
        break;
      case ElementType::float64:
        row = measure<double>(collective, comm, control, options, size);
        break;
      case ElementType::int32:
        row = measure<std::int32_t>(collective, comm, control, options, size);
        break;
      case ElementType::int64:
        row = measure<std::int64_t>(collective, comm, control, options, size);
        break;
      default:
        fail("the benchmark does not run element type {}", element_type_name(options.type));
    }
    on_row(row);
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace longnet::bench
