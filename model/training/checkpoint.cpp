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
#include <cstring>
#include <map>

#include "model/training/counter_hash.hpp"
#include "runtime/error.hpp"
#include "runtime/hdf5_file.hpp"

namespace longnet {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kFormat = "longnet-checkpoint";
constexpr int64_t kVersion = 1;
constexpr std::string_view kPrefix = "ckpt_";
constexpr std::string_view kSuffix = ".h5";
constexpr std::string_view kTemporaryPrefix = ".tmp_ckpt_";
constexpr std::array<std::string_view, 3> kGroups = {"params", "adam_m", "adam_v"};

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

// The step of a temporary ".tmp_ckpt_<digits>.<pid>.h5", or -1 for any other name.
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
    if (step >= 0 && entry.is_regular_file(ec)) found.emplace_back(step, entry.path());
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

std::string group_of(const std::vector<NamedTensor>& group, const CheckpointState& s) {
  if (&group == &s.params) return "params";
  return &group == &s.adam_m ? "adam_m" : "adam_v";
}

// Names unique, usable as HDF5 link names; moments shaped like their parameters.
void check_state(const CheckpointState& s) {
  for (const auto* group : {&s.params, &s.adam_m, &s.adam_v}) {
    const std::string where = group_of(*group, s);
    std::map<std::string, int> seen;
    for (const NamedTensor& t : *group) {
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
  for (const auto* moments : {&s.adam_m, &s.adam_v}) {
    const std::string where = group_of(*moments, s);
    LONGNET_CHECK(moments->size() == s.params.size(),
                  "{} holds {} tensors but params holds {}: one moment per parameter", where,
                  moments->size(), s.params.size());
    for (std::size_t i = 0; i < s.params.size(); ++i) {
      const NamedTensor& p = s.params[i];
      const NamedTensor& m = (*moments)[i];
      LONGNET_CHECK(m.name == p.name,
                    "{}[{}] is '{}' but params[{}] is '{}': moments follow the "
                    "parameters' order",
                    where, i, m.name, i, p.name);
      LONGNET_CHECK(m.tensor.shape() == p.tensor.shape(),
                    "{}/{} has shape {} but its parameter has shape {}", where, m.name,
                    shape_string(m.tensor.shape()), shape_string(p.tensor.shape()));
    }
  }
}

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
  for (const NamedTensor& t : tensors) file.write_tensor(group + "/" + t.name, t.tensor);
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
  // The pid keeps two writers of one step (a misconfigured job) from sharing a temporary.
  const fs::path temporary_path =
      dir / fmt::format("{}{:08}.{}{}", kTemporaryPrefix, state.step, ::getpid(), kSuffix);
  try {
    H5File file = H5File::create_with_user_block(temporary_path, kHeaderBytes);
    file.write_attr_string("format", kFormat);
    file.write_attr_int64("version", kVersion);
    file.write_attr_int64("step", state.step);
    file.write_attr_int64("data_parallel", state.data_parallel);
    file.write_attr_int64("sequence_parallel", state.sequence_parallel);
    file.write_attr_uint64("data_position", state.data_position);
    file.write_attr_string("config", state.config_toml);
    write_group(file, "params", state.params);
    write_group(file, "adam_m", state.adam_m);
    write_group(file, "adam_v", state.adam_v);
    file.write_dataset_u64("rng", state.rng_state);
    file.close();          // H5Fclose flushes every buffer HDF5 holds
    seal(temporary_path);  // the header, then fsync
    fs::rename(temporary_path, final_path);
  } catch (const std::exception& e) {
    fs::remove(temporary_path, ec);
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
    const std::string format =
        file.has_attribute("format") ? file.read_attr_string("format") : std::string("(none)");
    LONGNET_CHECK(format == kFormat, "its format attribute is '{}', expected '{}'", format,
                  kFormat);
    const int64_t version = file.read_attr_int64("version");
    LONGNET_CHECK(version == kVersion, "it has checkpoint version {}, this build reads version {}",
                  version, kVersion);
    s.step = file.read_attr_int64("step");
    s.data_parallel = file.read_attr_int64("data_parallel");
    s.sequence_parallel = file.read_attr_int64("sequence_parallel");
    s.data_position = file.read_attr_uint64("data_position");
    s.config_toml = file.read_attr_string("config");
    for (const std::string_view group : kGroups) {
      const std::string name(group);
      LONGNET_CHECK(file.has_group(name), "the group '/{}' is missing", name);
      std::vector<NamedTensor>& tensors =
          group == "params" ? s.params : (group == "adam_m" ? s.adam_m : s.adam_v);
      for (std::string& tensor_name : file.list_group(name)) {
        Tensor tensor = file.read_tensor_f32(name + "/" + tensor_name);
        tensors.push_back({std::move(tensor_name), std::move(tensor)});
      }
    }
    LONGNET_CHECK(file.has_dataset("rng"), "the dataset '/rng' is missing");
    s.rng_state = file.read_dataset_u64("rng");
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
