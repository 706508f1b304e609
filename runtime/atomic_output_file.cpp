#include "runtime/atomic_output_file.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "runtime/error.hpp"

namespace longnet {

uint64_t AtomicOutputFile::random_nonce() {
  std::random_device device;
  return (static_cast<uint64_t>(device()) << 32) ^ static_cast<uint64_t>(device());
}

std::filesystem::path AtomicOutputFile::temporary_path(const std::filesystem::path& target,
                                                       uint64_t nonce) {
  return fmt::format("{}.tmp.{:016x}", target.string(), nonce);
}

AtomicOutputFile::AtomicOutputFile(std::filesystem::path target)
    : AtomicOutputFile(std::move(target), random_nonce()) {}

AtomicOutputFile::AtomicOutputFile(std::filesystem::path target, uint64_t nonce)
    : target_(std::move(target)), path_(temporary_path(target_, nonce)) {
  const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int error = errno;
    fail("cannot create the temporary '{}' for '{}': {}{}", path_.string(), target_.string(),
         std::strerror(error),
         error == EEXIST ? " (something is already there; it is left untouched)" : "");
  }
  ::close(fd);
}

AtomicOutputFile::~AtomicOutputFile() {
  if (committed_) return;
  std::error_code ignored;
  std::filesystem::remove(path_, ignored);
}

void AtomicOutputFile::commit() {
  std::error_code ec;
  std::filesystem::rename(path_, target_, ec);
  LONGNET_CHECK(!ec, "cannot move '{}' into place as '{}': {}", path_.string(), target_.string(),
                ec.message());
  committed_ = true;
}

}  // namespace longnet
