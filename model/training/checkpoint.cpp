// Checkpoints: write under a temporary name, fsync, rename, fsync the directory; read
// back with every group, shape and the checksum checked. See checkpoint.hpp for the
// file layout and the reasons.
#include "model/training/checkpoint.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <map>
#include <span>

#include "model/training/counter_hash.hpp"
#include "model/training/private_file.hpp"
#include "runtime/error.hpp"
#include "runtime/hdf5_file.hpp"

namespace longnet {
namespace {

namespace fs = std::filesystem;
namespace layout = checkpoint_layout;

constexpr std::string_view kFormatName = "longnet-checkpoint";  // the format attribute's value
constexpr int64_t kFormatVersion = 1;
constexpr std::string_view kPrefix = "ckpt_";
constexpr std::string_view kSuffix = ".h5";
constexpr std::string_view kTemporaryPrefix = ".tmp_ckpt_";

// A group of tensors in the file and the member of CheckpointState that holds it.
struct TensorGroup {
  const char* name;
  std::vector<NamedTensor> CheckpointState::*tensors;
};
// In file order: the parameters first, then their AdamW moments.
constexpr std::array<TensorGroup, 3> kTensorGroups = {{
    {layout::kParams, &CheckpointState::params},
    {layout::kAdamM, &CheckpointState::adam_m},
    {layout::kAdamV, &CheckpointState::adam_v},
}};
constexpr std::span<const TensorGroup> kMomentGroups = std::span(kTensorGroups).subspan<1>();

// "params/layers.0.attn.wq": the dataset of one tensor of a group.
std::string tensor_path(std::string_view group, std::string_view tensor_name) {
  return fmt::format("{}/{}", group, tensor_name);
}

// ---- names -----------------------------------------------------------------------------

// The step of "ckpt_<digits>.h5", or -1 for any other name.
int64_t checkpoint_step(std::string_view name) {
  if (!name.starts_with(kPrefix) || !name.ends_with(kSuffix)) return -1;
  const std::string_view digits =
      name.substr(kPrefix.size(), name.size() - kPrefix.size() - kSuffix.size());
  if (digits.empty() || !std::ranges::all_of(digits, [](char c) { return c >= '0' && c <= '9'; })) {
    return -1;
  }
  int64_t step = -1;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), step);
  return error == std::errc() && end == digits.data() + digits.size() ? step : -1;
}

// The step of a temporary ".tmp_ckpt_<digits>.<random>", or -1 for any other name (the
// ".tmp_ckpt_<digits>.<pid>.h5" of older versions parses too, so those are cleaned up).
int64_t temporary_step(std::string_view name) {
  if (!name.starts_with(kTemporaryPrefix)) return -1;
  const std::string_view rest = name.substr(kTemporaryPrefix.size());
  int64_t step = -1;
  const auto [end, error] = std::from_chars(rest.data(), rest.data() + rest.size(), step);
  return error == std::errc() && end != rest.data() && *end == '.' ? step : -1;
}

// (step, path) of the regular files in `dir` whose names `step_of` parses, oldest first.
std::vector<std::pair<int64_t, fs::path>> files_by_step(const fs::path& dir,
                                                        int64_t (*step_of)(std::string_view)) {
  std::vector<std::pair<int64_t, fs::path>> found;
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    const int64_t step = step_of(entry.path().filename().string());
    // Not entry.is_regular_file(), which follows links: a link named like a checkpoint is
    // neither read as one nor deleted through.
    if (step >= 0 && is_regular_file_not_link(entry.path())) found.emplace_back(step, entry.path());
  }
  std::ranges::sort(found);
  return found;
}

// ---- the header in HDF5's user block ---------------------------------------------------
//
// Bytes [0, 512): kMagic (16 bytes), the file size (uint64 LE at 16), the checksum (uint64
// LE at 24), zeros. The checksum covers every byte of the file, its own 8 bytes read as
// zero. read_checkpoint checks magic, size and checksum with plain reads before HDF5
// parses anything: HDF5 trusts its metadata, and a damaged file can crash or hang it.

constexpr std::size_t kHeaderBytes = 512;  // HDF5's smallest user block
constexpr std::string_view kMagic = "longnet-ckpt-v1\n";
constexpr std::size_t kSizeAt = 16, kChecksumAt = 24;
constexpr std::size_t kChunkBytes = std::size_t{1} << 20;  // a multiple of 8
static_assert(kMagic.size() == kSizeAt);

// A 64-bit hash over a stream of 8-byte words; not cryptographic: it detects damage.
class StreamHash {
 public:
  // Every call but the last must pass a multiple of 8 bytes.
  void add(const unsigned char* bytes, std::size_t size) {
    std::size_t i = 0;
    for (; i + 8 <= size; i += 8) {
      uint64_t word = 0;
      std::memcpy(&word, bytes + i, 8);
      hash_ = splitmix_finalize((hash_ ^ word) + kGoldenGamma);
    }
    if (i < size) {
      uint64_t word = 0;
      std::memcpy(&word, bytes + i, size - i);
      hash_ = splitmix_finalize((hash_ ^ word) + kGoldenGamma);
    }
    length_ += size;
  }
  uint64_t value() const { return splitmix_finalize(hash_ ^ length_); }

 private:
  uint64_t hash_ = 0, length_ = 0;
};

uint64_t load_u64(const unsigned char* bytes) {
  uint64_t value = 0;
  std::memcpy(&value, bytes, 8);  // little-endian hosts only (x86-64, aarch64)
  return value;
}

// An open file descriptor, closed on scope exit.
struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Reads exactly `size` bytes at `offset`; false at end of file.
bool read_at(int fd, unsigned char* out, std::size_t size, uint64_t offset) {
  while (size > 0) {
    const ssize_t n = ::pread(fd, out, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    LONGNET_CHECK(n >= 0, "read failed: {}", std::strerror(errno));
    if (n == 0) return false;
    out += n;
    size -= static_cast<std::size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return true;
}

// The checksum of the file behind `fd`, of `size` bytes, with the checksum field as zeros.
uint64_t file_checksum(int fd, uint64_t size) {
  StreamHash hash;
  std::vector<unsigned char> chunk(kChunkBytes);
  for (uint64_t offset = 0; offset < size; offset += kChunkBytes) {
    const auto n = static_cast<std::size_t>(std::min<uint64_t>(kChunkBytes, size - offset));
    LONGNET_CHECK(read_at(fd, chunk.data(), n, offset), "the file ended early, at byte {}", offset);
    if (offset == 0) std::memset(chunk.data() + kChecksumAt, 0, 8);
    hash.add(chunk.data(), n);
  }
  return hash.value();
}

// Writes the header into the user block of a closed HDF5 file and syncs the file.
void seal(const fs::path& path) {
  const Fd file{::open(path.c_str(), O_RDWR)};
  LONGNET_CHECK(file.fd >= 0, "cannot open '{}': {}", path.string(), std::strerror(errno));
  struct stat info {};
  LONGNET_CHECK(::fstat(file.fd, &info) == 0, "cannot stat '{}': {}", path.string(),
                std::strerror(errno));
  const auto size = static_cast<uint64_t>(info.st_size);
  std::array<unsigned char, kHeaderBytes> header{};
  std::memcpy(header.data(), kMagic.data(), kMagic.size());
  std::memcpy(header.data() + kSizeAt, &size, 8);
  LONGNET_CHECK(
      ::pwrite(file.fd, header.data(), header.size(), 0) == static_cast<ssize_t>(header.size()),
      "cannot write the header of '{}': {}", path.string(), std::strerror(errno));
  const uint64_t checksum = file_checksum(file.fd, size);
  LONGNET_CHECK(::pwrite(file.fd, &checksum, 8, kChecksumAt) == 8,
                "cannot write the header of '{}': {}", path.string(), std::strerror(errno));
  LONGNET_CHECK(::fsync(file.fd) == 0, "cannot sync '{}' to disk: {}", path.string(),
                std::strerror(errno));
}

// Checks magic, size and checksum; throws Error saying which is wrong.
void check_header(const fs::path& path) {
  const Fd file{::open(path.c_str(), O_RDONLY)};
  LONGNET_CHECK(file.fd >= 0, "cannot open it: {}", std::strerror(errno));
  struct stat info {};
  LONGNET_CHECK(::fstat(file.fd, &info) == 0 && S_ISREG(info.st_mode), "it is not a regular file");
  const auto size = static_cast<uint64_t>(info.st_size);
  std::array<unsigned char, kHeaderBytes> header{};
  const bool whole_header =
      size >= kHeaderBytes && read_at(file.fd, header.data(), kHeaderBytes, 0);
  LONGNET_CHECK(whole_header && std::memcmp(header.data(), kMagic.data(), kMagic.size()) == 0,
                "it is not a readable checkpoint file: it does not start with the longnet "
                "checkpoint header (empty, truncated, damaged, or not written by longnet)");
  const uint64_t recorded_size = load_u64(header.data() + kSizeAt);
  LONGNET_CHECK(recorded_size == size,
                "the file holds {} bytes but its header says {}: it was truncated or damaged; "
                "resume from an older checkpoint",
                size, recorded_size);
  LONGNET_CHECK(load_u64(header.data() + kChecksumAt) == file_checksum(file.fd, size),
                "its bytes do not match the checksum in its header (the file was damaged, or "
                "edited: reseal_checkpoint accepts a deliberate edit); resume from an older "
                "checkpoint");
}

// ---- checks shared by writing and reading -------------------------------------------

// Names unique, usable as HDF5 link names; moments shaped like their parameters.
void check_state(const CheckpointState& s) {
  for (const TensorGroup& group : kTensorGroups) {
    const char* where = group.name;
    std::map<std::string, int> seen;
    for (const NamedTensor& t : s.*group.tensors) {
      LONGNET_CHECK(!t.name.empty() && t.name.find('/') == std::string::npos && t.name != "." &&
                        t.name != "..",
                    "{} tensor name '{}' is not usable: it must be non-empty and hold no '/'",
                    where, t.name);
      LONGNET_CHECK(++seen[t.name] == 1, "{} holds two tensors named '{}'", where, t.name);
      LONGNET_CHECK(t.tensor.defined() && t.tensor.dtype() == DType::float32 &&
                        t.tensor.device() == Device::cpu,
                    "{}/{} must be a float32 host tensor (copy device tensors to the host first)",
                    where, t.name);
    }
  }
  for (const TensorGroup& group : kMomentGroups) {
    const char* where = group.name;
    const std::vector<NamedTensor>& moments = s.*group.tensors;
    LONGNET_CHECK(moments.size() == s.params.size(),
                  "{} holds {} tensors but {} holds {}: one moment per parameter", where,
                  moments.size(), layout::kParams, s.params.size());
    for (std::size_t i = 0; i < s.params.size(); ++i) {
      const NamedTensor& p = s.params[i];
      const NamedTensor& m = moments[i];
      LONGNET_CHECK(m.name == p.name,
                    "{}[{}] is '{}' but {}[{}] is '{}': moments follow the "
                    "parameters' order",
                    where, i, m.name, layout::kParams, i, p.name);
      LONGNET_CHECK(m.tensor.shape() == p.tensor.shape(),
                    "{}/{} has shape {} but its parameter has shape {}", where, m.name,
                    shape_string(m.tensor.shape()), shape_string(p.tensor.shape()));
    }
  }
}

}  // namespace

void check_checkpoint_finite(const CheckpointState& s) {
  for (const TensorGroup& group : kTensorGroups) {
    for (const NamedTensor& t : s.*group.tensors) {
      const auto values = t.tensor.span<float>();
      const auto bad = std::ranges::find_if(values, [](float v) { return !std::isfinite(v); });
      LONGNET_CHECK(bad == values.end(),
                    "refusing to write checkpoint of step {}: {}/{} holds {} at flat index {} "
                    "(the training diverged); the older checkpoints are kept",
                    s.step, group.name, t.name, *bad, bad - values.begin());
    }
  }
}

namespace {

// ---- durability ------------------------------------------------------------------------

// Makes a rename in `dir` durable: the directory entry itself must reach the disk.
void fsync_directory(const fs::path& dir) {
  const Fd handle{::open(dir.c_str(), O_RDONLY | O_DIRECTORY)};
  LONGNET_CHECK(handle.fd >= 0, "cannot open directory '{}' to sync it: {}", dir.string(),
                std::strerror(errno));
  LONGNET_CHECK(::fsync(handle.fd) == 0, "cannot sync directory '{}' to disk: {}", dir.string(),
                std::strerror(errno));
}

void write_group(H5File& file, const std::string& group, const std::vector<NamedTensor>& tensors) {
  file.create_group(group);
  for (const NamedTensor& t : tensors) file.write_tensor(tensor_path(group, t.name), t.tensor);
}

// Deletes the oldest checkpoints beyond keep_last (never `just_written`) and the
// temporaries of steps up to `step`, which no live writer can still be writing.
void prune(const fs::path& dir, int keep_last, const fs::path& just_written, int64_t step) {
  auto complete = files_by_step(dir, checkpoint_step);
  std::erase_if(complete, [&](const auto& entry) { return entry.second == just_written; });
  const std::size_t keep_others = static_cast<std::size_t>(keep_last - 1);
  std::error_code ec;
  for (std::size_t i = 0; i + keep_others < complete.size(); ++i) {
    fs::remove(complete[i].second, ec);
    LONGNET_CHECK(!ec, "cannot delete old checkpoint '{}': {}", complete[i].second.string(),
                  ec.message());
  }
  // files_by_step lists regular files only: a link of that name is left alone.
  for (const auto& [old_step, path] : files_by_step(dir, temporary_step)) {
    if (old_step <= step) fs::remove(path, ec);  // best effort: it is never read
  }
}

}  // namespace

std::string checkpoint_file_name(int64_t step) {
  return fmt::format("{}{:08}{}", kPrefix, step, kSuffix);
}

fs::path write_checkpoint(const fs::path& dir, const CheckpointState& state, int keep_last) {
  LONGNET_CHECK(keep_last >= 1, "keep_last = {} must be at least 1 (the checkpoint being written)",
                keep_last);
  LONGNET_CHECK(state.step >= 0, "checkpoint step {} must be non-negative", state.step);
  check_state(state);
  std::error_code ec;
  fs::create_directories(dir, ec);
  LONGNET_CHECK(!ec && fs::is_directory(dir), "cannot create checkpoint directory '{}': {}",
                dir.string(), ec ? ec.message() : std::string("a file of that name exists"));

  const fs::path final_path = dir / checkpoint_file_name(state.step);
  // An unpredictable name, created exclusively: no planted link is followed, and two
  // writers of one step never share a temporary.
  fs::path temporary_path;
  try {
    temporary_path =
        create_private_temporary(dir, fmt::format("{}{:08}.", kTemporaryPrefix, state.step));
    H5File file = H5File::create_with_user_block(temporary_path, kHeaderBytes);
    file.write_attr_string(layout::kFormat, kFormatName);
    file.write_attr_int64(layout::kVersion, kFormatVersion);
    file.write_attr_int64(layout::kStep, state.step);
    file.write_attr_int64(layout::kDataParallel, state.data_parallel);
    file.write_attr_int64(layout::kSequenceParallel, state.sequence_parallel);
    file.write_attr_uint64(layout::kDataPosition, state.data_position);
    file.write_attr_string(layout::kConfig, state.config_toml);
    for (const TensorGroup& group : kTensorGroups) {
      write_group(file, group.name, state.*group.tensors);
    }
    file.write_dataset_u64(layout::kRng, state.rng_state);
    file.close();          // H5Fclose flushes every buffer HDF5 holds
    seal(temporary_path);  // the header, then fsync
    fs::rename(temporary_path, final_path);
  } catch (const std::exception& e) {
    if (!temporary_path.empty()) fs::remove(temporary_path, ec);
    fail("cannot write checkpoint '{}': {}", final_path.string(), e.what());
  }
  fsync_directory(dir);
  prune(dir, keep_last, final_path, state.step);
  return final_path;
}

void reseal_checkpoint(const fs::path& file) {
  try {
    // Only an HDF5 file with the header's user block: anything else would be overwritten.
    const H5File h5 = H5File::open_read(file);
    LONGNET_CHECK(h5.user_block_bytes() == kHeaderBytes,
                  "it has a user block of {} bytes, not the {} a checkpoint header needs: it was "
                  "not written by write_checkpoint",
                  h5.user_block_bytes(), kHeaderBytes);
  } catch (const Error& e) {
    fail("cannot reseal checkpoint '{}': {}", file.string(), e.what());
  }
  seal(file);
}

std::optional<fs::path> latest_checkpoint(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return std::nullopt;
  const auto complete = files_by_step(dir, checkpoint_step);
  if (complete.empty()) return std::nullopt;
  return complete.back().second;
}

CheckpointState read_checkpoint(const fs::path& path) {
  CheckpointState s;
  try {
    LONGNET_CHECK(fs::exists(path), "no such file");
    check_header(path);
    const H5File file = H5File::open_read(path);
    const std::string format = file.has_attribute(layout::kFormat)
                                   ? file.read_attr_string(layout::kFormat)
                                   : std::string("(none)");
    LONGNET_CHECK(format == kFormatName, "its format attribute is '{}', expected '{}'", format,
                  kFormatName);
    const int64_t version = file.read_attr_int64(layout::kVersion);
    LONGNET_CHECK(version == kFormatVersion,
                  "it has checkpoint version {}, this build reads version {}", version,
                  kFormatVersion);
    s.step = file.read_attr_int64(layout::kStep);
    s.data_parallel = file.read_attr_int64(layout::kDataParallel);
    s.sequence_parallel = file.read_attr_int64(layout::kSequenceParallel);
    s.data_position = file.read_attr_uint64(layout::kDataPosition);
    s.config_toml = file.read_attr_string(layout::kConfig);
    for (const TensorGroup& group : kTensorGroups) {
      LONGNET_CHECK(file.has_group(group.name), "the group '/{}' is missing", group.name);
      for (std::string& tensor_name : file.list_group(group.name)) {
        Tensor tensor = file.read_tensor_f32(tensor_path(group.name, tensor_name));
        (s.*group.tensors).push_back({std::move(tensor_name), std::move(tensor)});
      }
    }
    LONGNET_CHECK(file.has_dataset(layout::kRng), "the dataset '/{}' is missing", layout::kRng);
    s.rng_state = file.read_dataset_u64(layout::kRng);
    LONGNET_CHECK(s.step >= 0 && s.data_parallel >= 1 && s.sequence_parallel >= 1,
                  "step {}, data_parallel {}, sequence_parallel {} are out of range", s.step,
                  s.data_parallel, s.sequence_parallel);
    check_state(s);
  } catch (const Error& e) {
    fail("cannot read checkpoint '{}': {}", path.string(), e.what());
  }
  return s;
}

void check_checkpoint_matches(const CheckpointState& state,
                              const std::vector<NamedTensor>& model_params) {
  std::map<std::string_view, const Tensor*> saved;
  for (const NamedTensor& t : state.params) saved.emplace(t.name, &t.tensor);
  for (const NamedTensor& p : model_params) {
    const auto it = saved.find(p.name);
    LONGNET_CHECK(it != saved.end(),
                  "the checkpoint has no parameter '{}' (shape {} in the model): it was written "
                  "for a different model configuration",
                  p.name, shape_string(p.tensor.shape()));
    LONGNET_CHECK(it->second->shape() == p.tensor.shape(),
                  "parameter '{}' has shape {} in the checkpoint but {} in the model: it was "
                  "written for a different model configuration",
                  p.name, shape_string(it->second->shape()), shape_string(p.tensor.shape()));
    saved.erase(it);
  }
  LONGNET_CHECK(saved.empty(),
                "the checkpoint's parameter '{}' is not in the model: it was written for a "
                "different model configuration",
                saved.empty() ? std::string_view() : saved.begin()->first);
}

}  // namespace longnet
