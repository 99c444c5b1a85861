// Starting programs: exit status, errors of exec, and an exec that meets ETXTBSY for a moment.
#include "common/spawn.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string>
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

// The child starts with stdio and fd 3 as asked, default signal dispositions and an empty
// signal mask, whatever the calling thread blocks; the caller's mask is left as it was.
TEST(SpawnTest, ChildGetsItsDescriptorsAndACleanSignalState) {
  int out[2], extra[2];
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(extra, O_CLOEXEC), 0);
  sigset_t block, before, after;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &block, &before), 0);
  struct sigaction ignore {
  }, old_pipe{};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGPIPE, &ignore, &old_pipe), 0);  // as berthd does
  pid_t pid = -1;
  ASSERT_EQ(spawnProcess({.argv = {"/bin/sh", "-c",
                                   "grep -E '^Sig(Blk|Ign)' /proc/self/status; echo three >&3"},
                          .stdout_fd = out[1],
                          .fd3 = extra[1]},
                         &pid),
            0);
  ::sigaction(SIGPIPE, &old_pipe, nullptr);
  ::close(out[1]);
  ::close(extra[1]);
  EXPECT_EQ(waitExitCode(pid), 0);
  ASSERT_EQ(::pthread_sigmask(SIG_SETMASK, &before, &after), 0);
  EXPECT_EQ(sigismember(&after, SIGUSR1), 1) << "the caller's mask changed";
  auto drain = [](int fd) {
    std::string s;
    char buf[256];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) s.append(buf, static_cast<size_t>(n));
    ::close(fd);
    return s;
  };
  EXPECT_EQ(drain(out[0]), "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
  EXPECT_EQ(drain(extra[0]), "three\n");
  EXPECT_EQ(spawnProcess({.argv = {"/bin/true"}, .fd3 = 1}, &pid), EINVAL);
}

// close_other_fds: a descriptor someone opened without close-on-exec reaches the child only
// without it; fd 3 stays.
TEST(SpawnTest, CloseOtherFdsKeepsOnlyStdioAndFd3) {
  int leaky = ::dup2(STDERR_FILENO, 50);  // not close-on-exec
  ASSERT_EQ(leaky, 50);
  int extra[2];
  ASSERT_EQ(::pipe2(extra, O_CLOEXEC), 0);
  auto run = [&](bool close_others) {
    int out[2];
    EXPECT_EQ(::pipe2(out, O_CLOEXEC), 0);
    pid_t pid = -1;
    EXPECT_EQ(
        spawnProcess({.argv = {"/bin/sh", "-c",
                               "for f in 3 50; do [ -e /proc/self/fd/$f ] && echo -n \"$f \"; "
                               "done; true"},
                      .stdout_fd = out[1],
                      .fd3 = extra[1],
                      .close_other_fds = close_others},
                     &pid),
        0);
    ::close(out[1]);
    EXPECT_EQ(waitExitCode(pid), 0);
    std::string s;
    char buf[64];
    ssize_t n;
    while ((n = ::read(out[0], buf, sizeof buf)) > 0) s.append(buf, static_cast<size_t>(n));
    ::close(out[0]);
    return s;
  };
  EXPECT_EQ(run(false), "3 50 ");
  EXPECT_EQ(run(true), "3 ");
  ::close(leaky);
  ::close(extra[0]);
  ::close(extra[1]);
}

}  // namespace
}  // namespace berth
