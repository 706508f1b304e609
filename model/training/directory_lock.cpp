#include "model/training/directory_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "runtime/error.hpp"

namespace longnet {

namespace fs = std::filesystem;

namespace {

std::string host_name() {
  std::array<char, 256> name{};
  if (::gethostname(name.data(), name.size() - 1) != 0) return "unknown-host";
  return name.data();
}

// The holder's "host pid" as written into the lock file, or a note when it is unreadable.
std::string holder_of(int fd) {
  std::array<char, 512> text{};
  const ssize_t n = ::pread(fd, text.data(), text.size() - 1, 0);
  std::string holder = n > 0 ? std::string(text.data(), static_cast<std::size_t>(n)) : "";
  while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
  if (holder.empty()) return "an unknown process (the lock file is empty)";
  const auto space = holder.find(' ');
  if (space == std::string::npos) return fmt::format("'{}'", holder);
  return fmt::format("host {}, pid {}", holder.substr(0, space), holder.substr(space + 1));
}

}  // namespace

fs::path lock_file_of(const fs::path& dir) { return dir / ".lock"; }

DirectoryLock::DirectoryLock(const fs::path& dir) : file_(lock_file_of(dir)) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  LONGNET_CHECK(!ec && fs::is_directory(dir), "cannot create checkpoint directory '{}': {}",
                dir.string(), ec ? ec.message() : std::string("a file of that name exists"));
  // A lock file may already exist in a directory that is no longer writable.
  LONGNET_CHECK(::access(dir.c_str(), W_OK | X_OK) == 0,
                "cannot write in checkpoint directory '{}': {}; make it writable or set "
                "checkpoint.dir to another directory",
                dir.string(), std::strerror(errno));
  // O_NOFOLLOW: a link planted as the lock file is refused, never written through.
  fd_ = ::open(file_.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
  LONGNET_CHECK(fd_ >= 0,
                "cannot write in checkpoint directory '{}' (creating its lock file '{}': {}); "
                "make it writable or set checkpoint.dir to another directory",
                dir.string(), file_.string(), std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    const std::string holder = error == EWOULDBLOCK ? holder_of(fd_) : "";
    ::close(fd_);
    fd_ = -1;
    LONGNET_CHECK(error != EWOULDBLOCK,
                  "checkpoint directory '{}' is in use by another training run ({}, per its "
                  "lock file '{}'): wait for that run to end, or set checkpoint.dir to another "
                  "directory",
                  dir.string(), holder, file_.string());
    fail("cannot lock checkpoint directory '{}' ({}): {}", dir.string(), file_.string(),
         std::strerror(error));
  }
  const std::string me = fmt::format("{} {}\n", host_name(), ::getpid());
  const bool written = ::ftruncate(fd_, 0) == 0 &&
                       ::pwrite(fd_, me.data(), me.size(), 0) == static_cast<ssize_t>(me.size());
  if (!written) {
    const int error = errno;
    ::close(fd_);
    fd_ = -1;
    fail("cannot write the lock file '{}': {}; make the checkpoint directory writable",
         file_.string(), std::strerror(error));
  }
}

DirectoryLock::~DirectoryLock() {
  // The file stays: deleting it would race with a run that has just opened it.
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace longnet
