// The `--log-json` file: one JSON record per line, every write checked.
//
// A log that stops mid-record on a full disk while the run reports success is worse
// than no log. The first failed write or flush prints one loud warning (the file, the
// error) to stderr and stops logging; the training goes on (its checkpoints are its
// real output) and the caller ends with an error once it is done (failure()).
#pragma once

#include <cstdio>
#include <optional>
#include <string>

namespace longnet {

class JsonLog {
 public:
  JsonLog() = default;  // closed: writes nothing
  // Opens `path` for appending; throws longnet::Error naming it when it cannot.
  explicit JsonLog(const std::string& path);
  ~JsonLog();
  JsonLog(const JsonLog&) = delete;
  JsonLog& operator=(const JsonLog&) = delete;

  bool is_open() const { return file_ != nullptr; }
  // Writes `record` and a newline, flushed.
  void write(const std::string& record);
  // Flushes and closes, checking both (the destructor closes without a check).
  void close();
  // What went wrong, if any write, flush or close failed.
  const std::optional<std::string>& failure() const { return failure_; }

 private:
  void failed(const char* what, int error);

  std::string path_;
  std::FILE* file_ = nullptr;
  std::optional<std::string> failure_;
};

}  // namespace longnet
