// clone(CLONE_VM | CLONE_VFORK) + exec with an error pipe, as posix_spawn does: exec closes
// the pipe (success) or the child writes its errno. The child shares berthd's memory until it
// execs (no page tables copied, which fork of a daemon with many mappings pays for) and runs on
// a stack of its own; the calling thread waits meanwhile.
#include "common/spawn.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <thread>

#include "common/fd_limit.h"
#include "common/unique_fd.h"

extern char** environ;

namespace berth {
namespace {

// About 0.3 s in all (5, 10, ... 45 ms between attempts).
constexpr int kTextBusyAttempts = 10;

[[noreturn]] void childFailed(int report_fd, int err) {
  (void)!::write(report_fd, &err, sizeof err);
  ::_exit(127);
}

// The child's stack: what childMain and execve need, with room to spare.
constexpr size_t kChildStack = 64 * 1024;

// Runs in the cloned child, in berthd's memory: only async-signal-safe calls, and nothing
// written outside its own stack (the parent has other threads).
[[noreturn]] void childMain(const SpawnOptions& o, int report_fd, char* const* argv,
                            char* const* envp) {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &dfl, nullptr);  // EINVAL is fine
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  if (o.new_process_group && ::setpgid(0, 0) != 0) childFailed(report_fd, errno);

  int from[3] = {o.stdin_fd, o.stdout_fd, o.stderr_fd};
  for (int& fd : from) {
    if (fd >= 0) continue;
    fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (fd < 0) childFailed(report_fd, errno);
  }
  // A source among 0..2 is moved out of the way first, so that no dup2 below overwrites a
  // source still to be used.
  for (int i = 0; i < 3; ++i) {
    if (from[i] < 3 && from[i] != i) {
      int moved = ::fcntl(from[i], F_DUPFD_CLOEXEC, 3);
      if (moved < 0) childFailed(report_fd, errno);
      for (int j = i + 1; j < 3; ++j) {
        if (from[j] == from[i]) from[j] = moved;
      }
      from[i] = moved;
    }
  }
  for (int i = 0; i < 3; ++i) {
    int rc = from[i] == i ? ::fcntl(i, F_SETFD, 0) : ::dup2(from[i], i);
    if (rc < 0) childFailed(report_fd, errno);
  }
  if (o.fd3 >= 0) {
    if (report_fd == 3) {  // out of fd 3's way first
      report_fd = ::fcntl(3, F_DUPFD_CLOEXEC, 4);
      if (report_fd < 0) ::_exit(127);
    }
    int rc = o.fd3 == 3 ? ::fcntl(3, F_SETFD, 0) : ::dup2(o.fd3, 3);
    if (rc < 0) childFailed(report_fd, errno);
  }
  if (o.close_other_fds) {
    // The report pipe is close-on-exec: marked, not closed, so that a failed exec still
    // reports. Kernels before 5.11 lack CLOSE_RANGE_CLOEXEC: then every fd is closed but it.
    const unsigned first = o.fd3 >= 0 ? 4 : 3;
    if (::syscall(SYS_close_range, first, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
      for (int fd = static_cast<int>(first); fd < 4096; ++fd) {
        if (fd != report_fd) ::close(fd);
      }
    }
  }
  restoreFdLimitForChild();
  ::execve(argv[0], argv, envp);
  childFailed(report_fd, errno);
}

struct ChildArgs {
  const SpawnOptions* options;
  int report_fd;
  char* const* argv;
  char* const* envp;
};

int childEntry(void* p) {
  auto* a = static_cast<ChildArgs*>(p);
  childMain(*a->options, a->report_fd, a->argv, a->envp);
}

int spawnOnce(const SpawnOptions& options, char* const* argv, char* const* env, pid_t* pid) {
  if (options.fd3 >= 0 && options.fd3 < 3) return EINVAL;
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return errno;
  UniqueFd report_r(p[0]), report_w(p[1]);
  void* stack = ::mmap(nullptr, kChildStack, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) return errno;
  ChildArgs args{&options, report_w.get(), argv, env};
  // No handler of berthd's may run in the child before it has reset them: every signal is
  // blocked across the clone (the child unblocks them once its dispositions are the defaults).
  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t child = ::clone(childEntry, static_cast<char*>(stack) + kChildStack,
                        CLONE_VM | CLONE_VFORK | SIGCHLD, &args);
  int clone_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ::munmap(stack, kChildStack);  // the child has exec'd or exited: CLONE_VFORK waited for it
  if (child < 0) return clone_errno;
  report_w.reset();

  int child_errno = 0;
  ssize_t n;
  while ((n = ::read(report_r.get(), &child_errno, sizeof child_errno)) < 0 && errno == EINTR) {
  }
  if (n == static_cast<ssize_t>(sizeof child_errno)) {
    while (::waitpid(child, nullptr, 0) < 0 && errno == EINTR) {
    }
    return child_errno != 0 ? child_errno : ECHILD;
  }
  *pid = child;
  return 0;
}

}  // namespace

int spawnProcess(const SpawnOptions& options, pid_t* pid) {
  if (options.argv.empty()) return EINVAL;
  // Everything the child needs is allocated here: it must not allocate.
  std::vector<char*> argv;
  for (const auto& a : options.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : options.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  char* const* env = options.inherit_env ? environ : envp.data();

  // ETXTBSY: the program is open for writing somewhere. Most often that is a child forked by
  // another thread (of berthd, or of whoever just wrote the program and replaced it by rename)
  // that has not reached its own exec yet and still holds the writer's descriptor; that ends
  // within milliseconds, so a few short retries get past it.
  int err = 0;
  for (int attempt = 0; attempt < kTextBusyAttempts; ++attempt) {
    if (attempt > 0) ::usleep(static_cast<useconds_t>(attempt) * 5000);
    err = spawnOnce(options, argv.data(), env, pid);
    if (err != ETXTBSY) return err;
  }
  return err;
}

RunResult runBounded(const std::vector<std::string>& argv, int timeout_ms) {
  RunResult r;
  UniqueFd out(::memfd_create("berth-run", MFD_CLOEXEC));
  if (!out.valid()) {
    r.start_errno = errno;
    return r;
  }
  pid_t pid = 0;
  r.start_errno = spawnProcess(
      SpawnOptions{.argv = argv, .stdout_fd = out.get(), .stderr_fd = out.get()}, &pid);
  if (r.start_errno != 0) return r;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    pid_t w = ::waitpid(pid, &r.status, WNOHANG);
    if (w == pid || (w < 0 && errno != EINTR)) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, &r.status, 0) < 0 && errno == EINTR) {
      }
      r.timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  char buf[4096];
  for (off_t at = 0;;) {
    ssize_t n = ::pread(out.get(), buf, sizeof buf, at);
    if (n <= 0) break;
    r.output.append(buf, static_cast<size_t>(n));
    at += n;
  }
  return r;
}

}  // namespace berth
