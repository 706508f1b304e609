// Output files that appear whole or not at all, through temporaries nobody can plant a
// link at: unpredictable names, created exclusively, never opened through a symlink.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "runtime/atomic_output_file.hpp"
#include "runtime/error.hpp"

namespace longnet {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class AtomicOutputFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           fmt::format("longnet_test_atomic_output_{}_{}", ::getpid(), info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(AtomicOutputFileTest, CommitRenamesTheTemporaryOverTheTarget) {
  const fs::path target = dir_ / "out.h5";
  std::ofstream(target) << "old";
  {
    AtomicOutputFile file(target);
    EXPECT_EQ(file.path().parent_path(), dir_);
    EXPECT_TRUE(fs::exists(file.path()));
    std::ofstream(file.path()) << "new";
    EXPECT_EQ(read_text(target), "old");
    file.commit();
  }
  EXPECT_EQ(read_text(target), "new");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

TEST_F(AtomicOutputFileTest, WithoutCommitNothingIsLeftAndTheTargetIsUntouched) {
  const fs::path target = dir_ / "out.h5";
  std::ofstream(target) << "old";
  {
    AtomicOutputFile file(target);
    std::ofstream(file.path()) << "partial";
  }
  EXPECT_EQ(read_text(target), "old");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

TEST_F(AtomicOutputFileTest, NamesAreUnpredictable) {
  std::set<fs::path> names;
  for (int i = 0; i < 100; ++i) names.insert(AtomicOutputFile(dir_ / "out.h5").path());
  EXPECT_EQ(names.size(), 100u);  // not derived from the pid, which all 100 share
  for (const fs::path& name : names) {
    EXPECT_THAT(name.filename().string(), ::testing::StartsWith("out.h5.tmp."));
    EXPECT_EQ(name.filename().string().size(), std::string("out.h5.tmp.").size() + 16);
  }
}

TEST_F(AtomicOutputFileTest, APlantedSymlinkIsNotFollowed) {
  const fs::path victim = dir_ / "victim.txt";
  std::ofstream(victim) << "precious";
  const fs::path target = dir_ / "out.h5";
  const uint64_t nonce = 0x1234;
  fs::create_symlink(victim, AtomicOutputFile::temporary_path(target, nonce));
  EXPECT_THAT([&] { AtomicOutputFile file(target, nonce); },
              ::testing::ThrowsMessage<Error>(HasSubstr("already there")));
  EXPECT_EQ(read_text(victim), "precious");
  EXPECT_TRUE(fs::is_symlink(AtomicOutputFile::temporary_path(target, nonce)))
      << "someone else's file must be left alone, not removed";
}

TEST_F(AtomicOutputFileTest, AMissingDirectoryIsAnErrorNamingTheTarget) {
  EXPECT_THAT([&] { AtomicOutputFile file(dir_ / "missing" / "out.h5"); },
              ::testing::ThrowsMessage<Error>(HasSubstr("out.h5")));
}

}  // namespace
}  // namespace longnet
