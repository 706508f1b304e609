// TokenDataset: read one split, check it, and cut windows from it.
#include "model/training/token_dataset.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "model/training/counter_hash.hpp"
#include "model/training/token_shards.hpp"
#include "runtime/error.hpp"
#include "runtime/hdf5_file.hpp"

namespace longnet {

TokenDataset::TokenDataset(const std::filesystem::path& dir, std::string_view split) {
  const std::filesystem::path path = token_split_path(dir, split);
  name_ = path.string();
  LONGNET_CHECK(std::filesystem::exists(path),
                "no token data at '{}': run `longnet data prepare --out {}` first", name_,
                dir.string());
  const H5File file = H5File::open_read(path);
  const std::string format =
      file.has_attribute("format") ? file.read_attr_string("format") : std::string("(none)");
  LONGNET_CHECK(format == kTokenFormat,
                "'{}' is not token data: its format attribute is '{}', expected '{}'", name_,
                format, kTokenFormat);
  const int64_t version = file.read_attr_int64("version");
  LONGNET_CHECK(version == kTokenFormatVersion,
                "'{}' has token format version {}, this build reads version {}: prepare the "
                "data again",
                name_, version, kTokenFormatVersion);
  tokens_ = file.read_dataset_u8("tokens");
  const int64_t recorded = file.read_attr_int64("tokens");
  LONGNET_CHECK(recorded == size(),
                "'{}' holds {} tokens but records {}: the file is damaged; prepare it again", name_,
                size(), recorded);
  file_count_ = file.read_attr_int64("files");
  entropy_bits_ = file.read_attr_double("unigram_entropy_bits");
  entropy_nats_ = file.read_attr_double("unigram_entropy_nats");
}

TokenDataset::TokenDataset(std::vector<uint8_t> tokens, std::string name)
    : tokens_(std::move(tokens)), name_(std::move(name)) {
  const ByteEntropy entropy = unigram_entropy(tokens_);
  entropy_bits_ = entropy.bits;
  entropy_nats_ = entropy.nats;
}

void TokenDataset::check_window(int64_t batch_size, int64_t seq_len) const {
  LONGNET_CHECK(batch_size > 0 && seq_len > 0, "{}: batch_size {} and seq_len {} must be positive",
                name_, batch_size, seq_len);
  LONGNET_CHECK(size() >= seq_len + 1,
                "{} holds {} tokens, fewer than seq_len + 1 = {} for one window: use a shorter "
                "data.seq_len or more data",
                name_, size(), seq_len + 1);
}

void TokenDataset::copy_window(int64_t offset, int64_t seq_len, int32_t* out) const {
  const uint8_t* begin = tokens_.data() + offset;
  std::copy(begin, begin + seq_len + 1, out);
}

int64_t TokenDataset::sample_offset(uint64_t seed, uint64_t step, int64_t group, int64_t row,
                                    int64_t seq_len) const {
  check_window(1, seq_len);
  LONGNET_CHECK(group >= 0 && row >= 0, "{}: group {} and row {} must be non-negative", name_,
                group, row);
  uint64_t h = splitmix_finalize(seed);
  h = hash_combine(h, step);
  h = hash_combine(h, static_cast<uint64_t>(group));
  h = hash_combine(h, static_cast<uint64_t>(row));
  const auto windows = static_cast<uint64_t>(size() - seq_len);  // starts 0 .. n - seq_len - 1
  return static_cast<int64_t>(scale_to(h, windows));
}

int64_t TokenDataset::validation_offset(int64_t window, int64_t seq_len) const {
  check_window(1, seq_len);
  LONGNET_CHECK(window >= 0, "{}: validation window {} must be non-negative", name_, window);
  // frac(window / phi) in 64-bit fixed point: exact, so identical on every machine.
  const uint64_t fraction = static_cast<uint64_t>(window) * kGoldenGamma;
  return static_cast<int64_t>(scale_to(fraction, static_cast<uint64_t>(size() - seq_len)));
}

void TokenDataset::sample_batch(uint64_t seed, uint64_t step, int64_t group, int64_t batch_size,
                                int64_t seq_len, std::vector<int32_t>& tokens_out) const {
  check_window(batch_size, seq_len);
  tokens_out.resize(static_cast<std::size_t>(batch_size * (seq_len + 1)));
  for (int64_t r = 0; r < batch_size; ++r) {
    copy_window(sample_offset(seed, step, group, r, seq_len), seq_len,
                tokens_out.data() + r * (seq_len + 1));
  }
}

void TokenDataset::validation_batch(int64_t index, int64_t batch_size, int64_t seq_len,
                                    std::vector<int32_t>& tokens_out) const {
  check_window(batch_size, seq_len);
  LONGNET_CHECK(index >= 0, "{}: validation batch {} must be non-negative", name_, index);
  tokens_out.resize(static_cast<std::size_t>(batch_size * (seq_len + 1)));
  for (int64_t r = 0; r < batch_size; ++r) {
    copy_window(validation_offset(index * batch_size + r, seq_len), seq_len,
                tokens_out.data() + r * (seq_len + 1));
  }
}

}  // namespace longnet
