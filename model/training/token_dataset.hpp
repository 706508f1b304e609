// The token data a training run reads: one split (train or val) of `longnet data
// prepare`'s output, held whole in memory.
//
// Holding the split in memory is deliberate: the Go corpus is ~60 MB of bytes (one byte
// per token), small next to any training machine's memory, and random windows then cost
// no I/O. A corpus of many gigabytes would need HDF5 hyperslab reads per window instead.
// Every rank holds its own copy.
//
// Training windows are a pure function of (seed, step, group, row) through a
// counter-based hash (counter_hash.hpp): the data position to save for a resume is the
// step, data-parallel groups draw different windows, and the sequence-parallel ranks of
// one group draw the same windows without communicating (each then takes its shard).
// Offsets are uniform over all seq_len+1-token windows, which may cross the NUL that
// separates files, as in GPT-style packed training. Validation windows are fixed: the
// j-th starts at floor(frac(j / golden ratio) * (n - seq_len)), a sequence whose every
// prefix is spread evenly over the split (three-gap theorem), so changing eval.batches
// keeps the windows of the first batches, and eval numbers stay comparable across runs.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace longnet {

class TokenDataset {
 public:
  // Reads DIR/<split>.h5 (split "train" or "val") and checks its format and version.
  TokenDataset(const std::filesystem::path& dir, std::string_view split);
  // In-memory tokens (tests, synthetic data); `name` appears in error messages.
  TokenDataset(std::vector<uint8_t> tokens, std::string name);

  int64_t size() const { return static_cast<int64_t>(tokens_.size()); }
  std::span<const uint8_t> tokens() const { return tokens_; }
  const std::string& name() const { return name_; }  // the file, or the name given
  int64_t file_count() const { return file_count_; }
  // The unigram byte entropy of this split, as prepare recorded it (computed for
  // in-memory tokens): the loss of a model that knows only byte frequencies.
  double unigram_entropy_bits() const { return entropy_bits_; }
  double unigram_entropy_nats() const { return entropy_nats_; }

  // batch_size windows of seq_len + 1 consecutive tokens, row-major [batch_size,
  // seq_len + 1] (inputs are [:, :-1], targets [:, 1:]). Row r starts at an offset drawn
  // from (seed, step, group, r). For gradient accumulation, ask for batch_size x
  // grad_accum rows and give micro-batch m rows [m * batch_size, (m + 1) * batch_size).
  void sample_batch(uint64_t seed, uint64_t step, int64_t group, int64_t batch_size,
                    int64_t seq_len, std::vector<int32_t>& tokens_out) const;
  // Validation batch `index` (0, 1, ...): windows index * batch_size + r of the fixed
  // validation sequence, same layout as sample_batch.
  void validation_batch(int64_t index, int64_t batch_size, int64_t seq_len,
                        std::vector<int32_t>& tokens_out) const;

  // Where window row `row` of (seed, step, group) starts; what sample_batch uses.
  int64_t sample_offset(uint64_t seed, uint64_t step, int64_t group, int64_t row,
                        int64_t seq_len) const;
  // Where validation window `window` starts; what validation_batch uses.
  int64_t validation_offset(int64_t window, int64_t seq_len) const;

 private:
  void check_window(int64_t batch_size, int64_t seq_len) const;
  void copy_window(int64_t offset, int64_t seq_len, int32_t* out) const;

  std::vector<uint8_t> tokens_;
  std::string name_;
  int64_t file_count_ = 0;
  double entropy_bits_ = 0, entropy_nats_ = 0;
};

}  // namespace longnet
