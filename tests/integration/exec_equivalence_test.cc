// Issue 15, point 5: an exec started by berth-shim itself (`exec = "monitor"`) is the process
// `runc exec` would have started. One berthd, two handlers on the same runc (through a wrapper
// that records the runc commands): "runc" starts execs with `runc exec`, "runc-monitor" from the
// shim. The same container in a pod of each; one probe by ExecSync in each; outputs compared.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "berthd_fixture.h"
#include "cri_calls.h"
#include "nlohmann/json.hpp"
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
    d_ = std::make_unique<Berthd>("[cri.runtimes.runc-monitor]\nruntime_path = \"" + wrapper +
                                  "\"\nexec = \"monitor\"\n[cri.runtimes.runc-runtime]\n"
                                  "runtime_path = \"" +
                                  wrapper + "\"\nexec = \"runtime\"\n");
    ASSERT_TRUE(d_->start()) << d_->log();
    busybox_ = envKey("BERTH_TEST_IMAGE_BUSYBOX");
    ASSERT_TRUE(pullImage(*d_, busybox_).ok());
    pods_ = makePods("equiv", false);
  }

  // A pod under each handler: runtime's first.
  std::vector<std::pair<v1::PodSandboxConfig, std::string>> makePods(const std::string& name,
                                                                     bool privileged) {
    std::vector<std::pair<v1::PodSandboxConfig, std::string>> pods;
    for (const char* handler : {"runc-runtime", "runc-monitor"}) {
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

// Settings the monitor does not apply itself go to runc exec: never started with less.
TEST_F(ExecEquivalenceTest, SeccompContainerExecsThroughRunc) {
  auto ids = run("seccomp", [](v1::ContainerConfig& c) {
    c.mutable_linux()->mutable_security_context()->mutable_seccomp()->set_profile_type(
        v1::SecurityProfile::RuntimeDefault);
  });
  Probed p = probe(ids);
  EXPECT_TRUE(p.monitor_used_runc);
  EXPECT_EQ(p.monitor, p.runtime);
  EXPECT_NE(p.runtime.find("Seccomp:\t2"), std::string::npos) << p.runtime;
}

}  // namespace
}  // namespace berth::testing
