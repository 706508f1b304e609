// runtime/library_check and the check macros of each library: one message shape for all
// (context, statement, file:line, the library's error, rank and host), and the rank taken
// from the MPI session, else the launcher, else "?". The library calls here only turn
// codes into text, so they need no GPU. (LONGNET_MPI_CHECK is tested under mpirun in
// tests/comm/test_communicator_split.cpp: Open MPI refuses MPI_Error_string before
// MPI_Init.)
#include "runtime/library_check.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <string>

#include "longnet/config.hpp"
#include "runtime/error.hpp"
#include "tests/support/error_of.hpp"
#ifdef LONGNET_HAVE_CUDA
#include "runtime/cublas_check.hpp"
#include "runtime/cuda_check.hpp"
#endif
#ifdef LONGNET_HAVE_NCCL
#include "runtime/nccl_check.hpp"
#endif

namespace longnet {
namespace {

using test::error_of;

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string host() {
  std::array<char, 256> name{};
  gethostname(name.data(), name.size() - 1);
  return name.data();
}

// Clears every launcher variable process_identity reads, restoring them afterwards.
class LibraryCheck : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : kLauncherVariables) {
      if (const char* value = std::getenv(name)) saved_.emplace_back(name, value);
      unsetenv(name);
    }
    register_process_rank(-1, -1);
  }
  void TearDown() override {
    for (const char* name : kLauncherVariables) unsetenv(name);
    for (const auto& [name, value] : saved_) setenv(name.c_str(), value.c_str(), 1);
    register_process_rank(-1, -1);
  }
  static constexpr std::array kLauncherVariables{
      "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMIX_SIZE",
      "SLURM_PROCID",         "SLURM_NTASKS",         "PMI_RANK",  "PMI_SIZE"};
  std::vector<std::pair<std::string, std::string>> saved_;
};

TEST_F(LibraryCheck, IdentityComesFromTheSessionElseTheLauncherElseIsUnknown) {
  EXPECT_EQ(process_identity(), "rank ?/? " + host());
  setenv("SLURM_PROCID", "5", 1);
  setenv("SLURM_NTASKS", "16", 1);
  EXPECT_EQ(process_identity(), "rank 5/16 " + host());
  setenv("OMPI_COMM_WORLD_RANK", "3", 1);  // Open MPI's own variables come first
  EXPECT_EQ(process_identity(), "rank 3/? " + host());
  register_process_rank(1, 4);  // the session knows best
  EXPECT_EQ(process_identity(), "rank 1/4 " + host());
  register_process_rank(-1, -1);
  EXPECT_EQ(process_identity(), "rank 3/? " + host());
}

TEST_F(LibraryCheck, FailureNamesContextStatementPlaceErrorAndProcess) {
  register_process_rank(2, 8);
  const std::string with = error_of([] {
    detail::throw_library_failure("LIB_E_BAD: bad thing", "lib_call(x, 3)", "a/b.cpp", 42,
                                  "reading 'q'");
  });
  EXPECT_EQ(with,
            "reading 'q': lib_call(x, 3) failed at a/b.cpp:42: LIB_E_BAD: bad thing "
            "[rank 2/8 " +
                host() + "]");
  const std::string without = error_of(
      [] { detail::throw_library_failure("LIB_E_BAD: bad thing", "lib_call()", "c.cpp", 7); });
  EXPECT_EQ(without,
            "lib_call() failed at c.cpp:7: LIB_E_BAD: bad thing [rank 2/8 " + host() + "]");
}

#ifdef LONGNET_HAVE_CUDA
TEST_F(LibraryCheck, CudaAndCublasFailuresCarryTheLibrarysNameForTheCode) {
  const cudaError_t invalid = cudaErrorInvalidValue;
  const std::string cuda = error_of([&] { LONGNET_CUDA_CHECK(invalid, "copying dq"); });
  EXPECT_THAT(
      cuda,
      AllOf(StartsWith("copying dq: invalid failed at "), HasSubstr("test_library_check.cpp:"),
            HasSubstr("cudaErrorInvalidValue: invalid argument"), HasSubstr("[rank ?/? ")));
  const cublasStatus_t status = CUBLAS_STATUS_INVALID_VALUE;
  EXPECT_THAT(error_of([&] { LONGNET_CUBLAS_CHECK(status); }),
              AllOf(StartsWith("status failed at "), HasSubstr("CUBLAS_STATUS_INVALID_VALUE")));
  EXPECT_NO_THROW(LONGNET_CUDA_CHECK(cudaSuccess));
}
#endif

#ifdef LONGNET_HAVE_NCCL
TEST_F(LibraryCheck, NcclFailureCarriesNcclsText) {
  const ncclResult_t code = ncclInvalidArgument;
  EXPECT_THAT(error_of([&] { LONGNET_NCCL_CHECK(code, "all-gather 'kv'"); }),
              AllOf(StartsWith("all-gather 'kv': code failed at "), HasSubstr("NCCL: "),
                    HasSubstr("invalid argument")));
}
#endif

}  // namespace
}  // namespace longnet
