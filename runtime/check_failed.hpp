// A computed result failed its check (a benchmark's sampled rows against float64, a
// collective's elements): main gives exit status 1 rather than 2, since the input was
// fine. When every rank of a job throws it alike (the check was agreed by a
// collective), `agreed` lets main print it once and end normally instead of aborting.
#pragma once

#include "runtime/error.hpp"

#include <string>

namespace longnet {

class CheckFailed : public Error {
 public:
  explicit CheckFailed(const std::string& message, bool agreed = false)
      : Error(message), agreed_(agreed) {}
  bool agreed() const { return agreed_; }

 private:
  bool agreed_;
};

}  // namespace longnet
