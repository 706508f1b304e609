// Token data for training: `longnet data prepare` turns source files into two HDF5
// files of byte tokens, DIR/train.h5 and DIR/val.h5.
//
// Tokens are bytes (vocabulary 256). Whole files go to one split or the other, chosen by
// a hash of the file's path relative to its input root and the split seed, so that the
// split does not depend on the order files are found in, on where the corpus is
// installed, or on which other files exist; near-duplicate files under different paths
// may still land on both sides (the Go tree has few). Each split is the concatenation of
// its files in sorted path order, each followed by one NUL byte (kDocumentSeparator):
// Go source holds no NUL, so the model can learn where a file ends and the next begins.
//
// File layout (h5py: f["tokens"][:], f.attrs[...]):
//   /tokens                      uint8 [n]
//   format = "longnet-tokens", version = 1, split = "train" | "val",
//   source (the inputs and extension filter), files, tokens, separator (0),
//   val_fraction, split_seed,
//   unigram_entropy_bits, unigram_entropy_nats (of this split's byte frequencies: the
//   loss, per byte, of a model that learned only those frequencies)
// Both files are written under temporary names and renamed, so a failed run leaves no
// half-written split behind. The temporaries (".train.h5.tmp-XXXXXX") are made by
// mkstemp before any input is read: unpredictable names that never open a planted link,
// and an output directory that cannot be written is refused before the work. A
// successful run deletes the temporaries killed runs left (regular files only).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace longnet {

inline constexpr std::string_view kTokenFormat = "longnet-tokens";
inline constexpr int64_t kTokenFormatVersion = 1;
inline constexpr uint8_t kDocumentSeparator = 0;  // appended after every file

// Debian's golang-1.19-src: the Go standard library, the default corpus (~60 MB in 5,557 .go
// files).
inline constexpr std::string_view kDefaultGoSourceDir = "/usr/share/go-1.19/src";

struct PrepareOptions {
  // Files and directories (walked recursively). Empty: kDefaultGoSourceDir with ".go".
  std::vector<std::filesystem::path> inputs;
  // Keep only files found in directories whose name ends with one of these (".go" or
  // "go"); empty keeps every file. Files named in `inputs` are always kept.
  std::vector<std::string> extensions;
  std::filesystem::path out_dir;
  double val_fraction = 0.05;  // in [0, 1): the expected share of files in val
  uint64_t seed = 0;           // the split's hash seed
  // Receives progress lines (roughly every 500 files) and nothing else; may be empty.
  std::function<void(const std::string&)> progress;
};

struct ByteEntropy {
  double bits = 0;  // per byte
  double nats = 0;  // per byte: comparable with a cross-entropy loss in nats
};

struct PrepareSummary {
  int64_t train_files = 0, val_files = 0;
  int64_t bytes = 0;  // bytes read from the files (without separators)
  int64_t train_tokens = 0, val_tokens = 0;
  ByteEntropy train_entropy;
  std::filesystem::path train_path, val_path;
  // "data prepare: 4321 files (40.1 MiB) -> train 4105 files, 40,123,456 tokens; ..."
  std::string describe() const;
};

// Reads, splits and writes; throws longnet::Error when no input file is found, a file
// cannot be read, a split would be empty, or the output cannot be written.
PrepareSummary prepare_token_data(const PrepareOptions& options);

// Whether the file at `relative_path` (generic form, '/' separators) goes to val.
bool in_validation_split(std::string_view relative_path, double val_fraction, uint64_t seed);

// The unigram (byte frequency) entropy of `tokens`; zero for an empty span.
ByteEntropy unigram_entropy(std::span<const uint8_t> tokens);

// DIR/<split>.h5 for split "train" or "val" (anything else is an error).
std::filesystem::path token_split_path(const std::filesystem::path& dir, std::string_view split);

}  // namespace longnet
