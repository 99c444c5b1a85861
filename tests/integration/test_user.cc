// TestUser: useradd/userdel around a test, and a forked child that runs as the user.
#include "test_user.h"

#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "berthd_fixture.h"
#include "gtest/gtest.h"

namespace berth::testing {

TestUser::TestUser() {
  static std::atomic<int> counter{0};
  name_ = "berth-it-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  RunResult r = runProgram({"useradd", "--system", "--no-create-home", "--user-group", "--shell",
                            "/usr/sbin/nologin", name_});
  if (r.exit_code != 0) {
    ADD_FAILURE() << "useradd " << name_ << ": " << r.err;
    return;
  }
  struct passwd* pw = ::getpwnam(name_.c_str());
  if (pw == nullptr) {
    ADD_FAILURE() << "user " << name_ << " not found after useradd";
    return;
  }
  uid_ = pw->pw_uid;
  gid_ = pw->pw_gid;
}

TestUser::~TestUser() {
  if (name_.empty()) return;
  RunResult r = runProgram({"userdel", name_});
  if (r.exit_code != 0 && uid_ != 0) ADD_FAILURE() << "userdel " << name_ << ": " << r.err;
}

int TestUser::runAs(const std::function<int()>& fn, int timeout_s) const {
  if (!ok()) return -1;
  pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setresgid(gid_, gid_, gid_) != 0 ||
        ::setresuid(uid_, uid_, uid_) != 0) {
      ::_exit(254);
    }
    ::_exit(fn() & 0xff);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  int status = 0;
  for (;;) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 || std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace berth::testing
