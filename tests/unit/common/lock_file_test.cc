// The one-daemon-per-root lock.
#include "common/lock_file.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "test_dir.h"

namespace berth {
namespace {

TEST(LockFileTest, SecondHolderIsRefusedAndNamesThePid) {
  testing::TestDir dir;
  auto first = LockFile::acquire(dir / "lock");
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = LockFile::acquire(dir / "lock");
  ASSERT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find(absl::StrCat("pid ", ::getpid())),
            std::string_view::npos)
      << second.status();
}

TEST(LockFileTest, ReleasedWhenDestroyed) {
  testing::TestDir dir;
  { auto first = LockFile::acquire(dir / "lock"); ASSERT_TRUE(first.ok()); }
  EXPECT_TRUE(LockFile::acquire(dir / "lock").ok());
}

TEST(LockFileTest, ReleasedWhenHolderDies) {
  testing::TestDir dir;
  pid_t child = ::fork();
  if (child == 0) {
    auto lock = LockFile::acquire(dir / "lock");
    ::_exit(lock.ok() ? 0 : 1);  // exits holding the lock; the kernel drops it
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_EQ(WEXITSTATUS(status), 0);
  EXPECT_TRUE(LockFile::acquire(dir / "lock").ok());
}

}  // namespace
}  // namespace berth
