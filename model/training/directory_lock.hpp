// One training run per checkpoint directory: an advisory lock held for the whole run.
//
// Two runs writing checkpoints into one directory interleave their files and prune each
// other's. The run takes flock(LOCK_EX) on DIR/.lock and writes "host pid" into it; a
// second run finds the lock taken and is refused, naming the holder from the file. The
// kernel releases a flock when its holder exits, however it exits, so a lock file left
// by a killed run never blocks the next one (the stale host/pid text is overwritten).
// flock works on local file systems and on NFS (as an fcntl lock, on Linux >= 2.6.12).
#pragma once

#include <filesystem>
#include <string>

namespace longnet {

class DirectoryLock {
 public:
  // Creates `dir` if needed and takes its lock, or throws longnet::Error: the directory
  // cannot be created or written, or another process holds the lock (named).
  explicit DirectoryLock(const std::filesystem::path& dir);
  ~DirectoryLock();
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;

  const std::filesystem::path& file() const { return file_; }

 private:
  std::filesystem::path file_;
  int fd_ = -1;
};

// "ckpt/.lock": the lock file of a directory.
std::filesystem::path lock_file_of(const std::filesystem::path& dir);

}  // namespace longnet
