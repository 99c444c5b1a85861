// The berthd integration fixture.
#include "berthd_fixture.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace berth::testing {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Waits up to `timeout_s` for `pid`; returns the raw wait status, or -1 on timeout.
int waitFor(pid_t pid, int timeout_s) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0) return -1;
    if (std::chrono::steady_clock::now() > deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// True when a unix socket at `path` accepts a connection (a stale socket file does not).
bool acceptsConnections(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

int decode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return -1000;
}

}  // namespace

std::string berthdPath() { return BERTHD_PATH; }
std::string berthctlPath() { return BERTHCTL_PATH; }

RunResult runProgram(const std::vector<std::string>& argv, int timeout_s) {
  char out_tmpl[] = "/tmp/berth-run-XXXXXX";
  int dirfd = ::mkdtemp(out_tmpl) != nullptr ? 0 : -1;
  RunResult result;
  if (dirfd < 0) return result;
  std::string out_path = std::string(out_tmpl) + "/out";
  std::string err_path = std::string(out_tmpl) + "/err";
  pid_t pid = ::fork();
  if (pid == 0) {
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(out, 1);
    ::dup2(err, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  int status = waitFor(pid, timeout_s);
  if (status == -1) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    result.exit_code = -1;
  } else {
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  result.out = slurp(out_path);
  result.err = slurp(err_path);
  std::filesystem::remove_all(out_tmpl);
  return result;
}

Berthd::Berthd(std::string extra_toml) {
  char tmpl[] = "/tmp/berth-it-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) std::abort();
  dir_ = tmpl;
  std::ofstream cfg(configPath());
  // Own cgroup parent per daemon: removing a shared one at the end would race with other
  // tests' pods being created under it.
  cgroup_parent_ = "/berth-it-" + dir_.substr(dir_.rfind('-') + 1);
  cfg << "root = \"" << root() << "\"\n"
      << "state = \"" << state() << "\"\n"
      << "cgroup_parent = \"" << cgroup_parent_ << "\"\n"
      << extra_toml << "\n"
      << "[grpc]\naddress = \"" << socket() << "\"\nshutdown_timeout_seconds = 5\n"
      << "[log]\nlevel = \"debug\"\n";
}

Berthd::~Berthd() {
  if (pid_ > 0) removeAllPods();
  if (pid_ > 0) stop(SIGTERM);
  reapLeftovers();
  channel_.reset();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

bool Berthd::start() {
  pid_ = ::fork();
  if (pid_ == 0) {
    int log = ::open((dir_ + "/berthd.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    ::dup2(log, 1);
    ::dup2(log, 2);
    std::string bin = berthdPath();
    std::string cfg = configPath();
    char* args[] = {bin.data(), const_cast<char*>("--config"), cfg.data(), nullptr};
    ::execv(args[0], args);
    ::_exit(127);
  }
  // Connect only once the socket exists: a channel that failed its first connection waits out
  // gRPC's reconnect back-off (seconds) before it tries again.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!acceptsConnections(socket())) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;  // exited during start-up; the reason is in log()
      return false;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      stop(SIGKILL);
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  channel_ = grpc::CreateChannel("unix:" + socket(), grpc::InsecureChannelCredentials());
  runtime_ = runtime::v1::RuntimeService::NewStub(channel_);
  image_ = runtime::v1::ImageService::NewStub(channel_);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    runtime::v1::VersionRequest req;
    runtime::v1::VersionResponse resp;
    auto ctx = context(1);
    if (runtime_->Version(ctx.get(), req, &resp).ok()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

int Berthd::stop(int sig) {
  if (pid_ <= 0) return -1000;
  ::kill(pid_, sig);
  int status = waitFor(pid_, 30);
  if (status == -1) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
  }
  pid_ = -1;
  return decode(status);
}

void Berthd::removeAllPods() {
  runtime::v1::ListPodSandboxResponse pods;
  auto ctx = context();
  if (!runtime_->ListPodSandbox(ctx.get(), {}, &pods).ok()) return;
  for (const auto& p : pods.items()) {
    runtime::v1::RemovePodSandboxRequest req;
    req.set_pod_sandbox_id(p.id());
    runtime::v1::RemovePodSandboxResponse resp;
    auto rctx = context(60);
    grpc::Status st = runtime_->RemovePodSandbox(rctx.get(), req, &resp);
    if (!st.ok()) ADD_FAILURE() << "clean-up: remove pod " << p.id() << ": " << st.error_message();
  }
}

void Berthd::reapLeftovers() {
  // Shims (and what they run) of this daemon's pods must not outlive the test: a test that
  // leaves any fails here, after they are ended.
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    // POSIX reads: a process that exits meanwhile makes read() fail with ESRCH, which an
    // ifstream turns into an exception.
    std::string cmd;
    int fd = ::open((e.path() / "cmdline").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    char buf[4096];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) cmd.append(buf, static_cast<size_t>(n));
    ::close(fd);
    if (cmd.find("berth-shim") == std::string::npos || cmd.find(dir_) == std::string::npos) continue;
    ADD_FAILURE() << "shim " << name << " of " << dir_ << " left running";
    ::kill(std::stoi(name), SIGKILL);
  }
  // Mounts under the test dir (pod shm, rootfs, netns pins), deepest first.
  std::ifstream mi("/proc/self/mountinfo");
  std::vector<std::string> mounts;
  for (std::string line; std::getline(mi, line);) {
    std::istringstream f(line);
    std::string a, b, c, d, target;
    f >> a >> b >> c >> d >> target;
    if (target.rfind(dir_, 0) == 0) mounts.push_back(target);
  }
  for (auto it = mounts.rbegin(); it != mounts.rend(); ++it) {
    ADD_FAILURE() << "mount " << *it << " left behind";
    ::umount2(it->c_str(), MNT_DETACH);
  }
  // runc removes each pod's cgroup, not this daemon's parent cgroup.
  for (const auto& c : std::filesystem::directory_iterator("/sys/fs/cgroup", ec)) {
    ::rmdir((c.path().string() + cgroup_parent_).c_str());
  }
}

std::string Berthd::log() const { return slurp(dir_ + "/berthd.log"); }

runtime::v1::RuntimeService::Stub& Berthd::runtime() { return *runtime_; }
runtime::v1::ImageService::Stub& Berthd::image() { return *image_; }
std::shared_ptr<grpc::Channel> Berthd::channel() { return channel_; }

std::unique_ptr<grpc::ClientContext> Berthd::context(int timeout_s) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(timeout_s));
  return ctx;
}

FlakyRuntime::FlakyRuntime() {
  char tmpl[] = "/tmp/berth-flaky-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) std::abort();
  dir = tmpl;
  marker = dir + "/fail-delete";
  wrapper = dir + "/flaky-runc";
  std::ofstream(wrapper) << "#!/bin/sh\nfor a in \"$@\"; do\n  if [ \"$a\" = delete ] && [ -e "
                         << marker
                         << " ]; then echo 'injected delete failure' >&2; exit 1; fi\ndone\n"
                            "exec runc \"$@\"\n";
  ::chmod(wrapper.c_str(), 0755);
}

FlakyRuntime::~FlakyRuntime() { std::filesystem::remove_all(dir); }

}  // namespace berth::testing
