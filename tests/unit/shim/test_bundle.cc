// TestEnv: temp rootfs and bundles for real-runc shim tests, and their clean-up.
#include "test_bundle.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <thread>
#include <vector>

#include "common/fs.h"
#include "nlohmann/json.hpp"

namespace berth::shim::testing {

// Each test process has its own parent cgroup: tests run in parallel, and removing a shared
// empty parent would race with another test's runc creating a child under it.
static std::string cgroupParent() { return "/berth-test-" + std::to_string(::getpid()); }

namespace {

void check(bool ok, const std::string& what) {
  if (!ok) {
    std::fprintf(stderr, "test setup failed: %s: %s\n", what.c_str(), std::strerror(errno));
    std::abort();
  }
}

// Runs a command quietly and returns its exit status (-1 if it could not run).
int runQuiet(const std::vector<std::string>& args) {
  pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    int null_fd = ::open("/dev/null", O_RDWR);
    ::dup2(null_fd, 1);
    ::dup2(null_fd, 2);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int readPidFile(const std::string& path) {
  auto text = readFile(path);
  return text.ok() ? std::atoi(text->c_str()) : 0;
}

bool isShimProcess(int pid) {
  char exe[4096];
  std::string link = "/proc/" + std::to_string(pid) + "/exe";
  ssize_t n = ::readlink(link.c_str(), exe, sizeof exe - 1);
  if (n <= 0) return false;
  exe[n] = '\0';
  return std::string(exe).find("berth-shim") != std::string::npos;
}

// A test process killed before its TestEnv was destroyed (a timeout) leaves its parent cgroup,
// with its containers' cgroups below. The next run removes those of processes that are gone;
// rmdir refuses a cgroup that still has processes.
void removeStaleParentCgroups() {
  std::error_code ec;
  for (const auto& h : std::filesystem::directory_iterator("/sys/fs/cgroup", ec)) {
    if (h.is_symlink(ec) || !h.is_directory(ec)) continue;
    for (const auto& e : std::filesystem::directory_iterator(h.path(), ec)) {
      const std::string name = e.path().filename().string();
      if (name.rfind("berth-test-", 0) != 0) continue;
      const pid_t owner = static_cast<pid_t>(std::atol(name.c_str() + 11));
      if (owner <= 0 || ::kill(owner, 0) == 0 || errno != ESRCH) continue;
      std::vector<std::string> dirs = {e.path().string()};
      for (auto it = std::filesystem::recursive_directory_iterator(e.path(), ec);
           !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
        if (it->is_directory(ec)) dirs.push_back(it->path().string());
      }
      for (auto d = dirs.rbegin(); d != dirs.rend(); ++d) ::rmdir(d->c_str());
    }
  }
}

}  // namespace

std::string runcUnavailableReason() {
  if (::geteuid() != 0) return "needs root";
  if (!findExecutable("runc").ok()) return "runc is not installed";
  if (::access("/bin/busybox", X_OK) != 0) return "/bin/busybox is missing";
  return "";
}

bool processAlive(int pid) {
  if (pid <= 0) return false;
  auto stat = readFile("/proc/" + std::to_string(pid) + "/stat");
  if (!stat.ok()) return false;
  size_t paren = stat->rfind(')');
  return paren != std::string::npos && paren + 2 < stat->size() && (*stat)[paren + 2] != 'Z';
}

bool eventually(int ms, const std::function<bool()>& pred) {
  for (int waited = 0;; waited += 20) {
    if (pred()) return true;
    if (waited >= ms) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

TestEnv::TestEnv() {
  removeStaleParentCgroups();
  char tmpl[] = "/tmp/berth-shim-test-XXXXXX";
  check(::mkdtemp(tmpl) != nullptr, "mkdtemp");
  root_ = tmpl;
  auto runc = findExecutable("runc");
  runtime_path_ = runc.ok() ? *runc : "/usr/sbin/runc";
  std::string rootfs = this->rootfs();
  for (const char* d : {"", "/bin", "/proc", "/dev", "/tmp", "/etc"}) {
    check(::mkdir((rootfs + d).c_str(), 0755) == 0, "mkdir rootfs" + std::string(d));
  }
  std::error_code ec;
  std::filesystem::copy_file("/bin/busybox", rootfs + "/bin/busybox", ec);
  check(!ec, "copy busybox");
  std::filesystem::copy_file(kPauseBinary, rootfs + "/pause", ec);
  check(!ec, "copy berth-pause");
  for (const char* applet :
       {"sh", "sleep", "true", "false", "kill", "echo", "cat", "head", "tail", "printf", "pwd"}) {
    check(::link((rootfs + "/bin/busybox").c_str(), (rootfs + "/bin/" + applet).c_str()) == 0,
          std::string("link ") + applet);
  }
}

TestEnv::~TestEnv() {
  // Shims first: a shutdown kills and deletes their containers.
  for (const std::string& dir : pod_dirs_) {
    if (auto c = ShimClient::connect(dir, absl::Seconds(20)); c.ok()) {
      (void)(*c)->shutdown();
    }
    int pid = readPidFile(dir + "/shim.pid");
    if (pid > 1 && isShimProcess(pid)) ::kill(pid, SIGKILL);
  }
  for (const std::string& id : container_ids_) {
    runQuiet({runtime_path_, "--root", runtimeRoot(), "delete", "--force", id});
    for (const std::string& cg : leftoverCgroups(id)) ::rmdir(cg.c_str());
  }
  // The shared parent cgroup goes once no test uses it (rmdir fails while it is not empty).
  if (DIR* d = ::opendir("/sys/fs/cgroup")) {
    while (dirent* e = ::readdir(d)) {
      std::string parent = std::string("/sys/fs/cgroup/") + e->d_name + cgroupParent();
      ::rmdir(parent.c_str());
    }
    ::closedir(d);
  }
  (void)removeAll(root_);
}

std::string TestEnv::podDir(const std::string& pod) {
  std::string dir = root_ + "/pods/" + pod;
  pod_dirs_.push_back(dir);
  return dir;
}

std::string TestEnv::containerId(const std::string& name) {
  std::string id = "shimtest-" + std::to_string(::getpid()) + "-" + name;
  container_ids_.push_back(id);
  return id;
}

std::string TestEnv::makeBundle(const std::string& id, const std::vector<std::string>& args,
                                bool own_pid_ns, int64_t memory_limit) {
  using nlohmann::json;
  std::string bundle = root_ + "/bundles/" + id;
  check(makeDirs(bundle, 0700).ok(), "mkdir bundle");
  json namespaces = json::array();
  if (own_pid_ns) namespaces.push_back({{"type", "pid"}});
  for (const char* ns : {"ipc", "uts", "mount", "network"}) namespaces.push_back({{"type", ns}});
  json config = {
      {"ociVersion", "1.0.2"},
      {"process",
       {{"terminal", false},
        {"user", {{"uid", 0}, {"gid", 0}}},
        {"args", args},
        {"env", {"PATH=/bin", "HOME=/"}},
        {"cwd", "/"},
        {"noNewPrivileges", true}}},
      {"root", {{"path", rootfs()}, {"readonly", false}}},
      {"hostname", "shimtest"},
      {"mounts",
       {{{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}},
        {{"destination", "/dev"},
         {"type", "tmpfs"},
         {"source", "tmpfs"},
         {"options", {"nosuid", "strictatime", "mode=755", "size=65536k"}}},
        {{"destination", "/dev/pts"},
         {"type", "devpts"},
         {"source", "devpts"},
         {"options", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}}}}},
      {"linux",
       {{"namespaces", namespaces},
        {"cgroupsPath", cgroupParent() + "/" + id},
        {"maskedPaths", {"/proc/kcore", "/proc/keys", "/proc/timer_list"}},
        {"readonlyPaths", {"/proc/sys", "/proc/sysrq-trigger"}}}}};
  if (memory_limit > 0) {
    config["linux"]["resources"] = {{"memory", {{"limit", memory_limit}, {"swap", memory_limit}}}};
  }
  check(writeFileAtomic(bundle + "/config.json", config.dump(2), 0600).ok(), "write config.json");
  return bundle;
}

ShimConfig TestEnv::shimConfig(const std::string& pod) {
  ShimConfig cfg;
  cfg.id = pod;
  cfg.dir = podDir(pod);
  cfg.runtime_path = runtime_path_;
  cfg.runtime_root = runtimeRoot();
  cfg.shim_binary = kShimBinary;
  cfg.log_level = "debug";
  return cfg;
}

std::vector<std::string> TestEnv::leftoverCgroups(const std::string& id) {
  std::vector<std::string> out;
  DIR* d = ::opendir("/sys/fs/cgroup");
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string path = "/sys/fs/cgroup/" + name + cgroupParent() + "/" + id;
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) out.push_back(path);
  }
  ::closedir(d);
  // The root may itself be a cgroup2 mount.
  struct stat st {};
  std::string v2 = "/sys/fs/cgroup" + cgroupParent() + "/" + id;
  if (::stat(v2.c_str(), &st) == 0) out.push_back(v2);
  return out;
}

}  // namespace berth::shim::testing
