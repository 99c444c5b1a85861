// Starting programs: exit status, errors of exec, and an exec that meets ETXTBSY for a moment.
#include "common/spawn.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <thread>

#include "common/fs.h"
#include "test_dir.h"

namespace berth {
namespace {

int waitExitCode(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(SpawnTest, StartsTheProgramWithArgumentsAndReportsExecErrors) {
  testing::TestDir dir;
  pid_t pid = -1;
  ASSERT_EQ(spawnProcess({.argv = {"/bin/sh", "-c", "exit 7"}}, &pid), 0);
  EXPECT_EQ(waitExitCode(pid), 7);
  EXPECT_EQ(spawnProcess({.argv = {dir / "missing"}}, &pid), ENOENT);
  ASSERT_TRUE(writeFileAtomic(dir / "noexec", "#!/bin/sh\n", 0644).ok());
  EXPECT_EQ(spawnProcess({.argv = {dir / "noexec"}}, &pid), EACCES);
}

// A program still open for writing cannot be executed (ETXTBSY). Here the writer closes it
// 50 ms later, as a child forked by another thread does once it execs: the start goes through.
TEST(SpawnTest, ExecThatIsBusyForAMomentIsTriedAgain) {
  testing::TestDir dir;
  const std::string prog = dir / "prog";
  int w = ::open(prog.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
  ASSERT_GE(w, 0);
  const std::string text = "#!/bin/sh\nexit 3\n";
  ASSERT_EQ(::write(w, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  std::thread closer([w] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ::close(w);
  });
  pid_t pid = -1;
  int err = spawnProcess({.argv = {prog}}, &pid);
  closer.join();
  ASSERT_EQ(err, 0) << "errno " << err;
  EXPECT_EQ(waitExitCode(pid), 3);
}

TEST(SpawnTest, ExecThatStaysBusyFailsWithEtxtbsy) {
  testing::TestDir dir;
  const std::string prog = dir / "prog";
  int w = ::open(prog.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
  ASSERT_GE(w, 0);
  pid_t pid = -1;
  EXPECT_EQ(spawnProcess({.argv = {prog}}, &pid), ETXTBSY);
  ::close(w);
}

}  // namespace
}  // namespace berth
