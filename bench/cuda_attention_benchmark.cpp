// CUDA dilated-attention benchmark (needs a GPU; refuses clearly without one).
//
// For each sequence length: inputs rounded to --dtype on the host, one untimed forward
// (and backward) whose sampled rows are checked against their exact float64 values
// (kernels/dilated_attention_spot_check.hpp on the rounded inputs; bound per dtype
// below), then warm-up and the median of --repeats, each call synchronised. Output: a
// '#'-headed fixed-width table and a CSV twin, in the same FLOP convention as the CPU
// benchmark (bench/README.md). bench/torch_baselines.py measures the two PyTorch
// baselines the issue compares against on the same device.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>

#include "bench/problem_options.hpp"
#include "bench/timing.hpp"
#include "kernels/cuda/dilated_attention_cuda.hpp"
#include "kernels/dilated_attention_spot_check.hpp"
#include "runtime/device_memory.hpp"
#include "runtime/random_fill.hpp"

namespace longnet::bench {
namespace {

struct Options {
  ProblemOptions problem{.tokens = {32768, 131072, 524288, 1048576},
                         .batch = 1,
                         .heads = 16,
                         .head_dim = 128,
                         .segments = {2048, 4096, 8192, 16384, 32768},
                         .rates = {1, 2, 4, 6, 12},
                         .offsets = "grouped"};
  std::string dtype = "bfloat16";
  bool deterministic = true;
  int repeats = 10, warmup = 3;
  int64_t check_rows = 16;
  std::string csv = "bench_attention_cuda.csv";
};

// Relative L2 bound of the sampled rows against float64, for inputs already rounded to
// the dtype: the outputs are rounded once to the dtype (2^-8 for bf16, 2^-11 for fp16)
// on top of fp32 accumulation, so a few units of that rounding.
double tolerance(DType dtype) {
  switch (dtype) {
    case DType::bfloat16:
      return 1.6e-2;
    case DType::float16:
      return 2e-3;
    default:
      return 1e-5;
  }
}

int run(const Options& opt) {
  std::string reason;
  if (!cuda_device_available(&reason)) {
    fmt::print(stderr, "bench: {}; this benchmark needs a GPU\n", reason);
    return 2;
  }
  const DType dtype = parse_dtype(opt.dtype);
  const auto config = opt.problem.config();
  auto kernels = make_cuda_dilated_attention(0, opt.deterministic);

  fmt::print("# longnet CUDA dilated attention: {} {}{}\n", kernels->name(), dtype_name(dtype),
             opt.deterministic ? " deterministic dq" : " atomic dq");
  fmt::print("# config: {}  B={} H={} D={}  median of {} runs after {} warm-up\n",
             config.describe(), opt.problem.batch, opt.problem.heads, opt.problem.head_dim,
             opt.repeats, opt.warmup);
  fmt::print("# {:>9} {:>4} {:>11} {:>9} {:>10}\n", "N", "dir", "median_ms", "TFLOP/s",
             "check_err");
  std::ofstream csv(opt.csv);
  LONGNET_CHECK(csv.good(), "cannot write the CSV file '{}'", opt.csv);
  csv << "backend,dtype,N,B,H,D,segment_lengths,dilation_rates,causal,direction,median_ms,"
         "tflops,check_error\n";

  for (int64_t n : opt.problem.tokens) {
    const AttentionShape shape = opt.problem.shape(n);
    const Shape full = qkv_shape(shape);
    // The values every implementation sees: float32 rounded to the dtype.
    auto rounded = [&](uint64_t seed) {
      return random_tensor(full, seed).cast(dtype).cast(DType::float32);
    };
    const Tensor q = rounded(1), k = rounded(2), v = rounded(3), dout = rounded(4);
    auto device = [&](const Tensor& t) { return t.cast(dtype).to(Device::cuda); };
    const Tensor dq_in = device(q), dk_in = device(k), dv_in = device(v), ddo = device(dout);
    Tensor o(full, dtype, Device::cuda), lse(lse_shape(shape), DType::float32, Device::cuda);
    Tensor grads[3] = {Tensor(full, dtype, Device::cuda), Tensor(full, dtype, Device::cuda),
                       Tensor(full, dtype, Device::cuda)};

    kernels->forward(config, dq_in, dk_in, dv_in, o, lse);
    kernels->backward(config, dq_in, dk_in, dv_in, o, lse, ddo, grads[0], grads[1], grads[2]);
    kernels->synchronize();
    const auto sample = sample_rows(shape, opt.check_rows, 7);
    const SpotCheckError fwd = spot_check_forward(
        config, q, k, v, o.to(Device::cpu).cast(DType::float32), lse.to(Device::cpu), sample);
    const SpotCheckError bwd = spot_check_backward(
        config, q, k, v, dout, grads[0].to(Device::cpu).cast(DType::float32), sample);
    if (fwd.o > tolerance(dtype) || fwd.coverage_mismatches > 0 || bwd.dq > tolerance(dtype)) {
      fmt::print(stderr,
                 "bench: check FAILED at N={}: o {:.3g}, dq {:.3g} (bound {:.1g}); not timing "
                 "a wrong kernel\n",
                 n, fwd.o, bwd.dq, tolerance(dtype));
      return 1;
    }
    auto report = [&](const char* dir, double ms, double flops, double err) {
      const double tflops = flops / (ms * 1e9);
      fmt::print("  {:>9} {:>4} {:>11.3f} {:>9.1f} {:>10.2e}\n", n, dir, ms, tflops, err);
      std::fflush(stdout);
      csv << fmt::format("{},{},{},{},{},{},\"{}\",\"{}\",{},{},{:.4f},{:.3f},{:.3e}\n",
                         kernels->name(), dtype_name(dtype), n, opt.problem.batch,
                         opt.problem.heads, opt.problem.head_dim,
                         fmt::join(opt.problem.segments, " "), fmt::join(opt.problem.rates, " "),
                         config.causal ? 1 : 0, dir, ms, tflops, err);
    };
    report("fwd",
           median_ms(
               [&] {
                 kernels->forward(config, dq_in, dk_in, dv_in, o, lse);
                 kernels->synchronize();
               },
               opt.warmup, opt.repeats),
           forward_flops(config, shape), fwd.o);
    report("bwd",
           median_ms(
               [&] {
                 kernels->backward(config, dq_in, dk_in, dv_in, o, lse, ddo, grads[0], grads[1],
                                   grads[2]);
                 kernels->synchronize();
               },
               opt.warmup, opt.repeats),
           backward_flops(config, shape), bwd.dq);
  }
  fmt::print("# wrote {}\n", opt.csv);
  return 0;
}

}  // namespace
}  // namespace longnet::bench

int main(int argc, char** argv) {
  longnet::bench::Options opt;
  CLI::App app{"CUDA dilated-attention benchmark (correctness-checked, median timings, CSV)"};
  add_problem_options(app, opt.problem);
  app.add_option("--dtype", opt.dtype, "bfloat16, float16 or float32");
  app.add_flag("!--atomic-dq", opt.deterministic,
               "sum dq with atomicAdd in the key-block kernel instead of the (deterministic, "
               "and on an H100 faster) separate dq kernel");
  app.add_option("--repeats", opt.repeats, "timed runs (median reported)");
  app.add_option("--warmup", opt.warmup, "untimed warm-up runs");
  app.add_option("--check-rows", opt.check_rows, "rows spot-checked before timing");
  app.add_option("--csv", opt.csv, "CSV output path");
  CLI11_PARSE(app, argc, argv);
  try {
    return longnet::bench::run(opt);
  } catch (const longnet::Error& e) {
    fmt::print(stderr, "bench: error: {}\n", e.what());
    return 2;
  }
}
