// The berthd integration fixture.
#include "berthd_fixture.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
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

extern char** environ;

namespace berth::testing {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

size_t filesUnder(const std::string& dir) {
  size_t n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file()) ++n;
  }
  return n;
}

namespace {

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

uint16_t freeLoopbackPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}
std::string sourceDir() { return BERTH_SOURCE_DIR; }

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
    ::execvp(args[0], args.data());  // PATH lookup: "ip", "curl", …
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

namespace {

constexpr char kCniSlotDir[] = "/tmp/berth-it-cni-slots";
constexpr int kCniSlots = 512;  // /24s in 198.18.0.0/15

// Claims a free slot: a file holding our pid; a slot whose owner is gone is taken over.
int claimCniSlot() {
  // Another test's daemon removes the folder when it gives back the last slot: when it goes
  // between our mkdir and our open, make it again and start over.
  for (int round = 0; round < 100; ++round) {
    ::mkdir(kCniSlotDir, 0700);
    bool folder_gone = false;
    for (int n = 0; n < kCniSlots && !folder_gone; ++n) {
      std::string path = std::string(kCniSlotDir) + "/" + std::to_string(n);
      for (int attempt = 0; attempt < 2; ++attempt) {
        int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0) {
          std::string pid = std::to_string(::getpid());
          (void)!::write(fd, pid.data(), pid.size());
          ::close(fd);
          return n;
        }
        if (errno == ENOENT) {
          folder_gone = true;
          break;
        }
        std::string owner = slurp(path);
        if (owner.empty() || ::kill(std::atoi(owner.c_str()), 0) == 0) break;
        ::unlink(path.c_str());  // its process is gone
      }
    }
    if (!folder_gone) return -1;
  }
  return -1;
}

}  // namespace

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
  if (extra_toml.find("[cni]") == std::string::npos) {
    cni_slot_ = claimCniSlot();
    if (cni_slot_ < 0) std::abort();
    cni_bridge_ = "bit" + std::to_string(cni_slot_);
    cni_subnet_ = "198." + std::to_string(18 + cni_slot_ / 256) + "." +
                  std::to_string(cni_slot_ % 256) + ".0/24";
    cfg << "[cni]\nconf_dir = \"" << cniConfDir() << "\"\ndefault_network = false\n"
        << "bin_dirs = [\"" << cniBinDir() << "\", \"/opt/cni/bin\", \"/usr/lib/cni\"]\n";
    std::filesystem::create_directories(cniConfDir());
    std::filesystem::create_directories(cniBinDir());
    // The bridge is made here with the host's address on it (.254), and the bridge plugin
    // runs without isGateway: that way it never turns on the host's IP forwarding, and
    // nothing is routed off the machine (machine-notes.md). Host and pods share the /24.
    std::string prefix = cni_subnet_.substr(0, cni_subnet_.rfind('.') + 1);
    if (std::filesystem::exists("/sys/class/net/" + cni_bridge_)) {
      runProgram({"ip", "link", "del", cni_bridge_});  // left by a crashed run
    }
    for (const std::vector<std::string>& cmd :
         {std::vector<std::string>{"ip", "link", "add", cni_bridge_, "type", "bridge"},
          {"ip", "addr", "add", prefix + "254/24", "dev", cni_bridge_},
          {"ip", "link", "set", cni_bridge_, "up"}}) {
      RunResult r = runProgram(cmd);
      if (r.exit_code != 0) ADD_FAILURE() << cmd[1] << " " << cmd[2] << ": " << r.err;
    }
    writeCniConfig();
  }
}

void Berthd::writeCniConfig(const std::string& extra_plugins_json, const std::string& file) const {
  std::string tmp = cniConfDir() + "/." + file + ".tmp";
  std::ofstream(tmp) << R"({"cniVersion": "1.0.0", "name": "berth-it", "plugins": [
    {"type": "bridge", "bridge": ")"
                     << cni_bridge_ << R"(", "isGateway": false, "ipMasq": false,
     "hairpinMode": true, "ipam": {"type": "host-local", "ranges": [[{"subnet": ")"
                     << cni_subnet_ << R"(", "rangeEnd": ")"
                     << cni_subnet_.substr(0, cni_subnet_.rfind('.') + 1) << R"(250"}]],
     "dataDir": ")" << cniLeaseDir() << R"("}})"
                     << (extra_plugins_json.empty() ? "" : ",\n    " + extra_plugins_json)
                     << "]}\n";
  std::filesystem::rename(tmp, cniConfDir() + "/" + file);
}

Berthd::~Berthd() {
  if (pid_ > 0) removeAllPods();
  if (pid_ > 0) stop(SIGTERM);
  reapLeftovers();
  channel_.reset();
  if (cni_slot_ >= 0) {
    // The bridge plugin leaves its bridge behind when the last pod goes.
    if (std::filesystem::exists("/sys/class/net/" + cni_bridge_)) {
      runProgram({"ip", "link", "del", cni_bridge_});
    }
    ::unlink((std::string(kCniSlotDir) + "/" + std::to_string(cni_slot_)).c_str());
    ::rmdir(kCniSlotDir);  // when no other daemon holds a slot
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

bool Berthd::start(const std::vector<std::string>& env) {
  // Built before fork: the child of a threaded process must not allocate.
  std::vector<std::string> vars = env;
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e) envp.push_back(*e);
  for (auto& v : vars) envp.push_back(v.data());
  envp.push_back(nullptr);
  std::string bin = berthdPath();
  std::string cfg = configPath();
  std::string log_path = dir_ + "/berthd.log";
  pid_ = ::fork();
  if (pid_ == 0) {
    int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    ::dup2(log, 1);
    ::dup2(log, 2);
    char* args[] = {bin.data(), const_cast<char*>("--config"), cfg.data(), nullptr};
    ::execve(args[0], args, envp.data());
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
  // Processes left in this daemon's cgroups (a pause or container whose shim died) are ended
  // too, then the cgroups are removed; runc removes each pod's cgroup, not the parent.
  for (const auto& c : std::filesystem::directory_iterator("/sys/fs/cgroup", ec)) {
    std::string parent = c.path().string() + cgroup_parent_;
    if (c.is_symlink(ec) || !std::filesystem::is_directory(parent, ec)) continue;
    std::vector<std::string> dirs = {parent};
    for (auto it = std::filesystem::recursive_directory_iterator(parent, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_directory(ec)) dirs.push_back(it->path().string());
    }
    for (int round = 0; round < 100; ++round) {
      bool any = false;
      for (const auto& dir : dirs) {
        std::ifstream procs(dir + "/cgroup.procs");
        for (std::string pid; std::getline(procs, pid);) {
          if (pid.empty()) continue;
          if (round == 0) ADD_FAILURE() << "process " << pid << " left in " << dir;
          ::kill(std::stoi(pid), SIGKILL);
          any = true;
        }
      }
      if (!any) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) ::rmdir(it->c_str());
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
