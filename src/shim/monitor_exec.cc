// startMonitorExec: the steps of `runc exec` (docs/exec-in-monitor.md, §2-§4), done by a child
// and a grandchild of the shim. The shim is single-threaded, so the children may allocate.
#include "shim/monitor_exec.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "common/capability_names.h"
#include "common/unique_fd.h"
#include "shim/console.h"

namespace berth::shim {
namespace {

const std::map<std::string, int>& rlimitNumbers() {
  static const std::map<std::string, int> m = {
      {"RLIMIT_CPU", RLIMIT_CPU},           {"RLIMIT_FSIZE", RLIMIT_FSIZE},
      {"RLIMIT_DATA", RLIMIT_DATA},         {"RLIMIT_STACK", RLIMIT_STACK},
      {"RLIMIT_CORE", RLIMIT_CORE},         {"RLIMIT_RSS", RLIMIT_RSS},
      {"RLIMIT_NPROC", RLIMIT_NPROC},       {"RLIMIT_NOFILE", RLIMIT_NOFILE},
      {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},   {"RLIMIT_AS", RLIMIT_AS},
      {"RLIMIT_LOCKS", RLIMIT_LOCKS},       {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
      {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
      {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},     {"RLIMIT_RTTIME", RLIMIT_RTTIME}};
  return m;
}

// runc's namespace order for joining (configs.NamespaceTypes), with the spec's type names.
constexpr const char* kNsOrder[] = {"user", "ipc", "uts", "network", "pid", "mount", "cgroup"};

std::string procNsName(const std::string& type) {
  if (type == "network") return "net";
  if (type == "mount") return "mnt";
  return type;
}

int nsFlag(const std::string& type) {
  if (type == "user") return CLONE_NEWUSER;
  if (type == "ipc") return CLONE_NEWIPC;
  if (type == "uts") return CLONE_NEWUTS;
  if (type == "network") return CLONE_NEWNET;
  if (type == "pid") return CLONE_NEWPID;
  if (type == "mount") return CLONE_NEWNS;
  if (type == "cgroup") return CLONE_NEWCGROUP;
  return 0;
}

struct CapSets {
  uint64_t bounding = 0, effective = 0, permitted = 0, inheritable = 0, ambient = 0;
  bool given = false;
};

uint64_t capMask(const Json& names) {
  uint64_t mask = 0;
  if (!names.is_array()) return 0;
  for (const Json& n : names) {
    if (!n.is_string()) continue;
    int cap = capabilityNumber(n.get_ref<const std::string&>());
    if (cap >= 0) mask |= uint64_t{1} << cap;  // unknown names are dropped, as runc does
  }
  return mask;
}

// Everything the grandchild needs, parsed before the fork.
struct Plan {
  std::vector<std::string> args;
  std::vector<std::pair<std::string, std::string>> env;  // deduplicated, in runc's order
  std::string cwd;
  uint32_t uid = 0, gid = 0;
  std::vector<gid_t> groups;
  CapSets caps;
  bool nnp = false;
  std::vector<std::pair<int, struct rlimit>> rlimits;
  bool sets_nofile = false;
  bool terminal = false;
  int console_fd = -1;
};

Outcome plan(const Json& p, Plan* out) {
  auto args = p.find("args");
  if (args == p.end() || !args->is_array() || args->empty()) {
    return Outcome::error(Code::kInvalidArgument, "exec failed: process args must not be empty");
  }
  for (const Json& a : *args) out->args.push_back(a.is_string() ? a.get<std::string>() : "");
  std::map<std::string, size_t> seen;
  if (auto env = p.find("env"); env != p.end() && env->is_array()) {
    for (const Json& e : *env) {
      std::string kv = e.is_string() ? e.get<std::string>() : "";
      size_t eq = kv.find('=');
      if (eq == std::string::npos || eq == 0 || kv.find('\0') != std::string::npos) {
        return Outcome::error(Code::kInvalidArgument,
                              "exec failed: invalid environment variable \"" + kv + "\"");
      }
      std::string key = kv.substr(0, eq), value = kv.substr(eq + 1);
      auto it = seen.find(key);
      if (it != seen.end()) {
        out->env[it->second].second = value;  // first position, last value (os.Setenv)
      } else {
        seen[key] = out->env.size();
        out->env.emplace_back(key, value);
      }
    }
  }
  getString(p, "cwd", &out->cwd);
  if (out->cwd.empty() || out->cwd.front() != '/') {
    return Outcome::error(Code::kInvalidArgument, "exec failed: cwd must be an absolute path");
  }
  if (auto u = p.find("user"); u != p.end() && u->is_object()) {
    int64_t v = 0;
    if (getInt(*u, "uid", &v)) out->uid = static_cast<uint32_t>(v);
    if (getInt(*u, "gid", &v)) out->gid = static_cast<uint32_t>(v);
    if (auto g = u->find("additionalGids"); g != u->end() && g->is_array()) {
      for (const Json& x : *g) {
        if (x.is_number_integer()) out->groups.push_back(static_cast<gid_t>(x.get<int64_t>()));
      }
    }
  }
  if (auto c = p.find("capabilities"); c != p.end() && c->is_object()) {
    out->caps.given = true;
    out->caps.bounding = capMask(c->value("bounding", Json::array()));
    out->caps.effective = capMask(c->value("effective", Json::array()));
    out->caps.permitted = capMask(c->value("permitted", Json::array()));
    out->caps.inheritable = capMask(c->value("inheritable", Json::array()));
    out->caps.ambient = capMask(c->value("ambient", Json::array()));
  }
  getBool(p, "noNewPrivileges", &out->nnp);
  getBool(p, "terminal", &out->terminal);
  if (auto r = p.find("rlimits"); r != p.end() && r->is_array()) {
    for (const Json& l : *r) {
      std::string type;
      int64_t hard = 0, soft = 0;
      if (!l.is_object() || !getString(l, "type", &type)) continue;
      auto n = rlimitNumbers().find(type);
      if (n == rlimitNumbers().end()) {
        return Outcome::error(Code::kInvalidArgument, "exec failed: unknown rlimit " + type);
      }
      getInt(l, "hard", &hard);
      getInt(l, "soft", &soft);
      out->rlimits.push_back({n->second, {static_cast<rlim_t>(soft), static_cast<rlim_t>(hard)}});
      if (n->second == RLIMIT_NOFILE) out->sets_nofile = true;
    }
  }
  return Outcome::success();
}

// The cgroup.procs files of `pid`'s cgroups: one per hierarchy in /proc/<pid>/cgroup, under
// its mount point on this host (v1 controllers, named hierarchies and the unified one).
Outcome cgroupProcsFiles(pid_t pid, std::vector<std::string>* out) {
  struct MountPoint {
    std::string dir;
    bool v2 = false;
    std::set<std::string> options;
  };
  std::vector<MountPoint> mounts;
  std::ifstream mi("/proc/self/mountinfo");
  std::string line;
  while (std::getline(mi, line)) {
    size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream pre(line.substr(0, dash)), post(line.substr(dash + 3));
    std::string id, parent, devno, root, dir, fstype, source, super;
    pre >> id >> parent >> devno >> root >> dir;
    post >> fstype >> source >> super;
    if (fstype != "cgroup" && fstype != "cgroup2") continue;
    MountPoint m{.dir = dir, .v2 = fstype == "cgroup2"};
    std::istringstream opts(super);
    for (std::string o; std::getline(opts, o, ',');) m.options.insert(o);
    mounts.push_back(std::move(m));
  }
  std::ifstream cg("/proc/" + std::to_string(pid) + "/cgroup");
  if (!cg) return Outcome::fromErrno(errno, "read /proc/" + std::to_string(pid) + "/cgroup");
  while (std::getline(cg, line)) {
    size_t a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    std::string controllers = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
    for (const MountPoint& m : mounts) {
      bool match = false;
      if (controllers.empty()) {
        match = m.v2;
      } else if (!m.v2) {
        match = true;
        std::istringstream cs(controllers);
        for (std::string c; std::getline(cs, c, ',');) match = match && m.options.contains(c);
      }
      if (match) {
        out->push_back(m.dir + (path == "/" ? "" : path) + "/cgroup.procs");
        break;
      }
    }
  }
  return Outcome::success();
}

// Go 1.19's exec.LookPath, which runc uses: a name with a slash is only checked; else each
// PATH element, where an empty one or "." is refused (ErrDot).
std::string lookPath(const std::string& file, const std::string& path_env, std::string* error) {
  auto executable = [](const std::string& f) -> int {
    struct stat st {};
    if (::stat(f.c_str(), &st) != 0) return errno;
    if (S_ISDIR(st.st_mode) || (st.st_mode & 0111) == 0) return EACCES;
    return 0;
  };
  if (file.find('/') != std::string::npos) {
    int err = executable(file);
    if (err == 0) return file;
    *error = "exec: \"" + file + "\": " + std::strerror(err);
    return "";
  }
  std::istringstream dirs(path_env);
  for (std::string dir; std::getline(dirs, dir, ':');) {
    bool dot = dir.empty() || dir == ".";
    std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + file;
    if (executable(candidate) == 0) {
      if (dot) {
        *error =
            "exec: \"" + file + "\": cannot run executable found relative to current directory";
        return "";
      }
      return candidate;
    }
  }
  *error = "exec: \"" + file + "\": executable file not found in $PATH";
  return "";
}

// The home of `uid` in the container's /etc/passwd, else "/".
std::string homeOf(uint32_t uid) {
  std::ifstream pw("/etc/passwd");
  std::string line;
  while (std::getline(pw, line)) {
    std::vector<std::string> f;
    std::istringstream in(line);
    for (std::string x; std::getline(in, x, ':');) f.push_back(x);
    if (f.size() >= 6 && f[2] == std::to_string(uid)) return f[5].empty() ? "/" : f[5];
  }
  return "/";
}

[[noreturn]] void fail(int err_fd, const std::string& what, int err = 0) {
  std::string msg = "exec failed: unable to start container process: " + what;
  if (err != 0) msg += std::string(": ") + std::strerror(err);
  ssize_t ignored = ::write(err_fd, msg.data(), msg.size());
  (void)ignored;
  ::_exit(127);
}

int lastCap() {
  std::ifstream f("/proc/sys/kernel/cap_last_cap");
  int n = CAP_LAST_CAP;
  f >> n;
  return n;
}

// runc's setupConsole for an exec: a pty opened in the container's /dev, its master sent over
// `console_fd` (payload "/dev/ptmx", as runc), its slave the controlling terminal and stdio.
void setUpTerminal(int console_fd, int err_fd) {
  UniqueFd master(::open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!master.valid()) fail(err_fd, "open /dev/ptmx", errno);
  unsigned int n = 0;
  int unlock = 0;
  if (::ioctl(master.get(), TIOCGPTN, &n) != 0 || ::ioctl(master.get(), TIOCSPTLCK, &unlock) != 0) {
    fail(err_fd, "set up the pty", errno);
  }
  if (Outcome sent = sendPty(console_fd, master.get()); !sent.ok()) fail(err_fd, sent.message);
  std::string slave_path = "/dev/pts/" + std::to_string(n);
  // Without O_NOCTTY: a session leader without a terminal gets this one.
  int slave = ::open(slave_path.c_str(), O_RDWR);
  if (slave < 0) fail(err_fd, "open " + slave_path, errno);
  for (int i = 0; i < 3; ++i) {
    if (::dup3(slave, i, 0) < 0) fail(err_fd, "dup the pty", errno);
  }
  if (slave > 2) ::close(slave);
  if (::ioctl(0, TIOCSCTTY, 0) != 0) fail(err_fd, "set the controlling terminal", errno);
}

// runc's PatchAndLoad with no flags (no notify action, no log bit): the filter on this thread.
void loadSeccomp(const SeccompProgram& s, int err_fd) {
  sock_fprog prog{.len = static_cast<unsigned short>(s.insns.size()),
                  .filter = const_cast<sock_filter*>(s.insns.data())};
  if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0) {
    fail(err_fd, "error loading seccomp filter into kernel: error loading seccomp filter", errno);
  }
}

// Every descriptor from 3 up closes at execve: close_range, or runc's own way (each entry of
// /proc/self/fd) where that is refused (an old kernel, or a filter that denies it).
void closeOnExecFrom3(int err_fd) {
  if (::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == 0) return;
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) fail(err_fd, "open /proc/self/fd", errno);
  while (struct dirent* e = ::readdir(d)) {
    int fd = std::atoi(e->d_name);
    if (fd >= 3 && fd != ::dirfd(d)) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
  ::closedir(d);
}

// The grandchild: in the container's namespaces and cgroups; becomes the exec'd process.
[[noreturn]] void becomeProcess(const MonitorExecTarget& target, const Plan& p, int err_fd) {
  // Go's start-up in runc init raises the open-files soft limit to the hard one.
  if (!p.sets_nofile) {
    struct rlimit nofile {};
    if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
      nofile.rlim_cur = nofile.rlim_max;
      ::setrlimit(RLIMIT_NOFILE, &nofile);
    }
  }
  if (::setsid() < 0) fail(err_fd, "setsid", errno);
  // runc leaves every disposition at its default; the shim's blocked mask goes last.
  for (int s = 1; s < NSIG; ++s) {
    if (s != SIGKILL && s != SIGSTOP) ::signal(s, SIG_DFL);
  }
  // ... except signal 32, which Go's runtime in `runc init` leaves ignored (and an ignored
  // signal stays ignored across execve). glibc keeps 32 for itself: set it with the syscall.
  struct {
    void* handler;
    unsigned long flags;
    void* restorer;
    uint64_t mask;
  } ignore = {reinterpret_cast<void*>(SIG_IGN), 0, nullptr, 0};
  ::syscall(SYS_rt_sigaction, 32, &ignore, nullptr, sizeof(uint64_t));
  if (target.has_oom_score_adj) {
    std::string adj = std::to_string(target.oom_score_adj);
    UniqueFd f(::open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC));
    if (!f.valid() || ::write(f.get(), adj.data(), adj.size()) < 0) {
      fail(err_fd, "update /proc/self/oom_score_adj", errno);
    }
  }
  // The container's session keyring, as runc joins it (absent keyrings are not an error).
  std::string keyring = "_ses." + target.container_id;
  ::syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, keyring.c_str());
  if (p.terminal) setUpTerminal(p.console_fd, err_fd);
  if (p.nnp && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    fail(err_fd, "set no_new_privs", errno);
  // Without no_new_privs the filter is loaded while the process still has CAP_SYS_ADMIN: every
  // later step runs under it, as in runc.
  const bool seccomp = target.seccomp != nullptr && !target.seccomp->insns.empty();
  if (seccomp && !p.nnp) loadSeccomp(*target.seccomp, err_fd);
  closeOnExecFrom3(err_fd);
  bool cwd_later = false;
  if (::chdir(p.cwd.c_str()) != 0) {
    if (errno != EACCES && errno != EPERM) fail(err_fd, "chdir to cwd (\"" + p.cwd + "\")", errno);
    cwd_later = true;
  }
  const int last = lastCap();
  if (p.caps.given) {
    for (int c = 0; c <= last; ++c) {
      if ((p.caps.bounding & (uint64_t{1} << c)) == 0) ::prctl(PR_CAPBSET_DROP, c, 0, 0, 0);
    }
  }
  if (::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) fail(err_fd, "set keepcaps", errno);
  // runc's fixStdioPermissions: stdio the user could not use is given to it.
  struct stat devnull {};
  bool have_null = ::stat("/dev/null", &devnull) == 0;
  for (int fd = 0; fd < 3; ++fd) {
    struct stat st {};
    if (::fstat(fd, &st) != 0 || st.st_uid == p.uid) continue;
    if (have_null && S_ISCHR(st.st_mode) && st.st_rdev == devnull.st_rdev) continue;
    if (::fchown(fd, p.uid, st.st_gid) != 0 && errno != EINVAL && errno != EPERM &&
        errno != EROFS) {
      fail(err_fd, "fix stdio permissions", errno);
    }
  }
  std::string setgroups_state;
  std::ifstream("/proc/self/setgroups") >> setgroups_state;
  if (setgroups_state != "deny" &&
      ::syscall(SYS_setgroups, p.groups.size(), p.groups.data()) != 0) {
    fail(err_fd, "setgroups", errno);
  }
  if (::syscall(SYS_setgid, p.gid) != 0) fail(err_fd, "setgid", errno);
  if (::syscall(SYS_setuid, p.uid) != 0) fail(err_fd, "setuid", errno);
  std::vector<std::pair<std::string, std::string>> env = p.env;
  auto home =
      std::find_if(env.begin(), env.end(), [](const auto& kv) { return kv.first == "HOME"; });
  if (home == env.end()) {
    env.emplace_back("HOME", homeOf(p.uid));
  } else if (home->second.empty()) {
    home->second = homeOf(p.uid);
  }
  if (cwd_later && ::chdir(p.cwd.c_str()) != 0) {
    fail(err_fd, "chdir to cwd (\"" + p.cwd + "\")", errno);
  }
  char cwd[4096];
  if (::getcwd(cwd, sizeof cwd) == nullptr || cwd[0] != '/') {
    fail(err_fd, "current working directory is outside of container mount namespace root", ENOENT);
  }
  if (::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) fail(err_fd, "clear keepcaps", errno);
  if (p.caps.given) {
    __user_cap_header_struct header{.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    __user_cap_data_struct data[2] = {};
    for (int i = 0; i < 2; ++i) {
      data[i].effective = static_cast<uint32_t>(p.caps.effective >> (32 * i));
      data[i].permitted = static_cast<uint32_t>(p.caps.permitted >> (32 * i));
      data[i].inheritable = static_cast<uint32_t>(p.caps.inheritable >> (32 * i));
    }
    if (::syscall(SYS_capset, &header, data) != 0) fail(err_fd, "capset", errno);
    for (int c = 0; c <= last; ++c) {  // errors ignored, as runc's gocapability does
      bool raise = (p.caps.ambient & (uint64_t{1} << c)) != 0;
      ::prctl(PR_CAP_AMBIENT, raise ? PR_CAP_AMBIENT_RAISE : PR_CAP_AMBIENT_LOWER, c, 0, 0);
    }
  }
  std::string path_env;
  for (const auto& [k, v] : env) {
    if (k == "PATH") path_env = v;
  }
  std::string error;
  std::string exe = lookPath(p.args[0], path_env, &error);
  if (exe.empty()) fail(err_fd, error);
  if (::syscall(SYS_faccessat2, AT_FDCWD, exe.c_str(), X_OK, AT_EACCESS) != 0 &&
      ::access(exe.c_str(), X_OK) != 0) {
    fail(err_fd, "exec " + exe, errno);
  }
  // With no_new_privs the filter comes last, as close to execve as runc can put it.
  if (seccomp && p.nnp) loadSeccomp(*target.seccomp, err_fd);
  std::vector<std::string> env_text;
  for (const auto& [k, v] : env) env_text.push_back(k + "=" + v);
  std::vector<char*> argv, envp;
  for (const std::string& a : p.args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (std::string& e : env_text) envp.push_back(e.data());
  envp.push_back(nullptr);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::execve(exe.c_str(), argv.data(), envp.data());
  fail(err_fd, "exec", errno);
}

// Reads from `fd` until EOF or `deadline_ms` (a monotonic time; 0: none).
bool readUntilEof(int fd, std::string* out, int64_t timeout_ms) {
  for (;;) {
    struct pollfd pfd {
      .fd = fd, .events = POLLIN, .revents = 0
    };
    int r = ::poll(&pfd, 1, timeout_ms > 0 ? static_cast<int>(timeout_ms) : -1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    char buf[4096];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return true;
    out->append(buf, static_cast<size_t>(n));
  }
}

}  // namespace

std::string monitorExecUnsupported(const Json& config, const Json& process) {
  std::string label;
  if (getString(process, "apparmorProfile", &label) && !label.empty()) return "an AppArmor profile";
  if (getString(process, "selinuxLabel", &label) && !label.empty()) return "an SELinux label";
  auto linux_it = config.find("linux");
  if (linux_it != config.end() && linux_it->is_object()) {
    if (auto ns = linux_it->find("namespaces"); ns != linux_it->end() && ns->is_array()) {
      for (const Json& n : *ns) {
        std::string type;
        if (n.is_object() && getString(n, "type", &type) && type == "user") {
          return "a user namespace";
        }
      }
    }
  }
  return "";
}

MonitorExecTarget monitorExecTarget(const std::string& container_id, pid_t init_pid,
                                    const Json& config) {
  MonitorExecTarget t{.container_id = container_id, .init_pid = init_pid};
  std::set<std::string> types;
  if (auto l = config.find("linux"); l != config.end() && l->is_object()) {
    if (auto ns = l->find("namespaces"); ns != l->end() && ns->is_array()) {
      for (const Json& n : *ns) {
        std::string type;
        if (n.is_object() && getString(n, "type", &type)) types.insert(type);
      }
    }
  }
  for (const char* type : kNsOrder) {
    if (types.contains(type)) t.namespaces.push_back(type);
  }
  if (auto p = config.find("process"); p != config.end() && p->is_object()) {
    int64_t adj = 0;
    if (getInt(*p, "oomScoreAdj", &adj)) {
      t.has_oom_score_adj = true;
      t.oom_score_adj = static_cast<int>(adj);
    }
  }
  return t;
}

Outcome startMonitorExec(const MonitorExecTarget& target, const Json& process, const int stdio[3],
                         int console_fd, int64_t timeout_ms, pid_t* pid) {
  Plan p;
  if (Outcome r = plan(process, &p); !r.ok()) return r;
  p.console_fd = p.terminal ? console_fd : -1;
  if (p.terminal && console_fd < 0) {
    return Outcome::error(Code::kInternal, "exec failed: a terminal needs a console socket");
  }
  std::vector<std::string> cgroups;
  if (Outcome r = cgroupProcsFiles(target.init_pid, &cgroups); !r.ok()) return r;
  // Namespaces are opened by the child before it joins any (the paths are the host's).
  UniqueFd null_fd(::open("/dev/null", O_RDWR | O_CLOEXEC));
  int go[2], pids[2], errs[2];
  if (::pipe2(go, O_CLOEXEC) != 0) return Outcome::fromErrno(errno, "pipe");
  UniqueFd go_r(go[0]), go_w(go[1]);
  if (::pipe2(pids, O_CLOEXEC) != 0) return Outcome::fromErrno(errno, "pipe");
  UniqueFd pids_r(pids[0]), pids_w(pids[1]);
  if (::pipe2(errs, O_CLOEXEC) != 0) return Outcome::fromErrno(errno, "pipe");
  UniqueFd errs_r(errs[0]), errs_w(errs[1]);

  pid_t child = ::fork();
  if (child < 0) return Outcome::fromErrno(errno, "fork");
  if (child == 0) {
    go_w.reset();
    pids_r.reset();
    errs_r.reset();
    char c;
    if (::read(go_r.get(), &c, 1) != 1) ::_exit(1);  // the shim gave up
    std::vector<std::pair<int, std::string>> fds;
    for (const std::string& type : target.namespaces) {
      std::string path = "/proc/" + std::to_string(target.init_pid) + "/ns/" + procNsName(type);
      int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) fail(errs_w.get(), "open " + path, errno);
      fds.emplace_back(fd, type);
    }
    for (const auto& [fd, type] : fds) {
      if (::setns(fd, nsFlag(type)) != 0)
        fail(errs_w.get(), "join the " + type + " namespace", errno);
      ::close(fd);
    }
    // Into the pid namespace: a grandchild, the shim's child (as runc's CLONE_PARENT).
    pid_t grandchild = static_cast<pid_t>(::syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0));
    if (grandchild < 0) fail(errs_w.get(), "clone", errno);
    if (grandchild == 0) {
      pids_w.reset();
      for (int fd = 0; fd < 3; ++fd) {
        int from = stdio[fd] >= 0 ? stdio[fd] : null_fd.get();
        if (::dup2(from, fd) < 0) fail(errs_w.get(), "set up stdio", errno);
      }
      becomeProcess(target, p, errs_w.get());
    }
    ssize_t ignored = ::write(pids_w.get(), &grandchild, sizeof grandchild);
    (void)ignored;
    ::_exit(0);
  }
  go_r.reset();
  pids_w.reset();
  errs_w.reset();
  // As runc's parent: cgroups and rlimits before the process goes on.
  auto abandon = [&](Outcome why) {
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    return why;
  };
  for (const std::string& procs : cgroups) {
    UniqueFd f(::open(procs.c_str(), O_WRONLY | O_CLOEXEC));
    std::string text = std::to_string(child);
    if (!f.valid() || ::write(f.get(), text.data(), text.size()) < 0) {
      return abandon(Outcome::fromErrno(errno, "exec failed: join cgroup " + procs));
    }
  }
  for (const auto& [resource, limit] : p.rlimits) {
    if (::prlimit(child, static_cast<__rlimit_resource>(resource), &limit, nullptr) != 0) {
      return abandon(Outcome::fromErrno(errno, "exec failed: set rlimit"));
    }
  }
  if (::write(go_w.get(), "g", 1) != 1) return abandon(Outcome::fromErrno(errno, "release child"));
  go_w.reset();
  pid_t grandchild = 0;
  ssize_t n = ::read(pids_r.get(), &grandchild, sizeof grandchild);
  int status = 0;
  ::waitpid(child, &status, 0);
  std::string error;
  bool ended = readUntilEof(errs_r.get(), &error, timeout_ms);
  if (n != static_cast<ssize_t>(sizeof grandchild) || grandchild <= 0) {
    if (error.empty()) error = "exec failed: the process could not be started";
    return Outcome::error(Code::kInternal, error);
  }
  if (!ended) {
    ::kill(grandchild, SIGKILL);
    ::waitpid(grandchild, nullptr, 0);
    return Outcome::error(Code::kDeadlineExceeded,
                          "exec failed: the process did not start in time");
  }
  if (!error.empty()) {
    ::waitpid(grandchild, nullptr, 0);
    return Outcome::error(Code::kInternal, error);
  }
  *pid = grandchild;
  return Outcome::success();
}

}  // namespace berth::shim
