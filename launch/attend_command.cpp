// `longnet attend`: read and validate, run the CPU kernels, write atomically, summarise.
#include "launch/attend_command.hpp"

#include "kernels/cpu/dilated_attention_cpu.hpp"
#include "runtime/hdf5_file.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ostream.h>
#include <omp.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <optional>
#include <ostream>

namespace longnet {
namespace {

constexpr int kQkvRank = 4;  // [batch, tokens, heads, head_dim]

// The attributes every input must carry, with the form each must take.
struct RequiredAttribute {
  const char* name;
  const char* form;
};
constexpr RequiredAttribute kRequiredAttributes[] = {
    {"segment_lengths", "an integer array, one segment length w per pattern"},
    {"dilation_rates", "an integer array, one dilation rate r per pattern"},
    {"causal", "the integer 0 or 1"},
    {"head_offsets", "the string 'interleaved' or 'grouped'"},
};

// Runs `step` and prefixes any Error it throws with the input file's name, for checks
// (the config's, the shape's) that do not know which file their values came from.
template <typename Step>
auto in_file(const std::filesystem::path& path, Step&& step) {
  try {
    return step();
  } catch (const Error& e) {
    fail("{}: {}", path.string(), e.what());
  }
}

DilatedAttentionConfig read_config(const H5File& file) {
  const std::string path = file.path().string();
  for (const auto& attribute : kRequiredAttributes) {
    LONGNET_CHECK(file.has_attribute(attribute.name), "{}: missing root attribute '{}' ({})", path,
                  attribute.name, attribute.form);
  }
  const std::vector<int64_t> segment_lengths = file.read_attr_int64_array("segment_lengths");
  const std::vector<int64_t> dilation_rates = file.read_attr_int64_array("dilation_rates");
  const int64_t causal = file.read_attr_int64("causal");
  LONGNET_CHECK(causal == 0 || causal == 1, "{}: root attribute 'causal' is {}, expected 0 or 1",
                path, causal);
  const std::string head_offsets = file.read_attr_string("head_offsets");
  std::optional<double> scale;
  if (file.has_attribute("scale")) scale = file.read_attr_double("scale");

  return in_file(file.path(), [&] {
    return DilatedAttentionConfig::from_lists(segment_lengths, dilation_rates, causal == 1,
                                              parse_head_offsets(head_offsets), scale);
  });
}

// Reads q, k, v or do. Rank and shape are checked before the data is read, so a
// mismatch in a large file is refused at once; `like` is q's shape for the others.
Tensor read_input(const H5File& file, const std::string& name, const Shape* like) {
  const Shape shape = file.dataset_shape(name);
  LONGNET_CHECK(shape.size() == kQkvRank,
                "{}: dataset '{}' has shape {} (rank {}), expected rank 4 [batch, tokens, heads, "
                "head_dim]",
                file.path().string(), name, shape_string(shape), shape.size());
  if (like != nullptr) {
    LONGNET_CHECK(shape == *like,
                  "{}: dataset '{}' has shape {} but q has shape {}; k, v and do "
                  "must match q",
                  file.path().string(), name, shape_string(shape), shape_string(*like));
  }
  return file.read_tensor_f32(name);
}

// Refuses an output path whose directory is missing before any work is done; whether
// the directory is writable is learnt when the temporary file is created.
void check_output_path(const std::filesystem::path& output) {
  const std::filesystem::path directory =
      output.has_parent_path() ? output.parent_path() : std::filesystem::path(".");
  std::error_code ec;
  LONGNET_CHECK(std::filesystem::is_directory(directory, ec),
                "cannot write '{}': output directory '{}' does not exist", output.string(),
                directory.string());
  LONGNET_CHECK(!std::filesystem::is_directory(output, ec),
                "cannot write '{}': it is a directory; --out must name a file", output.string());
}

// A file under construction: removed on destruction unless commit() renamed it into
// place, so that a failed run leaves neither a partial output nor a stray temporary.
class TemporaryOutput {
 public:
  explicit TemporaryOutput(std::filesystem::path target)
      : target_(std::move(target)),
        path_(fmt::format("{}.tmp.{}", target_.string(), static_cast<long>(::getpid()))) {}
  TemporaryOutput(const TemporaryOutput&) = delete;
  TemporaryOutput& operator=(const TemporaryOutput&) = delete;
  ~TemporaryOutput() {
    if (committed_) return;
    std::error_code ignored;
    std::filesystem::remove(path_, ignored);
  }

  const std::filesystem::path& path() const { return path_; }

  // rename(2) within one directory is atomic: readers see the old file or the new one.
  void commit() {
    std::error_code ec;
    std::filesystem::rename(path_, target_, ec);
    LONGNET_CHECK(!ec, "cannot move '{}' into place as '{}': {}", path_.string(), target_.string(),
                  ec.message());
    committed_ = true;
  }

 private:
  std::filesystem::path target_;
  std::filesystem::path path_;
  bool committed_ = false;
};

void write_outputs(const std::filesystem::path& output, const AttendInputs& inputs,
                   const AttentionOutputs& outputs, const AttentionGradients* gradients,
                   const std::string& backend) {
  TemporaryOutput temporary(output);  // declared first: the file below closes before removal
  H5File file = H5File::create(temporary.path());
  file.write_tensor("o", outputs.o);
  file.write_tensor("lse", outputs.lse);
  if (gradients != nullptr) {
    file.write_tensor("dq", gradients->dq);
    file.write_tensor("dk", gradients->dk);
    file.write_tensor("dv", gradients->dv);
  }
  std::vector<int64_t> segment_lengths, dilation_rates;
  for (const DilationPattern& p : inputs.config.patterns) {
    segment_lengths.push_back(p.segment_length);
    dilation_rates.push_back(p.dilation_rate);
  }
  file.write_attr_int64_array("segment_lengths", segment_lengths);
  file.write_attr_int64_array("dilation_rates", dilation_rates);
  file.write_attr_int64("causal", inputs.config.causal ? 1 : 0);
  file.write_attr_string("head_offsets", head_offsets_name(inputs.config.head_offsets));
  if (inputs.config.scale) file.write_attr_double("scale", *inputs.config.scale);
  file.write_attr_string("backend", backend);
  file.close();
  temporary.commit();
}

double milliseconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

// GFLOP/s from FLOPs and milliseconds: flops / (ms * 1e-3) / 1e9.
double gflops_per_second(double flops, double ms) { return ms > 0 ? flops / (ms * 1e6) : 0.0; }

}  // namespace

AttendInputs read_attend_inputs(const std::filesystem::path& path) {
  const H5File file = H5File::open_read(path);
  AttendInputs inputs;
  inputs.config = read_config(file);
  inputs.q = read_input(file, "q", nullptr);
  inputs.k = read_input(file, "k", &inputs.q.shape());
  inputs.v = read_input(file, "v", &inputs.q.shape());
  if (file.has_dataset("do")) inputs.dout = read_input(file, "do", &inputs.q.shape());
  inputs.shape = in_file(path, [&] { return check_qkv(inputs.q, inputs.k, inputs.v); });
  return inputs;
}

void run_attend(const AttendOptions& options, std::ostream& out) {
  const CpuIsa isa = options.isa.empty() ? default_cpu_isa() : parse_cpu_isa(options.isa);
  LONGNET_CHECK(cpu_isa_available(isa),
                "--isa {}: this processor or build cannot run it; the best available is {}",
                cpu_isa_name(isa), cpu_isa_name(available_cpu_isas().back()));
  check_output_path(options.output);
  if (options.threads > 0) omp_set_num_threads(options.threads);

  const AttendInputs inputs = read_attend_inputs(options.input);
  const std::unique_ptr<DilatedAttentionKernels> kernels = make_cpu_dilated_attention(isa);

  // Each pass runs once (this is a tool; bench/ measures properly), but OpenMP's thread
  // team is started before the clock: on a small input, starting it costs more than
  // the attention and would make the reported rate meaningless.
#pragma omp parallel
  { (void)0; }
  auto start = std::chrono::steady_clock::now();
  const AttentionOutputs outputs =
      run_forward(*kernels, inputs.config, inputs.q, inputs.k, inputs.v);
  const double forward_ms = milliseconds_since(start);
  std::optional<AttentionGradients> gradients;
  double backward_ms = 0;
  if (inputs.dout.defined()) {
    start = std::chrono::steady_clock::now();
    gradients =
        run_backward(*kernels, inputs.config, inputs.q, inputs.k, inputs.v, outputs, inputs.dout);
    backward_ms = milliseconds_since(start);
  }

  write_outputs(options.output, inputs, outputs, gradients ? &*gradients : nullptr,
                kernels->name());
  if (options.quiet) return;

  fmt::print(out, "longnet attend: {} | {} | {}, {} threads\n", inputs.shape.describe(),
             inputs.config.describe(), kernels->name(), omp_get_max_threads());
  fmt::print(out, "  forward  {:10.3f} ms {:9.2f} GFLOP/s\n", forward_ms,
             gflops_per_second(forward_flops(inputs.config, inputs.shape), forward_ms));
  if (gradients) {
    fmt::print(out, "  backward {:10.3f} ms {:9.2f} GFLOP/s\n", backward_ms,
               gflops_per_second(backward_flops(inputs.config, inputs.shape), backward_ms));
  }
  fmt::print(out, "  wrote {} to {}\n", gradients ? "o, lse, dq, dk, dv" : "o, lse",
             options.output.string());
}

void add_attend_command(CLI::App& app) {
  auto options = std::make_shared<AttendOptions>();
  CLI::App* command = app.add_subcommand(
      "attend",
      "Dilated attention on q, k, v from an HDF5 file (and its gradients when the "
      "file holds do)");
  command
      ->add_option("--in", options->input,
                   "input HDF5 file: q, k, v float32 [B, N, H, D], optional do; root attributes "
                   "segment_lengths, dilation_rates, causal, head_offsets, optional scale")
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
      ->check(CLI::Range(1, 1 << 16));
  command->add_flag("--quiet", options->quiet, "print nothing on success");
  command->callback([options] { run_attend(*options, std::cout); });
}

}  // namespace longnet
