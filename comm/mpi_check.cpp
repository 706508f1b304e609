// The MPI specialisation of the library failure path (comm/mpi_check.hpp).
#include "comm/mpi_check.hpp"

#include <fmt/format.h>

#include <array>

namespace longnet::detail {

std::string mpi_error_string(int code) {
  std::array<char, MPI_MAX_ERROR_STRING> text{};
  int length = 0;
  if (MPI_Error_string(code, text.data(), &length) != MPI_SUCCESS)
    return fmt::format("MPI error code {}", code);
  return std::string(text.data(), static_cast<std::size_t>(length));
}

void throw_mpi_failure(int code, const char* statement, const char* file, int line,
                       std::string_view context) {
  throw_library_failure(mpi_error_string(code), statement, file, line, context);
}

}  // namespace longnet::detail
