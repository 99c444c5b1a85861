// RuntimeRunner: posix_spawn of the OCI runtime with stdio wired, completion via the reaper.
#include "shim/runtime_runner.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "shim/shim_log.h"

extern char** environ;

namespace berth::shim {
namespace {

constexpr size_t kMaxErrorText = 4096;

std::string readAllFrom(int fd, size_t cap) {
  std::string out;
  char buf[4096];
  off_t off = 0;
  while (out.size() < cap) {
    ssize_t n = ::pread(fd, buf, sizeof buf, off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    off += n;
  }
  if (out.size() > cap) out.resize(cap);
  return out;
}

std::string trim(std::string s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

}  // namespace

bool RuntimeResult::success() const {
  return !timed_out && WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0;
}

std::string RuntimeResult::describe() const {
  if (timed_out) return "timed out and was killed";
  if (WIFEXITED(wait_status)) return "exit status " + std::to_string(WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) return "killed by signal " + std::to_string(WTERMSIG(wait_status));
  return "wait status " + std::to_string(wait_status);
}

std::string runtimeErrorText(const std::string& log_text) {
  std::string msgs;
  std::string raw;
  size_t pos = 0;
  while (pos < log_text.size()) {
    size_t nl = log_text.find('\n', pos);
    if (nl == std::string::npos) nl = log_text.size();
    std::string line = trim(log_text.substr(pos, nl - pos));
    pos = nl + 1;
    if (line.empty()) continue;
    Json j;
    std::string level, msg;
    if (line.front() == '{' && parseObject(line, &j).ok() && getString(j, "msg", &msg)) {
      getString(j, "level", &level);
      if (level == "error" || level == "fatal" || level == "panic") {
        if (!msgs.empty()) msgs += "; ";
        msgs += msg;
      }
      continue;
    }
    if (!raw.empty()) raw += "; ";
    raw += line;
  }
  std::string out = msgs.empty() ? raw : msgs;
  if (out.size() > kMaxErrorText) out.resize(kMaxErrorText);
  return out;
}

Outcome RuntimeRunner::start(const std::vector<std::string>& args, const RuntimeIo& io,
                             int64_t timeout_ms, Done done) {
  std::string name = args.empty() ? "?" : args.front();
  Command cmd;
  cmd.name = name;
  cmd.log_path = io.log_path;
  cmd.done = std::move(done);
  if (timeout_ms > 0) cmd.deadline_ms = monotonicMs() + timeout_ms;
  if (io.capture_stdout) {
    cmd.stdout_capture.reset(::memfd_create("runtime-stdout", MFD_CLOEXEC));
    if (!cmd.stdout_capture.valid()) return Outcome::fromErrno(errno, "memfd_create");
  }
  if (io.stderr_fd < 0) {
    cmd.stderr_capture.reset(::memfd_create("runtime-stderr", MFD_CLOEXEC));
    if (!cmd.stderr_capture.valid()) return Outcome::fromErrno(errno, "memfd_create");
  }

  std::vector<std::string> argv_s = {runtime_path_, "--root", runtime_root_, "--log-format",
                                     "json"};
  if (!io.log_path.empty()) {
    argv_s.push_back("--log");
    argv_s.push_back(io.log_path);
  }
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  argv.reserve(argv_s.size() + 1);
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&attr);
  if (io.stdin_fd >= 0) {
    posix_spawn_file_actions_adddup2(&fa, io.stdin_fd, 0);
  } else {
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  }
  int out_fd = io.capture_stdout ? cmd.stdout_capture.get() : io.stdout_fd;
  if (out_fd >= 0) {
    posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
  } else {
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  }
  int err_fd = io.stderr_fd >= 0 ? io.stderr_fd : cmd.stderr_capture.get();
  posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
  // The shim blocks SIGCHLD/SIGTERM/SIGINT for its signalfd; children must not inherit that.
  sigset_t empty, defaults;
  sigemptyset(&empty);
  sigemptyset(&defaults);
  for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGPIPE, SIGHUP}) sigaddset(&defaults, sig);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, argv[0], &fa, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return Outcome::fromErrno(rc, "spawn " + runtime_path_ + " " + name);
  SHIM_LOG_DEBUG("started %s %s (pid %d)", runtime_path_.c_str(), name.c_str(), pid);
  cmds_.emplace(pid, std::move(cmd));
  return Outcome::success();
}

bool RuntimeRunner::onExit(pid_t pid, int wait_status) {
  auto it = cmds_.find(pid);
  if (it == cmds_.end()) return false;
  Command cmd = std::move(it->second);
  cmds_.erase(it);

  RuntimeResult res;
  res.wait_status = wait_status;
  res.timed_out = cmd.timed_out;
  if (cmd.stdout_capture.valid()) res.stdout_text = readAllFrom(cmd.stdout_capture.get(), 1 << 20);
  std::string err_log;
  if (cmd.stderr_capture.valid()) err_log = readAllFrom(cmd.stderr_capture.get(), 1 << 16);
  if (!cmd.log_path.empty()) {
    UniqueFd fd(::open(cmd.log_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.valid()) err_log += readAllFrom(fd.get(), 1 << 16);
    ::unlink(cmd.log_path.c_str());
  }
  res.error_text = runtimeErrorText(err_log);
  SHIM_LOG_DEBUG("%s %s (pid %d) finished: %s", runtime_path_.c_str(), cmd.name.c_str(), pid,
                 res.describe().c_str());
  if (cmd.done) cmd.done(res);
  return true;
}

int RuntimeRunner::pollTimeoutMs() {
  int64_t now = monotonicMs();
  int64_t next = -1;
  for (auto& [pid, cmd] : cmds_) {
    if (cmd.deadline_ms < 0) continue;
    if (cmd.deadline_ms <= now) {
      SHIM_LOG_WARN("%s %s (pid %d) is overdue; killing it", runtime_path_.c_str(),
                    cmd.name.c_str(), pid);
      ::kill(pid, SIGKILL);
      cmd.timed_out = true;
      cmd.deadline_ms = -1;
      continue;
    }
    int64_t left = cmd.deadline_ms - now;
    if (next < 0 || left < next) next = left;
  }
  return static_cast<int>(next);
}

}  // namespace berth::shim
