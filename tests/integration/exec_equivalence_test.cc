// Issue 15, point 5: an exec started by berth-shim itself (`exec = "monitor"`) is the process
// `runc exec` would have started. One berthd, two handlers on the same runc (through a wrapper
// that records the runc commands): "runc" starts execs with `runc exec`, "runc-monitor" from the
// shim. The same container in a pod of each; one probe by ExecSync in each; outputs compared.
#include <gtest/gtest.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <sys/ptrace.h>
#include <sys/wait.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "berthd_fixture.h"
#include "cri_calls.h"
#include "nlohmann/json.hpp"
#include "shim/bpf_eval.h"
#include "streaming/client.h"
#include "test_env.h"

namespace berth::testing {
namespace {

// What runc itself sets up for the process, and how it relates to the container's init (pid 1
// of the container's pid namespace): printed the same way for both ways of starting it.
constexpr char kProbe[] = R"probe(
grep -E '^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp|Seccomp_filters|Umask|SigBlk|SigIgn):' /proc/self/status
for n in cgroup ipc mnt net pid uts user; do echo "ns $(readlink /proc/self/ns/$n)"; done
sed 's/^/cgroup /' /proc/self/cgroup
sed 1d /proc/self/limits
echo "oom_score_adj $(cat /proc/self/oom_score_adj)"
set -- $(sed 's/.*) //' /proc/$$/stat)
echo "ppid $2, pgid is pid: $([ "$3" = "$$" ] && echo yes || echo no), sid is pid: $([ "$4" = "$$" ] && echo yes || echo no)"
echo "stdio owners: $(stat -L -c '%u:%g' /proc/self/fd/1 /proc/self/fd/2 | tr '\n' ' ')"
echo "fds: $(ls /proc/self/fd | tr '\n' ' ')"
echo "cwd: $(pwd)"
env | grep -v '^HOSTNAME=' | sort
)probe";

// The default rlimits of the "-limits" handlers.
constexpr char kLimits[] = R"("nofile=1024:4096", "core=0:1000", "memlock=65536:131072")";

class ExecEquivalenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log_ = dir_ + "/runc-commands.log";
    std::filesystem::create_directories(dir_);
    std::string wrapper = dir_ + "/runc";
    std::ofstream(wrapper) << "#!/bin/sh\n"
                           << "echo \"$*\" >> " << log_ << "\n"
                           << "exec /usr/sbin/runc \"$@\"\n";
    std::filesystem::permissions(wrapper, std::filesystem::perms::owner_all);
    // Each way twice: as built in, and with default rlimits for every container.
    std::string config;
    for (const char* limits : {"", "-limits"}) {
      for (const char* exec : {"monitor", "runtime"}) {
        config += std::string("[cri.runtimes.runc-") + exec + limits + "]\nruntime_path = \"" +
                  wrapper + "\"\nexec = \"" + exec + "\"\n";
        if (*limits) config += std::string("default_ulimits = [") + kLimits + "]\n";
      }
    }
    d_ = std::make_unique<Berthd>(config);
    ASSERT_TRUE(d_->start()) << d_->log();
    busybox_ = envKey("BERTH_TEST_IMAGE_BUSYBOX");
    ASSERT_TRUE(pullImage(*d_, busybox_).ok());
    pods_ = makePods("equiv", false);
  }

  // A pod under each handler: runtime's first.
  std::vector<std::pair<v1::PodSandboxConfig, std::string>> makePods(
      const std::string& name, bool privileged, const std::string& handlers = "") {
    std::vector<std::pair<v1::PodSandboxConfig, std::string>> pods;
    for (std::string handler : {"runc-runtime", "runc-monitor"}) {
      handler += handlers;
      v1::PodSandboxConfig pc = hostNetworkPod(name + "-" + handler);
      pc.mutable_linux()->mutable_security_context()->set_privileged(privileged);
      std::string id;
      grpc::Status st = runPod(*d_, pc, &id, handler);
      EXPECT_TRUE(st.ok()) << st.error_message() << "\n" << d_->log();
      pods.push_back({pc, id});
    }
    return pods;
  }

  void TearDown() override {
    d_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // The container `name` (configured by `setup`) in both pods: runtime's first.
  std::vector<std::string> run(const std::string& name,
                               const std::function<void(v1::ContainerConfig&)>& setup) {
    std::vector<std::string> ids;
    for (const auto& [pc, pod] : pods_) {
      v1::ContainerConfig c = sleepContainer(name, busybox_);
      setup(c);
      std::string id;
      grpc::Status st = createContainer(*d_, pod, c, pc, &id);
      EXPECT_TRUE(st.ok()) << st.error_message() << "\n" << d_->log();
      EXPECT_TRUE(startContainer(*d_, id).ok()) << d_->log();
      ids.push_back(id);
    }
    return ids;
  }

  // How many `runc exec` commands have run so far.
  int runcExecs() {
    std::ifstream in(log_);
    int n = 0;
    for (std::string line; std::getline(in, line);) {
      if (line.find(" exec ") != std::string::npos || line.rfind("exec ", 0) == 0) ++n;
    }
    return n;
  }

  // The probe's output by ExecSync in each; and whether the second (monitor) used runc exec.
  struct Probed {
    std::string runtime, monitor;
    bool monitor_used_runc = false;
  };

  // The `ns` and `cgroup` lines the probe prints when it runs in the namespaces and cgroups of
  // the container's init (seen from the host).
  static std::string initView(Berthd& d, const std::string& id) {
    v1::ContainerStatusResponse st = containerStatus(d, id, true);
    nlohmann::json info = nlohmann::json::parse(st.info().at("info"), nullptr, false);
    std::string pid = std::to_string(info.value("pid", 0));
    std::string out;
    for (const char* n : {"cgroup", "ipc", "mnt", "net", "pid", "uts", "user"}) {
      out += "ns " + std::filesystem::read_symlink("/proc/" + pid + "/ns/" + n).string() + "\n";
    }
    std::ifstream cg("/proc/" + pid + "/cgroup");
    for (std::string line; std::getline(cg, line);) out += "cgroup " + line + "\n";
    return out;
  }

  // Checks that the probe ran in the container's namespaces and cgroups, and returns its
  // output without those lines (they differ from container to container).
  static std::string inContainer(Berthd& d, const std::string& id, const std::string& probed) {
    std::string view, rest;
    std::istringstream in(probed);
    for (std::string line; std::getline(in, line);) {
      (line.rfind("ns ", 0) == 0 || line.rfind("cgroup ", 0) == 0 ? view : rest) += line + "\n";
    }
    EXPECT_EQ(view, initView(d, id)) << "not in the container's namespaces and cgroups";
    return rest;
  }
  Probed probe(const std::vector<std::string>& ids,
               const std::vector<std::string>& cmd = {"sh", "-c", kProbe}) {
    Probed p;
    std::string* outs[2] = {&p.runtime, &p.monitor};
    for (size_t i = 0; i < 2; ++i) {
      int before = runcExecs();
      v1::ExecSyncResponse r;
      grpc::Status st = execSync(*d_, ids[i], cmd, &r, 30);
      EXPECT_TRUE(st.ok()) << st.error_message();
      EXPECT_EQ(r.exit_code(), 0) << r.stderr();
      *outs[i] = cmd.size() == 3 && cmd[2] == kProbe ? inContainer(*d_, ids[i], r.stdout())
                                                     : r.stdout() + r.stderr();
      if (i == 0) {
        EXPECT_GT(runcExecs(), before) << "the runtime handler uses runc exec";
      } else {
        p.monitor_used_runc = runcExecs() > before;
      }
    }
    return p;
  }

  std::string dir_ = "/tmp/berth-exec-equiv-" + std::to_string(::getpid());
  std::string log_;
  std::unique_ptr<Berthd> d_;
  std::string busybox_;
  std::vector<std::pair<v1::PodSandboxConfig, std::string>> pods_;
};

TEST_F(ExecEquivalenceTest, DefaultContainer) {
  auto ids = run("default", [](v1::ContainerConfig&) {});
  Probed p = probe(ids);
  EXPECT_FALSE(p.monitor_used_runc);
  EXPECT_EQ(p.monitor, p.runtime);
}

TEST_F(ExecEquivalenceTest, UserGroupsCapabilitiesAndNoNewPrivs) {
  struct Case {
    std::string name;
    std::function<void(v1::ContainerConfig&)> setup;
  };
  std::vector<Case> cases = {
      {"user",
       [](v1::ContainerConfig& c) {
         auto* sc = c.mutable_linux()->mutable_security_context();
         sc->mutable_run_as_user()->set_value(1000);
         sc->mutable_run_as_group()->set_value(1001);
         sc->add_supplemental_groups(2000);
         sc->add_supplemental_groups(3000);
       }},
      {"caps",
       [](v1::ContainerConfig& c) {
         auto* caps = c.mutable_linux()->mutable_security_context()->mutable_capabilities();
         caps->add_drop_capabilities("ALL");
         caps->add_add_capabilities("CHOWN");
         caps->add_add_capabilities("NET_ADMIN");
       }},
      {"nnp",
       [](v1::ContainerConfig& c) {
         c.mutable_linux()->mutable_security_context()->set_no_new_privs(true);
       }},
      {"user-nnp-caps",
       [](v1::ContainerConfig& c) {
         auto* sc = c.mutable_linux()->mutable_security_context();
         sc->mutable_run_as_user()->set_value(4242);
         sc->set_no_new_privs(true);
         sc->mutable_capabilities()->add_add_capabilities("SYS_TIME");
         sc->set_readonly_rootfs(true);
         auto* kv = c.add_envs();
         kv->set_key("FROM_REQUEST");
         kv->set_value("1");
       }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto ids = run(c.name, c.setup);
    Probed p = probe(ids);
    EXPECT_FALSE(p.monitor_used_runc);
    EXPECT_EQ(p.monitor, p.runtime);
  }
}

TEST_F(ExecEquivalenceTest, PrivilegedContainer) {
  pods_ = makePods("equiv-privileged", true);
  auto ids = run("privileged", [](v1::ContainerConfig& c) {
    c.mutable_linux()->mutable_security_context()->set_privileged(true);
  });
  Probed p = probe(ids);
  EXPECT_FALSE(p.monitor_used_runc);
  EXPECT_EQ(p.monitor, p.runtime);
  // Every capability the host's bounding set has (root here lacks CAP_SYS_RESOURCE).
  std::ifstream self("/proc/self/status");
  std::string bounding;
  for (std::string line; std::getline(self, line);) {
    if (line.rfind("CapBnd:", 0) == 0) bounding = line.substr(7);
  }
  EXPECT_NE(p.runtime.find("CapEff:" + bounding + "\n"), std::string::npos) << p.runtime;
}

// A handler's default rlimits: the container's init has them (runc sets them), and an exec has
// them too (set by the shim with prlimit, as runc exec does). One difference on purpose: runc
// exec sets the limits on `runc init` with prlimit while the Go runtime in it raises the
// open-files soft limit to the hard one at start-up, so whichever comes last wins: a runc exec
// gets the spec's soft NOFILE or the hard one, at random. The shim's exec gets the spec's.
TEST_F(ExecEquivalenceTest, HandlerRlimits) {
  pods_ = makePods("equiv-limits", false, "-limits");
  auto ids = run("limits", [](v1::ContainerConfig&) {});
  Probed p = probe(ids);
  EXPECT_FALSE(p.monitor_used_runc);
  const std::string nofile =
      "Max open files            1024                 4096                 files     \n";
  const std::string raced =
      "Max open files            4096                 4096                 files     \n";
  std::string runtime = p.runtime;
  if (size_t at = runtime.find(raced); at != std::string::npos) {
    runtime.replace(at, raced.size(), nofile);  // runc's race went the other way
  }
  EXPECT_EQ(p.monitor, runtime);
  EXPECT_NE(p.monitor.find(nofile), std::string::npos) << p.monitor;
  // The container's init, seen from the host.
  nlohmann::json info =
      nlohmann::json::parse(containerStatus(*d_, ids[1], true).info().at("info"), nullptr, false);
  std::ifstream in("/proc/" + std::to_string(info.value("pid", 0)) + "/limits");
  std::string init((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const std::string* limits : {&p.monitor, &init}) {
    for (const char* line : {"Max open files            1024                 4096",
                             "Max core file size        0                    1000",
                             "Max locked memory         65536                131072"}) {
      EXPECT_NE(limits->find(line), std::string::npos) << line << "\n" << *limits;
    }
  }
}

// What the container may not do fails the same way from both.
TEST_F(ExecEquivalenceTest, WhatTheContainerCannotDoFailsTheSameWay) {
  auto ids = run("denied", [](v1::ContainerConfig& c) {
    auto* sc = c.mutable_linux()->mutable_security_context();
    sc->mutable_run_as_user()->set_value(1000);
    sc->set_readonly_rootfs(true);
  });
  const std::vector<std::string> cmd = {
      "sh", "-c",
      "touch /x 2>&1; chown 0 /proc/self/fd/1 2>&1; mount -t tmpfs t /tmp 2>&1; "
      "kill -0 1 2>&1; echo $?; hostname other 2>&1; echo done"};
  Probed p = probe(ids, cmd);
  EXPECT_FALSE(p.monitor_used_runc);
  EXPECT_EQ(p.monitor, p.runtime);
}

TEST_F(ExecEquivalenceTest, MissingBinaryFailsTheSameWay) {
  auto ids = run("missing", [](v1::ContainerConfig&) {});
  grpc::Status st[2];
  for (size_t i = 0; i < 2; ++i) {
    v1::ExecSyncResponse r;
    st[i] = execSync(*d_, ids[i], {"no-such-binary"}, &r, 30);
  }
  EXPECT_FALSE(st[0].ok());
  EXPECT_EQ(st[1].error_code(), st[0].error_code())
      << st[0].error_message() << " | " << st[1].error_message();
  for (const auto& s : st) {
    EXPECT_NE(s.error_message().find("\"no-such-binary\": executable file not found in $PATH"),
              std::string::npos)
        << s.error_message();
  }
}

// A terminal exec: the pty is opened in the container, is the controlling terminal and stdio.
TEST_F(ExecEquivalenceTest, TerminalExec) {
  auto ids = run("tty", [](v1::ContainerConfig&) {});
  const std::string probe =
      "grep -E '^(Uid|Gid|Groups|CapEff|NoNewPrivs|SigIgn):' /proc/self/status; tty; "
      "stty -a | head -3; stat -c '%u:%g %a' $(tty); "
      "set -- $(sed 's/.*) //' /proc/$$/stat); echo \"tty_nr $5 tpgid is pid: "
      "$([ \"$6\" = \"$$\" ] && echo yes || echo no)\"; env | grep -v '^HOSTNAME=' | sort; exit 3";
  std::string outs[2];
  for (size_t i = 0; i < 2; ++i) {
    int before = runcExecs();
    std::string url = execUrl(*d_, ids[i], {"sh", "-c", probe}, false, true, false, true);
    auto c = streaming::CommandClient::connect(
        url, {.stdin = false, .stdout = true, .stderr = false, .tty = true});
    ASSERT_TRUE(c.ok()) << c.status();
    auto r = (*c)->run([&](int, std::string_view data) { outs[i].append(data); });
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->exit_code, 3) << r->status_json;
    EXPECT_EQ(runcExecs() > before, i == 0) << "runc exec only for the runtime handler";
  }
  EXPECT_EQ(outs[1], outs[0]);
  EXPECT_NE(outs[0].find("/dev/pts/"), std::string::npos) << outs[0];
}

// The seccomp filter process `pid` (on the host) has loaded, newest first, read with ptrace
// (PTRACE_SECCOMP_GET_FILTER, which needs the tracee stopped).
std::vector<std::vector<sock_filter>> loadedFilters(pid_t pid) {
  std::vector<std::vector<sock_filter>> filters;
  if (::ptrace(PTRACE_SEIZE, pid, nullptr, nullptr) != 0) {
    ADD_FAILURE() << "ptrace " << pid << ": " << std::strerror(errno);
    return filters;
  }
  int status = 0;
  ::ptrace(PTRACE_INTERRUPT, pid, nullptr, nullptr);
  ::waitpid(pid, &status, __WALL);
  for (long index = 0;; ++index) {
    long n = ::ptrace(PTRACE_SECCOMP_GET_FILTER, pid, reinterpret_cast<void*>(index), nullptr);
    if (n <= 0) {
      EXPECT_EQ(errno, ENOENT) << "filter " << index << ": " << std::strerror(errno);
      break;
    }
    std::vector<sock_filter> f(static_cast<size_t>(n));
    ::ptrace(PTRACE_SECCOMP_GET_FILTER, pid, reinterpret_cast<void*>(index), f.data());
    filters.push_back(std::move(f));
  }
  ::ptrace(PTRACE_DETACH, pid, nullptr, nullptr);
  return filters;
}

// Where libseccomp's program starts in a loaded filter: its one `ld [4]` (the architecture),
// the last one, after runc's -ENOSYS stub (which starts with one too).
size_t libseccompStart(const std::vector<sock_filter>& f) {
  size_t start = 0;
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i].code == (BPF_LD | BPF_W | BPF_ABS) && f[i].k == 4) start = i;
  }
  return start;
}

class ExecSeccompTest : public ExecEquivalenceTest {
 protected:
  // The host pid of the process whose pid is `inner` in container `id`'s pid namespace.
  pid_t hostPid(const std::string& id, const std::string& inner) {
    nlohmann::json info =
        nlohmann::json::parse(containerStatus(*d_, id, true).info().at("info"), nullptr, false);
    std::string init = "/proc/" + std::to_string(info.value("pid", 0));
    auto ns = std::filesystem::read_symlink(init + "/ns/pid");
    for (const auto& e : std::filesystem::directory_iterator("/proc")) {
      std::error_code ec;
      if (std::filesystem::read_symlink(e.path() / "ns/pid", ec) != ns || ec) continue;
      std::ifstream status(e.path() / "status");
      for (std::string line; std::getline(status, line);) {
        if (line.rfind("NSpid:", 0) == 0 && line.substr(line.find_last_of(" \t") + 1) == inner) {
          return std::stoi(e.path().filename().string());
        }
      }
    }
    ADD_FAILURE() << "no process " << inner << " in container " << id;
    return 0;
  }

  // The filter each exec runs under, from a process it leaves behind (which inherits it): the
  // two are one program. libseccomp's part is compared byte for byte; runc's stub puts its
  // per-architecture parts in a random order (it walks Go maps), so the whole programs are
  // compared by what they return for every syscall number of each architecture.
  void expectSameFilter(const std::vector<std::string>& ids) {
    std::vector<sock_filter> f[2];
    for (size_t i = 0; i < 2; ++i) {
      v1::ExecSyncResponse r;
      grpc::Status st = execSync(
          *d_, ids[i], {"sh", "-c", "sleep 600 </dev/null >/dev/null 2>&1 & echo $!"}, &r, 30);
      ASSERT_TRUE(st.ok()) << st.error_message();
      std::string inner = r.stdout().substr(0, r.stdout().find('\n'));
      pid_t pid = hostPid(ids[i], inner);
      ASSERT_GT(pid, 0);
      auto filters = loadedFilters(pid);
      ::kill(pid, SIGKILL);
      ASSERT_EQ(filters.size(), 1u) << "one filter: the exec's own";
      f[i] = filters[0];
    }
    ASSERT_EQ(f[1].size(), f[0].size());
    size_t start = libseccompStart(f[0]);
    ASSERT_EQ(libseccompStart(f[1]), start);
    EXPECT_EQ(0, std::memcmp(f[0].data() + start, f[1].data() + start,
                             (f[0].size() - start) * sizeof(sock_filter)))
        << "libseccomp's program differs";
    int differ = 0;
    for (uint32_t arch :
         {uint32_t{AUDIT_ARCH_X86_64}, uint32_t{AUDIT_ARCH_I386}, uint32_t{AUDIT_ARCH_AARCH64}}) {
      for (int32_t nr = 0; nr < 1100; ++nr) {
        for (int32_t x32 : {0, 0x40000000}) {
          SyscallInput in{.nr = nr | x32, .arch = arch, .args = {1, 2, 3, 4, 5, 6}};
          std::string why[2];
          auto a = evalSeccomp(f[0], in, &why[0]), b = evalSeccomp(f[1], in, &why[1]);
          ASSERT_TRUE(a && b) << why[0] << why[1];
          if (*a != *b && differ++ < 5) {
            ADD_FAILURE() << "syscall " << (nr | x32) << " arch " << arch << ": " << *a
                          << " (runc) vs " << *b;
          }
        }
      }
    }
    EXPECT_EQ(differ, 0);
  }

  void useProfile(v1::ContainerConfig& c, const nlohmann::json& profile) {
    std::string path = dir_ + "/profile-" + std::to_string(profiles_++) + ".json";
    std::ofstream(path) << profile.dump();
    auto* sp = c.mutable_linux()->mutable_security_context()->mutable_seccomp();
    sp->set_profile_type(v1::SecurityProfile::Localhost);
    sp->set_localhost_ref(path);
  }

  // Probes each and checks the two execs are alike and under the filter (and the monitor's
  // without runc), then that the filters are one program.
  void expectSameUnderSeccomp(const std::vector<std::string>& ids,
                              const std::vector<std::string>& behaviour, const std::string& seen) {
    Probed p = probe(ids);
    EXPECT_FALSE(p.monitor_used_runc);
    EXPECT_EQ(p.monitor, p.runtime);
    EXPECT_NE(p.runtime.find("Seccomp:\t2"), std::string::npos) << p.runtime;
    EXPECT_NE(p.runtime.find("Seccomp_filters:\t1"), std::string::npos) << p.runtime;
    Probed b = probe(ids, behaviour);
    EXPECT_FALSE(b.monitor_used_runc);
    EXPECT_EQ(b.monitor, b.runtime);
    EXPECT_NE(b.runtime.find(seen), std::string::npos) << b.runtime;
    expectSameFilter(ids);
  }

  int profiles_ = 0;
};

// The default profile, loaded early (no no_new_privs) while the process is still root.
TEST_F(ExecSeccompTest, RuntimeDefault) {
  auto ids = run("seccomp", [](v1::ContainerConfig& c) {
    c.mutable_linux()->mutable_security_context()->mutable_seccomp()->set_profile_type(
        v1::SecurityProfile::RuntimeDefault);
  });
  expectSameUnderSeccomp(ids, {"sh", "-c", "mount -t tmpfs t /mnt 2>&1; echo done"},
                         "permission denied");
}

// With no_new_privs the filter is loaded last, after the switch to the user.
TEST_F(ExecSeccompTest, RuntimeDefaultWithNoNewPrivsAndAUser) {
  auto ids = run("seccomp-nnp", [](v1::ContainerConfig& c) {
    auto* sc = c.mutable_linux()->mutable_security_context();
    sc->mutable_seccomp()->set_profile_type(v1::SecurityProfile::RuntimeDefault);
    sc->set_no_new_privs(true);
    sc->mutable_run_as_user()->set_value(1000);
    sc->mutable_capabilities()->add_add_capabilities("SYS_ADMIN");
  });
  expectSameUnderSeccomp(ids, {"sh", "-c", "mount -t tmpfs t /mnt 2>&1; id; echo done"},
                         "uid=1000");
}

// A profile that allows by default (no stub): errnos, a condition list on one argument (each
// its own rule), a log action, and a syscall name libseccomp does not know.
TEST_F(ExecSeccompTest, LocalhostAllowByDefault) {
  nlohmann::json profile = {
      {"defaultAction", "SCMP_ACT_ALLOW"},
      {"architectures", {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}},
      {"syscalls",
       {{{"names", {"mkdir", "mkdirat"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 99}},
        {{"names", {"chmod", "fchmodat"}}, {"action", "SCMP_ACT_ERRNO"}},
        {{"names", {"sethostname"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 38}},
        {{"names", {"no_such_syscall"}}, {"action", "SCMP_ACT_KILL"}},
        {{"names", {"uname"}}, {"action", "SCMP_ACT_LOG"}},
        {{"names", {"personality"}},
         {"action", "SCMP_ACT_ERRNO"},
         {"args",
          {{{"index", 0}, {"value", 1}, {"op", "SCMP_CMP_EQ"}},
           {{"index", 0}, {"value", 2}, {"op", "SCMP_CMP_EQ"}}}}}}}};
  auto ids = run("seccomp-allow", [&](v1::ContainerConfig& c) { useProfile(c, profile); });
  expectSameUnderSeccomp(
      ids,
      {"sh", "-c", "mkdir /tmp/d 2>&1; chmod 700 /tmp 2>&1; hostname x 2>&1; uname -s; echo done"},
      "Cannot assign requested address");
}

// The default profile's rules on x86_64 alone, with ENOSYS as the default errno: runc 1.1.5
// still puts its stub in front (it compares defaultErrnoRet with the action's value).
TEST_F(ExecSeccompTest, LocalhostOneArchitectureAndEnosysDefault) {
  auto base = run("seccomp-base", [](v1::ContainerConfig& c) {
    c.mutable_linux()->mutable_security_context()->mutable_seccomp()->set_profile_type(
        v1::SecurityProfile::RuntimeDefault);
  });
  nlohmann::json spec =
      nlohmann::json::parse(containerStatus(*d_, base[0], true).info().at("info"))["runtimeSpec"];
  nlohmann::json profile = spec["linux"]["seccomp"];
  ASSERT_TRUE(profile.is_object()) << spec.dump();
  profile["architectures"] = {"SCMP_ARCH_X86_64"};
  profile["defaultErrnoRet"] = 38;
  auto ids = run("seccomp-enosys", [&](v1::ContainerConfig& c) { useProfile(c, profile); });
  expectSameUnderSeccomp(ids, {"sh", "-c", "mount -t tmpfs t /mnt 2>&1; echo done"},
                         "Function not implemented");
}

}  // namespace
}  // namespace berth::testing
