// `longnet bench attention --device cuda`: the CUDA kernels' table (needs a GPU; refuses
// clearly without one).
//
// For each sequence length: inputs rounded to --dtype on the host, one untimed forward
// (and backward) whose sampled rows are checked against their exact float64 values
// (kernels/dilated_attention_spot_check.hpp on the rounded inputs; bound per dtype
// below), then warm-up and the median of --repeats, each call synchronised. Output: a
// '#'-headed fixed-width table with CSV and JSON twins, in the same FLOP convention as the CPU
// benchmark (bench/README.md). bench/torch_baselines.py measures the two PyTorch
// baselines the issue compares against on the same device.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdio>

#include "bench/attention_benchmark.hpp"
#include "bench/result_table.hpp"
#include "bench/timing.hpp"
#include "kernels/cuda/dilated_attention_cuda.hpp"
#include "kernels/dilated_attention_spot_check.hpp"
#include "runtime/check_failed.hpp"
#include "runtime/device_memory.hpp"
#include "runtime/random_fill.hpp"

namespace longnet::bench {
namespace {

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

}  // namespace

void run_cuda_attention_bench(const AttentionBenchOptions& opt) {
  std::string reason;
  if (!cuda_device_available(&reason)) {
    fail("--device cuda: {}; this benchmark needs a GPU (use --device cpu here)", reason);
  }
  const DType dtype = parse_dtype(opt.dtype);
  const auto config = opt.problem.config();
  auto kernels = make_cuda_dilated_attention(0, opt.deterministic_dq);

  fmt::print("# longnet CUDA dilated attention: {} {}{}\n", kernels->name(), dtype_name(dtype),
             opt.deterministic_dq ? " deterministic dq" : " atomic dq");
  fmt::print("# config: {}  B={} H={} D={}  median of {} runs after {} warm-up\n",
             config.describe(), opt.problem.batch, opt.problem.heads, opt.problem.head_dim,
             opt.repeats, opt.warmup);
  fmt::print("# {:>9} {:>4} {:>11} {:>9} {:>10}\n", "N", "dir", "median_ms", "TFLOP/s",
             "check_err");
  ResultTable table{
      .benchmark = "longnet bench attention --device cuda",
      .info = {{"backend", std::string(kernels->name())},
               {"dtype", std::string(dtype_name(dtype))},
               {"dq", opt.deterministic_dq ? "deterministic" : "atomic"},
               {"date", utc_now()},
               {"config", config.describe()},
               {"repeats", std::to_string(opt.repeats)},
               {"warmup", std::to_string(opt.warmup)}},
      .columns = {"backend", "dtype", "N", "B", "H", "D", "segment_lengths", "dilation_rates",
                  "causal", "direction", "median_ms", "tflops", "check_error"},
      .text_columns = {"segments", "rates", "segment_lengths", "dilation_rates"}};

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
      throw CheckFailed(fmt::format(
          "check failed at N={}: o {:.3g}, dq {:.3g} (bound {:.1g}); a wrong kernel is not "
          "timed",
          n, fwd.o, bwd.dq, tolerance(dtype)));
    }
    auto report = [&](const char* dir, double ms, double flops, double err) {
      const double tflops = flops / (ms * 1e9);
      fmt::print("  {:>9} {:>4} {:>11.3f} {:>9.1f} {:>10.2e}\n", n, dir, ms, tflops, err);
      std::fflush(stdout);
      table.add_row({kernels->name(), std::string(dtype_name(dtype)), std::to_string(n),
                     std::to_string(opt.problem.batch), std::to_string(opt.problem.heads),
                     std::to_string(opt.problem.head_dim),
                     fmt::format("{}", fmt::join(opt.problem.segments, " ")),
                     fmt::format("{}", fmt::join(opt.problem.rates, " ")),
                     config.causal ? "1" : "0", dir, fmt::format("{:.4f}", ms),
                     fmt::format("{:.3f}", tflops), fmt::format("{:.3e}", err)});
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
  write_outputs(table, opt.csv, opt.json);
}

}  // namespace longnet::bench
