// A file that appears whole or not at all, and whose temporary cannot be hijacked.
//
// The temporary is "<target>.tmp.<16 hex digits>" in the target's own directory (so the
// final rename(2) stays on one file system and is atomic), with the digits drawn from
// std::random_device: a name nobody can plant a link at in advance. It is created with
// O_CREAT | O_EXCL | O_NOFOLLOW, so a file or symlink already there is an error rather
// than something to write through. The writer then reopens it by name (HDF5 opens by
// path); commit() renames it over the target, and the destructor removes it otherwise,
// so a failed run leaves neither a partial output nor a stray temporary.
#pragma once

#include <cstdint>
#include <filesystem>

namespace longnet {

class AtomicOutputFile {
 public:
  // Creates a fresh temporary for `target` with an unpredictable name.
  explicit AtomicOutputFile(std::filesystem::path target);
  // Creates the temporary named by `nonce` (one process draws it with random_nonce()
  // and sends it to the others, which open temporary_path(target, nonce)).
  AtomicOutputFile(std::filesystem::path target, uint64_t nonce);
  AtomicOutputFile(const AtomicOutputFile&) = delete;
  AtomicOutputFile& operator=(const AtomicOutputFile&) = delete;
  ~AtomicOutputFile();

  // An unpredictable 64-bit value from std::random_device.
  static uint64_t random_nonce();
  // "<target>.tmp.<nonce as 16 hex digits>".
  static std::filesystem::path temporary_path(const std::filesystem::path& target, uint64_t nonce);

  const std::filesystem::path& path() const { return path_; }
  const std::filesystem::path& target() const { return target_; }
  // rename(2) within one directory is atomic: readers see the old file or the new one.
  void commit();

 private:
  std::filesystem::path target_;
  std::filesystem::path path_;
  bool committed_ = false;
};

}  // namespace longnet
