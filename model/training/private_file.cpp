#include "model/training/private_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "runtime/error.hpp"

namespace longnet {

namespace fs = std::filesystem;

fs::path create_private_temporary(const fs::path& dir, std::string_view prefix) {
  std::string name = (dir / fmt::format("{}XXXXXX", prefix)).string();
  const int fd = ::mkostemp(name.data(), O_CLOEXEC);
  LONGNET_CHECK(fd >= 0, "cannot create a temporary file in '{}': {}", dir.string(),
                std::strerror(errno));
  // mkstemp creates 0600; the final file should read like any other output.
  const mode_t mask = ::umask(0);
  ::umask(mask);
  const bool chmod_ok = ::fchmod(fd, 0644 & ~mask) == 0;
  const int chmod_errno = errno;
  ::close(fd);
  if (!chmod_ok) {
    ::unlink(name.c_str());
    fail("cannot set the permissions of '{}': {}", name, std::strerror(chmod_errno));
  }
  return name;
}

bool is_regular_file_not_link(const fs::path& path) {
  std::error_code ec;
  return fs::symlink_status(path, ec).type() == fs::file_type::regular && !ec;
}

}  // namespace longnet
