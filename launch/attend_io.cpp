// Reading, checking and writing the files of `longnet attend` (see attend_command.hpp
// for the file contract): shared by the single-process and the MPI paths.
#include "launch/attend_io.hpp"

#include "runtime/checked_size.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cmath>

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
    LONGNET_CHECK(shape == *like, "{}: dataset '{}' has shape {} but {} has shape {}; {}",
                  file.path().string(), name, shape_string(shape), name == "v" ? "k" : "q",
                  shape_string(*like), name == "v" ? "v must match k" : "do must match q");
  }
  return shape;
}

namespace {

// k: [B, N, Hkv, D] with q's B, N, D and Hkv dividing q's H (grouped-query attention).
void check_key_dataset(const H5File& file, const Shape& k, const Shape& q) {
  LONGNET_CHECK(k[0] == q[0] && k[1] == q[1] && k[3] == q[3] && k[2] > 0 && q[2] % k[2] == 0,
                "{}: dataset 'k' has shape {} but q has shape {}; k and v must be [B, N, Hkv, "
                "D] with q's B, N and D, and Hkv (the kv heads) dividing q's H = {}",
                file.path().string(), shape_string(k), shape_string(q), q[2]);
}

}  // namespace

AttentionShape read_attend_shape(const H5File& file, bool* has_dout) {
  const Shape q = check_attend_dataset(file, "q", nullptr);
  const Shape k = check_attend_dataset(file, "k", nullptr);
  check_key_dataset(file, k, q);
  check_attend_dataset(file, "v", &k);
  *has_dout = file.has_dataset("do");
  if (*has_dout) check_attend_dataset(file, "do", &q);
  const AttentionShape shape{q[0], q[1], q[2], q[3], k[2]};
  in_file(file.path(), [&] {
    validate_shape(shape);
    // Every product the kernels and the plan form from it (B*N*H*D elements, their
    // bytes) must fit in 64 bits: a wrapped count would pass every later check.
    const int64_t elements = checked_element_count(q, "dataset 'q'");
    checked_byte_count(elements, 8 * sizeof(float), "dataset 'q' (with k, v, o and gradients)");
    return 0;
  });
  return shape;
}

DocumentLengths read_document_lengths(const H5File& file, const AttentionShape& shape) {
  if (!file.has_dataset("document_lengths")) return {};
  return in_file(file.path(), [&] {
    const Int64Matrix lengths = file.read_matrix_i64("document_lengths");
    LONGNET_CHECK(lengths.rows == shape.batch && lengths.columns >= 1,
                  "dataset 'document_lengths' is [{}, {}], expected [B, M] with B = {} (one row "
                  "of document lengths per batch element) and M >= 1",
                  lengths.rows, lengths.columns, shape.batch);
    DocumentLengths documents(static_cast<std::size_t>(shape.batch));
    for (int64_t b = 0; b < lengths.rows; ++b) {
      const auto row = lengths.values.begin() + b * lengths.columns;
      documents[static_cast<std::size_t>(b)].assign(row, row + lengths.columns);
    }
    check_document_lengths(documents, shape);
    return documents;
  });
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

void check_output_path(const std::filesystem::path& output, const std::filesystem::path& input) {
  LONGNET_CHECK(!output.empty(), "--out is empty; give the path of the output file");
  const std::filesystem::path directory =
      output.has_parent_path() ? output.parent_path() : std::filesystem::path(".");
  std::error_code ec;
  LONGNET_CHECK(std::filesystem::is_directory(directory, ec),
                "cannot write '{}': output directory '{}' does not exist", output.string(),
                directory.string());
  LONGNET_CHECK(!std::filesystem::is_directory(output, ec),
                "cannot write '{}': it is a directory; --out must name a file", output.string());
  // equivalent() compares device and inode, so another spelling or a link is caught.
  const bool same = std::filesystem::exists(output, ec) && std::filesystem::exists(input, ec) &&
                    std::filesystem::equivalent(output, input, ec) && !ec;
  LONGNET_CHECK(!same,
                "--out '{}' is the input file '{}'; the input would be replaced by the output: "
                "write the output elsewhere",
                output.string(), input.string());
  // The one sure test of writability (permissions, a read-only mount, root or not):
  // create a temporary there, as the write will, and remove it.
  AtomicOutputFile probe(output);
}

void check_attend_memory(const AttentionShape& local, bool has_dout) {
  const Shape qkv{local.batch, local.tokens, local.heads, local.head_dim};
  const int64_t elements = checked_element_count(qkv, "the attend tensors");
  const int64_t rows = checked_element_count(std::span(qkv).first(3), "lse");
  // q, k, v, o (+ do, dq, dk, dv), counted at q's size; grouped-query heads under
  // sequence parallelism also hold per-query-head copies of k, v (+ dk, dv).
  const int64_t copies = local.key_heads() != local.heads ? (has_dout ? 4 : 2) : 0;
  const int64_t tensors = (has_dout ? 8 : 4) + copies;
  const int64_t floats = checked_mul(elements, tensors, "the attend tensors") + rows;
  check_host_allocatable(checked_byte_count(floats, sizeof(float), "the attend tensors"),
                         fmt::format("attention on {} per rank", local.describe()));
}

void check_finite(const Tensor& tensor, const std::string& name, int64_t first_token) {
  const std::span<const float> values = tensor.span<float>();
  const int64_t count = static_cast<int64_t>(values.size());
  int64_t first = count;  // none
#pragma omp parallel for reduction(min : first) schedule(static)
  for (int64_t i = 0; i < count; ++i) {
    if (!std::isfinite(values[i]) && i < first) first = i;
  }
  if (first == count) return;
  // [b, n, h, d] from the row-major index within the shard.
  const Shape& s = tensor.shape();
  int64_t rest = first;
  const int64_t d = rest % s[3];
  rest /= s[3];
  const int64_t h = rest % s[2];
  rest /= s[2];
  const int64_t n = rest % s[1] + first_token;
  const int64_t b = rest / s[1];
  fail(
      "input '{}' holds {} at [{}, {}, {}, {}] (the first non-finite value); attention on it "
      "would spread NaN to every row that sees it: fix the input, or pass --allow-nonfinite to "
      "compute anyway",
      name, values[static_cast<std::size_t>(first)], b, n, h, d);
}

void check_inputs_finite(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& dout,
                         int64_t first_token) {
  check_finite(q, "q", first_token);
  check_finite(k, "k", first_token);
  check_finite(v, "v", first_token);
  if (dout.defined()) check_finite(dout, "do", first_token);
}

std::vector<RankFact> attend_facts(const std::filesystem::path& output,
                                   const DilatedAttentionConfig& config,
                                   const AttentionShape& shape, bool has_dout) {
  return {
      {"the shape [B, N, H, D]", shape.describe()},
      {"the configuration", config.describe()},
      {"whether the input holds do", has_dout ? "yes" : "no"},
      {"--out", std::filesystem::absolute(output).lexically_normal().string()},
  };
}

}  // namespace longnet
