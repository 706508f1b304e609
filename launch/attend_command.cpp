// `longnet attend`: read and validate, run the kernels, write atomically, summarise.
//
// With MPI (mpirun -np P longnet attend ...), each rank reads only its shard of tokens
// (HDF5 hyperslabs), runs the sequence-parallel op (model/sequence_parallel_attention),
// and writes its slice of one output file: rank 0 creates the file under a temporary
// name, the ranks write their slices in turn, rank 0 renames it into place. Every step
// that can fail on some ranks only runs through run_collectively, so all ranks fail
// together with the first failing rank's message. Without mpirun, or in a build without
// MPI (the self communicator), the same steps run in one process over the whole sequence.
#include "launch/attend_command.hpp"

#include "kernels/dilated_attention_factory.hpp"
#include "launch/attend_io.hpp"
#include "launch/thread_limit.hpp"
#include "runtime/hdf5_file.hpp"

#include <fmt/format.h>
#include <fmt/ostream.h>
#include <omp.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>

#include "comm/collective_step.hpp"
#include "comm/communicator_factory.hpp"
#include "launch/rank_agreement.hpp"
#include "launch/traffic_report.hpp"
#include "model/sequence_parallel_attention.hpp"

namespace longnet {
namespace {

double milliseconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

// GFLOP/s from FLOPs and milliseconds: flops / (ms * 1e-3) / 1e9.
double gflops_per_second(double flops, double ms) { return ms > 0 ? flops / (ms * 1e6) : 0.0; }

// The ranks of a run: MPI's world (one rank without mpirun), or this process alone in a
// build without MPI. One path either way.
class Ranks {
 public:
  Ranks() : world_(make_world_communicator("attend")) {}
  int rank() const { return world_->rank(); }
  int size() const { return world_->size(); }
  Communicator& world() { return *world_; }
  void together(const std::function<void()>& step) { run_collectively(*world_, step); }
  void barrier() { world_->barrier("attend"); }
  double max(double x) {
    std::vector<double> v{x};
    world_->all_reduce_in_place<double>(v, ReduceOp::max, "attend timing");
    return v[0];
  }
  long broadcast(long x) {
    std::vector<int64_t> v{x};
    world_->broadcast<int64_t>(v, 0, "attend");
    return static_cast<long>(v[0]);
  }

 private:
  std::unique_ptr<Communicator> world_;
};

const char* const kGradientNames[] = {"dq", "dk", "dv"};

struct Run {
  DilatedAttentionConfig config;
  AttentionShape shape;     // global
  AttentionShape local;     // this rank's shard
  int64_t first_token = 0;  // of the shard
  bool has_dout = false;
  AttentionExtras extras;  // document_lengths, when the file has them
  Tensor q, k, v, dout;
  Tensor o, lse;
  Tensor grads[3];
  double forward_ms = 0, backward_ms = 0;
};

void read_inputs(const AttendOptions& options, Ranks& ranks, Run& run) {
  const H5File file = H5File::open_read(options.input);
  run.config = read_attend_config(file);
  run.shape = read_attend_shape(file, &run.has_dout);
  run.extras.document_lengths = read_document_lengths(file, run.shape);
  LONGNET_CHECK(run.extras.document_lengths.empty() || ranks.size() == 1,
                "{}: packed documents (dataset 'document_lengths') run on one rank for now: "
                "sequence parallelism over documents that span ranks is not implemented yet; "
                "run without mpirun",
                options.input.string());
  const Shard shard = shard_of(run.shape.tokens, ranks.size(), ranks.rank());
  const int64_t begin = shard.begin, end = shard.end;
  run.first_token = begin;
  run.local = {run.shape.batch, end - begin, run.shape.heads, run.shape.head_dim,
               run.shape.kv_heads};
  check_attend_memory(run.local, run.has_dout);
  run.q = file.read_tensor_f32_slice("q", 1, begin, end);
  run.k = file.read_tensor_f32_slice("k", 1, begin, end);
  run.v = file.read_tensor_f32_slice("v", 1, begin, end);
  if (run.has_dout) run.dout = file.read_tensor_f32_slice("do", 1, begin, end);
  if (!options.allow_nonfinite) check_inputs_finite(run.q, run.k, run.v, run.dout, begin);
}

// Rank 0 creates the file and its datasets, then each rank writes its slice in turn
// (serial HDF5: one writer at a time), then rank 0 renames the file into place.
void write_outputs(const AttendOptions& options, const std::string& backend, Ranks& ranks,
                   const Run& run) {
  const long tag = ranks.broadcast(static_cast<long>(AtomicOutputFile::random_nonce()));
  std::optional<TemporaryOutput> temporary;  // rank 0's; removes the file unless committed
  ranks.together([&] {
    if (ranks.rank() != 0) return;
    temporary.emplace(options.output, tag);
    H5File file = H5File::create(temporary->path());
    file.create_dataset_f32("o", qkv_shape(run.shape));
    file.create_dataset_f32("lse", lse_shape(run.shape));
    if (run.has_dout) {
      file.create_dataset_f32("dq", qkv_shape(run.shape));
      file.create_dataset_f32("dk", kv_shape(run.shape));
      file.create_dataset_f32("dv", kv_shape(run.shape));
    }
    write_config_attributes(file, run.config, backend);
    file.close();
  });
  const std::filesystem::path path = AtomicOutputFile::temporary_path(options.output, tag);
  for (int writer = 0; writer < ranks.size(); ++writer) {
    ranks.together([&] {
      if (ranks.rank() != writer) return;
      H5File file = H5File::open_read_write(path);
      file.write_tensor_f32_slice("o", 1, run.first_token, run.o);
      file.write_tensor_f32_slice("lse", 1, run.first_token, run.lse);
      if (run.has_dout) {
        for (int i = 0; i < 3; ++i) {
          file.write_tensor_f32_slice(kGradientNames[i], 1, run.first_token, run.grads[i]);
        }
      }
      file.close();
    });
  }
  ranks.together([&] {
    if (ranks.rank() == 0) temporary->commit();
  });
}

// FLOPs of the call: with packed documents, the sum over every document as a sequence
// of its own (documents shorter than a segment do less work than the whole row would).
double call_flops(const Run& run, bool backward) {
  const auto flops = [&](const AttentionShape& shape) {
    return backward ? backward_flops(run.config, shape) : forward_flops(run.config, shape);
  };
  if (run.extras.document_lengths.empty()) return flops(run.shape);
  double total = 0;
  for (const std::vector<int64_t>& row : run.extras.document_lengths) {
    for (const int64_t length : row) {
      if (length == 0) continue;
      AttentionShape document = run.shape;
      document.batch = 1;
      document.tokens = length;
      total += flops(document);
    }
  }
  return total;
}

void print_summary(const AttendOptions& options, const std::string& backend, Ranks& ranks,
                   const Run& run, std::ostream& out) {
  if (ranks.rank() != 0) return;
  fmt::print(out, "longnet attend: {} | {} | {}, {} rank(s) x {} threads\n", run.shape.describe(),
             run.config.describe(), backend, ranks.size(), omp_get_max_threads());
  fmt::print(out, "  forward  {:10.3f} ms {:9.2f} GFLOP/s\n", run.forward_ms,
             gflops_per_second(call_flops(run, false), run.forward_ms));
  if (run.has_dout) {
    fmt::print(out, "  backward {:10.3f} ms {:9.2f} GFLOP/s\n", run.backward_ms,
               gflops_per_second(call_flops(run, true), run.backward_ms));
  }
  fmt::print(out, "  wrote {} to {}\n", run.has_dout ? "o, lse, dq, dk, dv" : "o, lse",
             options.output.string());
}

// Refuses device/dtype combinations this build or this run cannot honour, before any
// work: never a silent fall back to another device or precision.
void check_device_options(const AttendOptions& options, int ranks) {
  LONGNET_CHECK(options.device == "cpu" || options.device == "cuda", "--device {}: use cpu or cuda",
                options.device);
  const DType dtype = parse_dtype(options.dtype);
  if (options.device == "cpu") {
    LONGNET_CHECK(dtype == DType::float32,
                  "--dtype {} needs --device cuda: the CPU kernels compute in float32",
                  options.dtype);
    return;
  }
  LONGNET_CHECK(dtype != DType::float64,
                "--dtype float64: the CUDA kernels take bfloat16, "
                "float16 or float32");
  LONGNET_CHECK(
      ranks == 1,
      "--device cuda runs on one rank for now: sequence parallelism on GPUs (device-side "
      "packing with NCCL) is not implemented yet; run without mpirun, or use --device cpu");
}

// The whole sequence on one GPU: float32 file data rounded to --dtype, outputs widened back
// to float32 for the file. Times cover the kernels only (inputs are on the device).
void run_on_cuda(const AttendOptions& options, DilatedAttentionOp& kernels, Run& run,
                 std::string& backend) {
  const DType dtype = parse_dtype(options.dtype);
  backend = fmt::format("{} ({})", kernels.name(), dtype_name(dtype));
  auto to_device = [&](const Tensor& t) { return t.cast(dtype).to(Device::cuda); };
  const Tensor q = to_device(run.q), k = to_device(run.k), v = to_device(run.v);
  Tensor o(qkv_shape(run.local), dtype, Device::cuda);
  Tensor lse(lse_shape(run.local), DType::float32, Device::cuda);
  auto start = std::chrono::steady_clock::now();
  kernels.forward(run.config, q, k, v, o, lse, run.extras);
  kernels.synchronize();
  run.forward_ms = milliseconds_since(start);
  run.o = o.to(Device::cpu).cast(DType::float32);
  run.lse = lse.to(Device::cpu);
  if (!run.has_dout) return;
  const Tensor dout = to_device(run.dout);
  Tensor grads[3] = {Tensor(qkv_shape(run.local), dtype, Device::cuda),
                     Tensor(kv_shape(run.local), dtype, Device::cuda),
                     Tensor(kv_shape(run.local), dtype, Device::cuda)};
  start = std::chrono::steady_clock::now();
  kernels.backward(run.config, q, k, v, o, lse, dout, grads[0], grads[1], grads[2], run.extras);
  kernels.synchronize();
  run.backward_ms = milliseconds_since(start);
  for (int i = 0; i < 3; ++i) run.grads[i] = grads[i].to(Device::cpu).cast(DType::float32);
}

}  // namespace

void run_attend(const AttendOptions& options, std::ostream& out) {
  Ranks ranks;
  Run run;
  std::unique_ptr<DilatedAttentionOp> kernels, cuda;
  ranks.together([&] {
    const CpuIsa isa = options.isa.empty() ? default_cpu_isa() : parse_cpu_isa(options.isa);
    LONGNET_CHECK(cpu_isa_available(isa),
                  "--isa {}: this processor or build cannot run it; the best available is {}",
                  cpu_isa_name(isa), cpu_isa_name(available_cpu_isas().back()));
    check_output_path(options.output, options.input);
    check_device_options(options, ranks.size());
    if (options.threads > 0) omp_set_num_threads(options.threads);
    // The CPU op: sequence parallelism and --device cpu run on it.
    kernels = make_dilated_attention(Device::cpu, DType::float32, isa);
    if (options.device == "cuda") {
      cuda = make_dilated_attention(Device::cuda, parse_dtype(options.dtype));
    }
    read_inputs(options, ranks, run);
  });
  require_ranks_agree(ranks.world(),
                      attend_facts(options.output, run.config, run.shape, run.has_dout),
                      "input file and options");
  run.o = Tensor(qkv_shape(run.local), DType::float32);
  run.lse = Tensor(lse_shape(run.local), DType::float32);
  if (run.has_dout) {
    run.grads[0] = Tensor(qkv_shape(run.local), DType::float32);
    run.grads[1] = Tensor(kv_shape(run.local), DType::float32);
    run.grads[2] = Tensor(kv_shape(run.local), DType::float32);
  }

  // Each pass runs once (this is a tool; bench/ measures properly), but OpenMP's thread
  // team is started before the clock: on a small input, starting it costs more than
  // the attention and would make the reported rate meaningless.
#pragma omp parallel
  { (void)0; }
  std::optional<SequenceParallelAttention> sp;
  ranks.together([&] { sp.emplace(ranks.world(), run.config, run.shape, *kernels); });
  std::string backend = ranks.size() > 1
                            ? fmt::format("{} x {} ranks (mpi)", kernels->name(), ranks.size())
                            : kernels->name();
  // Packed documents (one rank): the op itself, whose tasks follow the documents.
  const bool documents = !run.extras.document_lengths.empty();
  const auto forward = [&] {
    if (documents)
      return kernels->forward(run.config, run.q, run.k, run.v, run.o, run.lse, run.extras);
    sp->forward(run.q, run.k, run.v, run.o, run.lse);
  };
  const auto backward = [&] {
    if (documents) {
      return kernels->backward(run.config, run.q, run.k, run.v, run.o, run.lse, run.dout,
                               run.grads[0], run.grads[1], run.grads[2], run.extras);
    }
    sp->backward(run.q, run.k, run.v, run.o, run.lse, run.dout, run.grads[0], run.grads[1],
                 run.grads[2]);
  };
  ranks.barrier();
  if (cuda) {
    run_on_cuda(options, *cuda, run, backend);
  } else {
    auto start = std::chrono::steady_clock::now();
    forward();
    run.forward_ms = ranks.max(milliseconds_since(start));
    if (run.has_dout) {
      start = std::chrono::steady_clock::now();
      backward();
      run.backward_ms = ranks.max(milliseconds_since(start));
    }
  }

  write_outputs(options, backend, ranks, run);
  if (!options.quiet) print_summary(options, backend, ranks, run, out);
  if (options.stats) print_traffic(ranks.world(), *sp, out);
}

void add_attend_command(CLI::App& app) {
  auto options = std::make_shared<AttendOptions>();
  CLI::App* command = app.add_subcommand(
      "attend",
      "Dilated attention on q, k, v from an HDF5 file (and its gradients when the "
      "file holds do)");
  command
      ->add_option("--in", options->input,
                   "input HDF5 file: q float32 [B, N, H, D], k, v [B, N, Hkv, D], optional do and "
                   "int64 document_lengths [B, M]; root attributes segment_lengths, "
                   "dilation_rates, causal, head_offsets, optional scale")
      ->required();
  command
      ->add_option("--out", options->output,
                   "output HDF5 file: o, lse, and dq, dk, dv when do was given; written whole "
                   "or not at all")
      ->required();
  command->add_option("--isa", options->isa,
                      "CPU instruction set: generic, avx2 or avx512 (default: the best this "
                      "machine runs, or LONGNET_CPU_ISA)");
  command
      ->add_option("--threads", options->threads,
                   "OpenMP threads (default: OpenMP's, i.e. OMP_NUM_THREADS or all cores)")
      ->check(openmp_threads_validator());
  command->add_option("--device", options->device, "cpu or cuda (one GPU, one rank)")
      ->capture_default_str();
  command
      ->add_option("--dtype", options->dtype,
                   "input precision on the device: float32, bfloat16 or float16 (cuda only; "
                   "the file's float32 values are rounded to it)")
      ->capture_default_str();
  command->add_flag("--quiet", options->quiet, "print nothing on success");
  command->add_flag("--allow-nonfinite", options->allow_nonfinite,
                    "compute on inputs holding NaN or Inf (refused by default; see the README)");
  command->add_flag("--stats", options->stats,
                    "print the bytes each rank sent and received per pattern, and its compute "
                    "and communication time");
  command->callback([options] { run_attend(*options, std::cout); });
}

}  // namespace longnet
