// The one failure path of the library.
//
// Library code never exits or aborts: under mpirun that hangs the other ranks.
// It throws longnet::Error with a message that names the problem and, where there
// is one, the fix. Only main() (and the test mains) turn an Error into an exit
// status or an MPI_Abort.
#pragma once

#include <fmt/format.h>

#include <source_location>
#include <stdexcept>
#include <string>

namespace longnet {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Throws Error with a fmt-formatted message.
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace longnet

// LONGNET_CHECK(cond, "fmt", args...): throw longnet::Error when cond is false.
// Used for user-facing validation; the message must say what is wrong and how to fix it.
#define LONGNET_CHECK(cond, ...)               \
  do {                                         \
    if (!(cond)) ::longnet::fail(__VA_ARGS__); \
  } while (false)
