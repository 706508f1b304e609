#include "model/training/json_log.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

#include "runtime/error.hpp"

namespace longnet {

JsonLog::JsonLog(const std::string& path) : path_(path) {
  LONGNET_CHECK(!path.empty(), "--log-json needs a file name");
  file_ = std::fopen(path.c_str(), "a");
  LONGNET_CHECK(file_ != nullptr,
                "cannot write the JSON log '{}': {}; give --log-json a "
                "writable file",
                path, std::strerror(errno));
}

JsonLog::~JsonLog() {
  if (file_ != nullptr) std::fclose(file_);
}

void JsonLog::failed(const char* what, int error) {
  failure_ = fmt::format("cannot {} the JSON log '{}': {}", what, path_, std::strerror(error));
  fmt::print(stderr,
             "WARNING: {}; logging to it stops here (the training goes on, and the run will "
             "end with an error)\n",
             *failure_);
  std::fclose(file_);
  file_ = nullptr;
}

void JsonLog::write(const std::string& record) {
  if (file_ == nullptr) return;
  errno = 0;
  if (std::fputs(record.c_str(), file_) < 0 || std::fputc('\n', file_) == EOF) {
    return failed("write", errno);
  }
  if (std::fflush(file_) != 0) failed("write", errno);
}

void JsonLog::close() {
  if (file_ == nullptr) return;
  std::FILE* file = file_;
  file_ = nullptr;
  if (std::fclose(file) != 0 && !failure_) {
    failure_ = fmt::format("cannot close the JSON log '{}': {}", path_, std::strerror(errno));
  }
}

}  // namespace longnet
