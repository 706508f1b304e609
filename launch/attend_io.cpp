// Reading, checking and writing the files of `longnet attend` (see attend_command.hpp
// for the file contract): shared by the single-process and the MPI paths.
#include "launch/attend_io.hpp"

#include <fmt/format.h>
#include <unistd.h>

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

}  // namespace

DilatedAttentionConfig read_attend_config(const H5File& file) {
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

Shape check_attend_dataset(const H5File& file, const std::string& name, const Shape* like) {
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
  return shape;
}

AttentionShape read_attend_shape(const H5File& file, bool* has_dout) {
  const Shape q = check_attend_dataset(file, "q", nullptr);
  check_attend_dataset(file, "k", &q);
  check_attend_dataset(file, "v", &q);
  *has_dout = file.has_dataset("do");
  if (*has_dout) check_attend_dataset(file, "do", &q);
  const AttentionShape shape{q[0], q[1], q[2], q[3]};
  in_file(file.path(), [&] {
    validate_shape(shape);
    return 0;
  });
  return shape;
}

TemporaryOutput::TemporaryOutput(std::filesystem::path target, long tag)
    : target_(std::move(target)), path_(fmt::format("{}.tmp.{}", target_.string(), tag)) {}

TemporaryOutput::~TemporaryOutput() {
  if (committed_) return;
  std::error_code ignored;
  std::filesystem::remove(path_, ignored);
}

void TemporaryOutput::commit() {
  std::error_code ec;
  std::filesystem::rename(path_, target_, ec);
  LONGNET_CHECK(!ec, "cannot move '{}' into place as '{}': {}", path_.string(), target_.string(),
                ec.message());
  committed_ = true;
}

void write_config_attributes(H5File& file, const DilatedAttentionConfig& config,
                             const std::string& backend) {
  std::vector<int64_t> segment_lengths, dilation_rates;
  for (const DilationPattern& p : config.patterns) {
    segment_lengths.push_back(p.segment_length);
    dilation_rates.push_back(p.dilation_rate);
  }
  file.write_attr_int64_array("segment_lengths", segment_lengths);
  file.write_attr_int64_array("dilation_rates", dilation_rates);
  file.write_attr_int64("causal", config.causal ? 1 : 0);
  file.write_attr_string("head_offsets", head_offsets_name(config.head_offsets));
  if (config.scale) file.write_attr_double("scale", *config.scale);
  file.write_attr_string("backend", backend);
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

}  // namespace longnet
