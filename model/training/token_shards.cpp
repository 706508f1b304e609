// `longnet data prepare`: find the files, split them by path hash, concatenate each
// split with a NUL after every file, write DIR/train.h5 and DIR/val.h5 (temporary names,
// then rename). The whole corpus passes through memory once (~60 MB for the Go tree).
#include "model/training/token_shards.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <numbers>
#include <optional>

#include "model/training/counter_hash.hpp"
#include "model/training/private_file.hpp"
#include "runtime/error.hpp"
#include "runtime/hdf5_file.hpp"

namespace longnet {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kProgressEveryFiles = 500;
constexpr double kMiB = 1024.0 * 1024.0;

struct SourceFile {
  fs::path path;
  std::string relative;  // to its input root, '/'-separated: what the split hashes
};

// ".go" for "go" or ".go": users type either.
std::string normalised_extension(const std::string& extension) {
  LONGNET_CHECK(!extension.empty() && extension != ".",
                "--ext '{}' is empty: give a file name ending such as .go", extension);
  return extension.front() == '.' ? extension : "." + extension;
}

bool has_extension(const fs::path& file, const std::vector<std::string>& extensions) {
  if (extensions.empty()) return true;
  const std::string name = file.filename().string();
  return std::ranges::any_of(extensions, [&](const std::string& e) { return name.ends_with(e); });
}

// Directories are walked recursively and their files sorted by relative path, so the
// token order does not depend on the order the file system lists entries in.
std::vector<SourceFile> collect_files(const std::vector<fs::path>& inputs,
                                      const std::vector<std::string>& extensions) {
  std::vector<SourceFile> files;
  for (const fs::path& input : inputs) {
    std::error_code ec;
    const fs::file_status status = fs::status(input, ec);
    LONGNET_CHECK(fs::exists(status),
                  "input '{}' does not exist: pass existing files or "
                  "directories with --input",
                  input.string());
    if (fs::is_regular_file(status)) {
      files.push_back({input, input.filename().generic_string()});
      continue;
    }
    LONGNET_CHECK(fs::is_directory(status), "input '{}' is neither a regular file nor a directory",
                  input.string());
    std::vector<SourceFile> found;
    try {
      for (const fs::directory_entry& entry : fs::recursive_directory_iterator(input)) {
        if (!entry.is_regular_file() || !has_extension(entry.path(), extensions)) continue;
        found.push_back({entry.path(), entry.path().lexically_relative(input).generic_string()});
      }
    } catch (const fs::filesystem_error& e) {
      fail("cannot walk input directory '{}': {} ('{}')", input.string(), e.code().message(),
           e.path1().string());
    }
    std::ranges::sort(found, {}, &SourceFile::relative);
    files.insert(files.end(), found.begin(), found.end());
  }
  return files;
}

// Appends the file's bytes and then the separator.
int64_t append_file(const fs::path& path, std::vector<uint8_t>& tokens) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  LONGNET_CHECK(in.good(), "cannot read input file '{}': {}", path.string(), std::strerror(errno));
  const std::streamoff size = in.tellg();
  LONGNET_CHECK(size >= 0, "cannot read input file '{}': its size is unknown", path.string());
  const std::size_t start = tokens.size();
  tokens.resize(start + static_cast<std::size_t>(size));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(tokens.data() + start), size);
  LONGNET_CHECK(in.gcount() == size, "cannot read input file '{}': read {} of its {} bytes",
                path.string(), in.gcount(), size);
  tokens.push_back(kDocumentSeparator);
  return size;
}

struct Split {
  std::string name;
  std::vector<uint8_t> tokens;
  int64_t files = 0;
};

// ".train.h5.tmp-": what every temporary of a split's file starts with.
std::string temporary_prefix(const fs::path& out_dir, std::string_view split) {
  return fmt::format(".{}.tmp-", token_split_path(out_dir, split).filename().string());
}

// Deletes temporaries that killed runs left in out_dir: regular files only (a link of
// such a name, and what it points to, are left alone), named as a split's temporary.
void remove_stale_temporaries(const fs::path& out_dir) {
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(out_dir, ec)) {
    const std::string name = entry.path().filename().string();
    const bool ours = name.starts_with(temporary_prefix(out_dir, "train")) ||
                      name.starts_with(temporary_prefix(out_dir, "val"));
    if (ours && is_regular_file_not_link(entry.path())) fs::remove(entry.path(), ec);
  }
}

// The temporaries of both splits, created (mkstemp: unpredictable names, never a
// planted link) before any input is read, which also proves the output directory
// writable before the work; removed unless renamed into place.
class Temporaries {
 public:
  explicit Temporaries(const fs::path& out_dir) {
    for (std::string_view split : {"train", "val"}) {
      paths_.push_back(create_private_temporary(out_dir, temporary_prefix(out_dir, split)));
    }
  }
  ~Temporaries() {
    std::error_code ec;
    for (const fs::path& p : paths_) {
      if (!p.empty()) fs::remove(p, ec);
    }
  }
  Temporaries(const Temporaries&) = delete;
  Temporaries& operator=(const Temporaries&) = delete;
  const fs::path& train() const { return paths_[0]; }
  const fs::path& val() const { return paths_[1]; }
  void renamed() { paths_.clear(); }

 private:
  std::vector<fs::path> paths_;
};

void write_split(const fs::path& file, const Split& split, const ByteEntropy& entropy,
                 const PrepareOptions& options, const std::string& source) {
  H5File out = H5File::create(file);
  out.write_dataset_u8("tokens", split.tokens);
  out.write_attr_string("format", kTokenFormat);
  out.write_attr_int64("version", kTokenFormatVersion);
  out.write_attr_string("split", split.name);
  out.write_attr_string("source", source);
  out.write_attr_int64("files", split.files);
  out.write_attr_int64("tokens", static_cast<int64_t>(split.tokens.size()));
  out.write_attr_int64("separator", kDocumentSeparator);
  out.write_attr_double("val_fraction", options.val_fraction);
  out.write_attr_uint64("split_seed", options.seed);
  out.write_attr_double("unigram_entropy_bits", entropy.bits);
  out.write_attr_double("unigram_entropy_nats", entropy.nats);
  out.close();
}

}  // namespace

bool in_validation_split(std::string_view relative_path, double val_fraction, uint64_t seed) {
  const uint64_t hash = hash_combine(splitmix_finalize(seed), hash_string(relative_path));
  return unit_interval(hash) < val_fraction;
}

ByteEntropy unigram_entropy(std::span<const uint8_t> tokens) {
  if (tokens.empty()) return {};
  std::array<int64_t, 256> counts{};
  for (const uint8_t t : tokens) ++counts[t];
  const double n = static_cast<double>(tokens.size());
  double nats = 0;
  for (const int64_t c : counts) {
    if (c == 0) continue;
    const double p = static_cast<double>(c) / n;
    nats -= p * std::log(p);
  }
  return {nats / std::numbers::ln2, nats};
}

fs::path token_split_path(const fs::path& dir, std::string_view split) {
  LONGNET_CHECK(split == "train" || split == "val",
                "unknown token split '{}': use \"train\" or \"val\"", split);
  return dir / fmt::format("{}.h5", split);
}

std::string PrepareSummary::describe() const {
  return fmt::format(
      "data prepare: {} files, {:.1f} MiB -> train: {} files, {} tokens; val: {} files, {} "
      "tokens; train unigram entropy {:.4f} bits/byte ({:.4f} nats/byte) -> {}, {}",
      train_files + val_files, static_cast<double>(bytes) / kMiB, train_files, train_tokens,
      val_files, val_tokens, train_entropy.bits, train_entropy.nats, train_path.string(),
      val_path.string());
}

PrepareSummary prepare_token_data(const PrepareOptions& options) {
  LONGNET_CHECK(options.val_fraction >= 0 && options.val_fraction < 1,
                "--val-fraction {} is out of range: expected a number in [0, 1)",
                options.val_fraction);
  LONGNET_CHECK(!options.out_dir.empty(), "no output directory: pass --out DIR");
  // The output first: a directory that cannot be created or written is refused before
  // the inputs are read.
  std::error_code ec;
  fs::create_directories(options.out_dir, ec);
  LONGNET_CHECK(!ec && fs::is_directory(options.out_dir), "cannot create output directory '{}': {}",
                options.out_dir.string(),
                ec ? ec.message() : std::string("a file of that name exists"));
  std::optional<Temporaries> temporaries;
  try {
    temporaries.emplace(options.out_dir);
  } catch (const Error& e) {
    fail("cannot write in output directory '{}': {}", options.out_dir.string(), e.what());
  }

  const bool default_corpus = options.inputs.empty();
  const std::vector<fs::path> inputs =
      default_corpus ? std::vector<fs::path>{fs::path(kDefaultGoSourceDir)} : options.inputs;
  std::vector<std::string> extensions;
  for (const std::string& e : options.extensions) extensions.push_back(normalised_extension(e));
  if (default_corpus && extensions.empty()) extensions.push_back(".go");
  if (default_corpus) {
    LONGNET_CHECK(fs::is_directory(inputs.front()),
                  "the default corpus {} is not installed: apt-get install golang-1.19-src, or "
                  "pass --input",
                  kDefaultGoSourceDir);
  }

  const std::vector<SourceFile> files = collect_files(inputs, extensions);
  std::vector<std::string> input_names;
  for (const fs::path& p : inputs) input_names.push_back(p.string());
  const std::string source = fmt::format(
      "inputs: {}; extensions: {}", fmt::join(input_names, ", "),
      extensions.empty() ? std::string("all") : fmt::format("{}", fmt::join(extensions, " ")));
  LONGNET_CHECK(!files.empty(),
                "no input files: {} holds no file{}: pass --input with other "
                "files or directories, or --ext with another extension",
                fmt::join(input_names, ", "),
                extensions.empty() ? std::string()
                                   : fmt::format(" ending in {}", fmt::join(extensions, " or ")));

  Split train{"train", {}, 0}, val{"val", {}, 0};
  PrepareSummary summary;
  for (std::size_t i = 0; i < files.size(); ++i) {
    Split& split =
        in_validation_split(files[i].relative, options.val_fraction, options.seed) ? val : train;
    summary.bytes += append_file(files[i].path, split.tokens);
    ++split.files;
    const auto done = static_cast<int64_t>(i + 1);
    if (options.progress && (done % kProgressEveryFiles == 0 || i + 1 == files.size())) {
      options.progress(fmt::format("data prepare: read {}/{} files ({:.1f} MiB)", done,
                                   files.size(), static_cast<double>(summary.bytes) / kMiB));
    }
  }
  LONGNET_CHECK(train.files > 0,
                "all {} files fell into the validation split (--val-fraction {}): lower "
                "--val-fraction or add files",
                files.size(), options.val_fraction);
  LONGNET_CHECK(val.files > 0 || options.val_fraction == 0,
                "no file fell into the validation split ({} files, --val-fraction {}): raise "
                "--val-fraction, add files, or try another --seed",
                files.size(), options.val_fraction);

  summary.train_path = token_split_path(options.out_dir, "train");
  summary.val_path = token_split_path(options.out_dir, "val");
  const fs::path train_tmp = temporaries->train();
  const fs::path val_tmp = temporaries->val();
  // The train entropy goes both into train.h5 and into the summary: count it once.
  summary.train_entropy = unigram_entropy(train.tokens);
  try {
    write_split(train_tmp, train, summary.train_entropy, options, source);
    write_split(val_tmp, val, unigram_entropy(val.tokens), options, source);
    fs::rename(train_tmp, summary.train_path);
    fs::rename(val_tmp, summary.val_path);
    temporaries->renamed();
    remove_stale_temporaries(options.out_dir);
  } catch (const std::exception& e) {
    fail("cannot write the token data to '{}': {}", options.out_dir.string(), e.what());
  }

  summary.train_files = train.files;
  summary.val_files = val.files;
  summary.train_tokens = static_cast<int64_t>(train.tokens.size());
  summary.val_tokens = static_cast<int64_t>(val.tokens.size());
  return summary;
}

}  // namespace longnet
