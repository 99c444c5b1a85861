// Tests for the application container spec built from a CRI container config.
#include "oci/container_spec.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "absl/strings/match.h"
#include "common/test_dir.h"
#include "gtest/gtest.h"
#include "oci/capabilities.h"
#include "oci/oom.h"
#include "oci/spec.h"

namespace berth::oci {
namespace {

using nlohmann::json;
using sandbox::NamespaceMode;
using testing::TestDir;

constexpr uint32_t kPausePid = 4242;

class ContainerSpecTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(rootfs_ / "etc");
    std::ofstream(rootfs_ / "etc/passwd") << "root:x:0:0::/root:/bin/sh\n"
                                             "web:x:1000:1000::/:/bin/sh\n";
    std::ofstream(rootfs_ / "etc/group") << "root:x:0:\nweb:x:1000:\nstaff:x:50:web\n";
    for (const char* f : {"hosts", "resolv.conf", "hostname"}) std::ofstream(pod_ / f) << "x\n";
    std::filesystem::create_directories(pod_ / "shm");
    std::ofstream(pod_ / "mountinfo") << "20 1 8:1 / / rw - ext4 /dev/sda rw\n";

    sandbox_.name = "web-pod";
    sandbox_.ns = "default";
    sandbox_.uid = "uid-1";
    sandbox_.hostname = "web-host";
    config_.name = "web";
    config_.image = "docker.io/library/nginx:1.25";
    image_ = {{"config",
               {{"Env", {"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C", "NGINX=1.25"}},
                {"Entrypoint", {"/docker-entrypoint.sh"}},
                {"Cmd", {"nginx", "-g", "daemon off;"}},
                {"WorkingDir", "/srv"},
                {"StopSignal", "SIGQUIT"}}}};
  }

  ContainerSpecInput input() {
    ContainerSpecInput in;
    in.id = "c0ffee";
    in.sandbox_id = "5a4d";
    in.config = &config_;
    in.sandbox = &sandbox_;
    in.image_config = &image_;
    in.rootfs = rootfs_.path();
    in.sandbox_pid = kPausePid;
    in.hosts_path = pod_ / "hosts";
    in.resolv_conf_path = pod_ / "resolv.conf";
    in.hostname_path = pod_ / "hostname";
    in.shm_path = pod_ / "shm";
    in.mountinfo_path = pod_ / "mountinfo";
    in.host = HostFacts{.cgroup_unified = false,
                        .swap_limit = true,
                        .hugetlb = true,
                        .seccomp = true,
                        .apparmor = false};
    return in;
  }

  absl::StatusOr<json> build(const std::function<void(ContainerSpecInput&)>& tweak = {}) {
    ContainerSpecInput in = input();
    if (tweak) tweak(in);
    return buildContainerSpec(in);
  }

  json mustBuild(const std::function<void(ContainerSpecInput&)>& tweak = {}) {
    auto s = build(tweak);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *s : json();
  }

  void expectError(absl::StatusCode code, const std::string& part,
                   const std::function<void(ContainerSpecInput&)>& tweak = {}) {
    auto s = build(tweak);
    ASSERT_FALSE(s.ok()) << part;
    EXPECT_EQ(s.status().code(), code) << s.status();
    EXPECT_NE(s.status().message().find(part), absl::string_view::npos) << s.status();
    EXPECT_TRUE(absl::StartsWith(s.status().message(), "container \"web\": ")) << s.status();
  }

  static const json* ns(const json& spec, const std::string& type) {
    for (const json& n : spec["linux"]["namespaces"]) {
      if (n["type"] == type) return &n;
    }
    return nullptr;
  }

  TestDir rootfs_;
  TestDir pod_;
  sandbox::SandboxConfig sandbox_;
  ContainerConfig config_;
  json image_;
};

// ---- process --------------------------------------------------------------------------------

struct ArgsCase {
  const char* name;
  std::vector<std::string> command, args;
  json entrypoint, cmd;           // null = unset in the image
  std::vector<std::string> want;  // empty = "no command specified"
};

TEST_F(ContainerSpecTest, Args) {
  const ArgsCase cases[] = {
      {"image only", {}, {}, {"/ep"}, {"run", "x"}, {"/ep", "run", "x"}},
      {"args replace Cmd", {}, {"a", "b"}, {"/ep"}, {"run"}, {"/ep", "a", "b"}},
      {"command drops Cmd", {"/bin/sh"}, {}, {"/ep"}, {"run"}, {"/bin/sh"}},
      {"command and args", {"/bin/sh"}, {"-c", "ls"}, {"/ep"}, {"run"}, {"/bin/sh", "-c", "ls"}},
      {"no entrypoint", {}, {}, nullptr, {"nginx"}, {"nginx"}},
      {"entrypoint reset", {}, {}, {""}, {"nginx"}, {"nginx"}},
      {"args without image entrypoint", {}, {"echo", "hi"}, nullptr, nullptr, {"echo", "hi"}},
      {"nothing", {}, {}, nullptr, nullptr, {}},
      {"reset entrypoint and no cmd", {}, {}, {""}, json::array(), {}},
  };
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.name);
    config_.command = tc.command;
    config_.args = tc.args;
    image_["config"]["Entrypoint"] = tc.entrypoint;
    image_["config"]["Cmd"] = tc.cmd;
    if (tc.want.empty()) {
      expectError(absl::StatusCode::kInvalidArgument, "no command specified");
    } else {
      EXPECT_EQ(mustBuild()["process"]["args"], json(tc.want));
    }
  }
}

TEST_F(ContainerSpecTest, Env) {
  config_.envs = {{"LANG", "en_US.UTF-8"}, {"EXTRA", "a=b"}, {"HOSTNAME", "override"}};
  json s = mustBuild();
  EXPECT_EQ(s["process"]["env"], (json{"PATH=/usr/local/bin:/usr/bin:/bin", "HOSTNAME=override",
                                       "LANG=en_US.UTF-8", "NGINX=1.25", "EXTRA=a=b"}));

  config_.envs.clear();
  image_["config"]["Env"] = {"FOO=1"};
  s = mustBuild();
  EXPECT_EQ(s["process"]["env"],
            (json{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                  "HOSTNAME=web-host", "FOO=1"}));

  s = mustBuild([](ContainerSpecInput& in) { in.hostname = "given"; });
  EXPECT_EQ(s["process"]["env"][1], "HOSTNAME=given");

  config_.envs = {{"", "x"}};
  expectError(absl::StatusCode::kInvalidArgument, "empty name");
}

TEST_F(ContainerSpecTest, WorkingDirAndTerminal) {
  struct Case {
    std::string config_dir;
    json image_dir;
    std::string want;  // "" = error
  } cases[] = {
      {"/app", "/srv", "/app"}, {"", "/srv", "/srv"}, {"", nullptr, "/"}, {"", "", "/"},
      {"relative", "/srv", ""}, {"", "srv", ""},
  };
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.config_dir + " / " + tc.image_dir.dump());
    config_.working_dir = tc.config_dir;
    image_["config"]["WorkingDir"] = tc.image_dir;
    if (tc.want.empty()) {
      expectError(absl::StatusCode::kInvalidArgument, "is not an absolute path");
    } else {
      EXPECT_EQ(mustBuild()["process"]["cwd"], tc.want);
    }
  }
  config_.working_dir.clear();
  expectError(absl::StatusCode::kInvalidArgument, "no command specified",
              [](ContainerSpecInput& in) { in.image_config = nullptr; });
  config_.tty = true;
  config_.command = {"/bin/sh"};
  json s = mustBuild([](ContainerSpecInput& in) { in.image_config = nullptr; });
  EXPECT_EQ(s["process"]["terminal"], true);
  EXPECT_EQ(s["process"]["cwd"], "/");
}

TEST_F(ContainerSpecTest, User) {
  json s = mustBuild();
  EXPECT_EQ(s["process"]["user"], (json{{"uid", 0}, {"gid", 0}, {"additionalGids", {0}}}));

  image_["config"]["User"] = "web";
  s = mustBuild();
  EXPECT_EQ(s["process"]["user"],
            (json{{"uid", 1000}, {"gid", 1000}, {"additionalGids", {50, 1000}}}));

  config_.security.run_as_user = 0;
  config_.security.supplemental_groups = {7};
  s = mustBuild();
  EXPECT_EQ(s["process"]["user"], (json{{"uid", 0}, {"gid", 0}, {"additionalGids", {0, 7}}}));

  config_.security.run_as_user.reset();
  config_.security.run_as_group = 5;
  expectError(absl::StatusCode::kInvalidArgument, "a group without a user");

  config_.security.run_as_group.reset();
  config_.security.run_as_username = "nobody";
  expectError(absl::StatusCode::kNotFound, "user \"nobody\"");
}

// ---- security -------------------------------------------------------------------------------

std::vector<std::string> without(std::vector<std::string> v, const std::string& x) {
  v.erase(std::remove(v.begin(), v.end(), x), v.end());
  return v;
}

TEST(CapabilityChangesTest, Table) {
  const std::vector<std::string> base = {"CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"};
  const std::vector<std::string> all = {"CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SYS_ADMIN",
                                        "CAP_NET_ADMIN"};
  struct Case {
    const char* name;
    std::vector<std::string> add, drop, want;
  } cases[] = {
      {"nothing", {}, {}, base},
      {"add short name",
       {"net_admin"},
       {},
       {"CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_NET_ADMIN"}},
      {"add prefixed",
       {"CAP_SYS_ADMIN"},
       {},
       {"CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SYS_ADMIN"}},
      {"add existing", {"KILL"}, {}, base},
      {"drop", {}, {"NET_RAW"}, {"CAP_CHOWN", "CAP_KILL"}},
      {"drop wins over add", {"SYS_ADMIN"}, {"sys_admin"}, base},
      {"drop ALL", {}, {"ALL"}, {}},
      {"drop ALL then add", {"NET_BIND_SERVICE"}, {"all"}, {"CAP_NET_BIND_SERVICE"}},
      {"add ALL", {"ALL"}, {}, all},
      {"add ALL drop one",
       {"ALL"},
       {"CHOWN"},
       {"CAP_KILL", "CAP_NET_RAW", "CAP_SYS_ADMIN", "CAP_NET_ADMIN"}},
      {"add ALL and drop ALL", {"ALL", "KILL"}, {"ALL"}, {"CAP_KILL"}},
  };
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.name);
    auto got = applyCapabilityChanges(base, all, tc.add, tc.drop);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, tc.want);
  }
  auto bad = applyCapabilityChanges(base, all, {"FOO"}, {});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "capability \"FOO\" is unknown");
  EXPECT_FALSE(applyCapabilityChanges(base, all, {}, {"CAP_NOPE"}).ok());
}

TEST_F(ContainerSpecTest, CapabilitiesInSpec) {
  json s = mustBuild();
  EXPECT_EQ(s["process"]["capabilities"]["bounding"], json(defaultCapabilities()));
  EXPECT_EQ(s["process"]["capabilities"]["effective"], json(defaultCapabilities()));
  EXPECT_EQ(s["process"]["capabilities"]["permitted"], json(defaultCapabilities()));
  EXPECT_FALSE(s["process"]["capabilities"].contains("inheritable"));

  config_.security.add_capabilities = {"SYS_TIME"};
  config_.security.drop_capabilities = {"MKNOD"};
  s = mustBuild();
  auto want = without(defaultCapabilities(), "CAP_MKNOD");
  want.push_back("CAP_SYS_TIME");
  EXPECT_EQ(s["process"]["capabilities"]["bounding"], json(want));

  config_.security.add_capabilities = {"CAP_FOO"};
  expectError(absl::StatusCode::kInvalidArgument, "capability \"CAP_FOO\" is unknown");
}

TEST_F(ContainerSpecTest, NoNewPrivsAndReadonlyRoot) {
  json s = mustBuild();
  EXPECT_EQ(s["process"]["noNewPrivileges"], false);
  EXPECT_EQ(s["root"], (json{{"path", rootfs_.path()}, {"readonly", false}}));
  config_.security.no_new_privs = true;
  config_.security.readonly_rootfs = true;
  s = mustBuild();
  EXPECT_EQ(s["process"]["noNewPrivileges"], true);
  EXPECT_EQ(s["root"]["readonly"], true);
  for (const json& m : s["mounts"]) {
    if (m["destination"] == "/etc/hosts") {
      EXPECT_EQ(m["options"].back(), "ro");
    }
  }
}

TEST_F(ContainerSpecTest, MaskedAndReadonlyPaths) {
  json defaults = defaultSpec()["linux"];
  json s = mustBuild();
  EXPECT_EQ(s["linux"]["maskedPaths"], defaults["maskedPaths"]);
  EXPECT_EQ(s["linux"]["readonlyPaths"], defaults["readonlyPaths"]);

  config_.security.masked_paths = {"/proc/kcore"};
  s = mustBuild();
  EXPECT_EQ(s["linux"]["maskedPaths"], json{"/proc/kcore"});
  EXPECT_EQ(s["linux"]["readonlyPaths"], defaults["readonlyPaths"]);

  config_.security.readonly_paths = {"/proc/sys", "/proc/bus"};
  s = mustBuild();
  EXPECT_EQ(s["linux"]["readonlyPaths"], (json{"/proc/sys", "/proc/bus"}));
}

TEST_F(ContainerSpecTest, Privileged) {
  config_.security.privileged = true;
  expectError(absl::StatusCode::kInvalidArgument, "pod sandbox is not privileged");

  sandbox_.privileged = true;
  config_.security.seccomp = SecurityProfile{SecurityProfileType::kRuntimeDefault, ""};
  config_.security.masked_paths = {"/proc/kcore"};
  config_.security.drop_capabilities = {"ALL"};
  TestDir dev;  // an empty host /dev: only the allow-all rule
  json s = mustBuild([&dev](ContainerSpecInput& in) {
    in.host_dev_dir = dev.path();
    in.host.cgroup_unified = true;
  });
  EXPECT_EQ(s["process"]["capabilities"]["bounding"], json(currentCapabilities()));
  EXPECT_FALSE(s["linux"].contains("maskedPaths"));
  EXPECT_FALSE(s["linux"].contains("readonlyPaths"));
  EXPECT_FALSE(s["linux"].contains("seccomp"));
  EXPECT_EQ(s["linux"]["resources"]["devices"],
            json::array({{{"allow", true}, {"access", "rwm"}}}));
  EXPECT_EQ(ns(s, "cgroup"), nullptr);
  for (const json& m : s["mounts"]) {
    if (m["destination"] == "/sys" || m["destination"] == "/sys/fs/cgroup") {
      EXPECT_EQ(m["options"].back(), "rw") << m;
      EXPECT_EQ(std::count(m["options"].begin(), m["options"].end(), "ro"), 0) << m;
    }
  }
}

TEST_F(ContainerSpecTest, Seccomp) {
  json s = mustBuild();
  EXPECT_FALSE(s["linux"].contains("seccomp")) << "unset = unconfined";

  config_.security.seccomp = SecurityProfile{SecurityProfileType::kUnconfined, ""};
  EXPECT_FALSE(mustBuild()["linux"].contains("seccomp"));

  config_.security.seccomp = SecurityProfile{SecurityProfileType::kRuntimeDefault, ""};
  s = mustBuild();
  EXPECT_EQ(s["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
  auto allowsMount = [](const json& profile) {
    for (const json& rule : profile["syscalls"]) {
      for (const json& n : rule["names"]) {
        if (n == "mount") return true;
      }
    }
    return false;
  };
  EXPECT_FALSE(allowsMount(s["linux"]["seccomp"]));
  config_.security.add_capabilities = {"SYS_ADMIN"};
  EXPECT_TRUE(allowsMount(mustBuild()["linux"]["seccomp"])) << "follows the final capabilities";

  expectError(absl::StatusCode::kFailedPrecondition, "seccomp is not supported",
              [](ContainerSpecInput& in) { in.host.seccomp = false; });

  config_.security.seccomp = SecurityProfile{SecurityProfileType::kRuntimeDefault, "/x.json"};
  expectError(absl::StatusCode::kInvalidArgument, "localhost_ref must only be set");

  std::ofstream(pod_ / "profile.json")
      << R"({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["kill"],)"
      << R"("action":"SCMP_ACT_ERRNO"}]})";
  config_.security.seccomp =
      SecurityProfile{SecurityProfileType::kLocalhost, pod_ / "profile.json"};
  s = mustBuild();
  EXPECT_EQ(s["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ALLOW");
  EXPECT_EQ(s["linux"]["seccomp"]["syscalls"][0]["names"], json{"kill"});

  config_.security.seccomp = SecurityProfile{SecurityProfileType::kLocalhost, pod_ / "nope.json"};
  expectError(absl::StatusCode::kNotFound, pod_ / "nope.json");
  config_.security.seccomp = SecurityProfile{SecurityProfileType::kLocalhost, "profile.json"};
  expectError(absl::StatusCode::kInvalidArgument, "\"profile.json\" is not an absolute path");
}

TEST_F(ContainerSpecTest, AppArmor) {
  using T = SecurityProfileType;
  // No AppArmor on the host (as on this project's machines).
  EXPECT_FALSE(mustBuild()["process"].contains("apparmorProfile"));
  config_.security.apparmor = SecurityProfile{T::kRuntimeDefault, ""};
  EXPECT_FALSE(mustBuild()["process"].contains("apparmorProfile"));
  config_.security.apparmor = SecurityProfile{T::kLocalhost, "my-profile"};
  expectError(absl::StatusCode::kFailedPrecondition, "AppArmor is not enabled");

  auto enabled = [](ContainerSpecInput& in) {
    in.host.apparmor = true;
    in.apparmor_default_profile = "berth-default";
  };
  EXPECT_EQ(mustBuild(enabled)["process"]["apparmorProfile"], "my-profile");
  config_.security.apparmor = SecurityProfile{T::kLocalhost, "localhost/prefixed"};
  EXPECT_EQ(mustBuild(enabled)["process"]["apparmorProfile"], "prefixed");
  config_.security.apparmor.reset();
  EXPECT_EQ(mustBuild(enabled)["process"]["apparmorProfile"], "berth-default");
  config_.security.apparmor = SecurityProfile{T::kUnconfined, ""};
  EXPECT_FALSE(mustBuild(enabled)["process"].contains("apparmorProfile"));
  config_.security.apparmor = SecurityProfile{T::kRuntimeDefault, ""};
  EXPECT_FALSE(
      mustBuild([](ContainerSpecInput& in) { in.host.apparmor = true; })["process"].contains(
          "apparmorProfile"))
      << "no default profile configured";
}

// ---- resources ------------------------------------------------------------------------------

TEST_F(ContainerSpecTest, Resources) {
  ContainerResources& r = config_.resources;
  r.cpu_period = 100000;
  r.cpu_quota = 50000;
  r.cpu_shares = 512;
  r.cpuset_cpus = "0-1";
  r.cpuset_mems = "0";
  r.memory_limit_in_bytes = 256 << 20;
  r.hugepage_limits = {{"2MB", 4 << 20}, {"1GB", 0}};
  r.oom_score_adj = 500;
  json s = mustBuild();
  const json& res = s["linux"]["resources"];
  EXPECT_EQ(
      res["cpu"],
      (json{
          {"period", 100000}, {"quota", 50000}, {"shares", 512}, {"cpus", "0-1"}, {"mems", "0"}}));
  EXPECT_EQ(res["memory"], (json{{"limit", 256 << 20}, {"swap", 256 << 20}}));
  EXPECT_EQ(res["hugepageLimits"],
            (json{{{"pageSize", "2MB"}, {"limit", 4 << 20}}, {{"pageSize", "1GB"}, {"limit", 0}}}));
  EXPECT_EQ(res["devices"], (json{{{"allow", false}, {"access", "rwm"}}}));
  EXPECT_EQ(s["process"]["oomScoreAdj"], clampOomScoreAdj(500));
  EXPECT_EQ(s["linux"]["cgroupsPath"], "/berth/c0ffee");

  r.memory_swap_limit_in_bytes = 512 << 20;
  EXPECT_EQ(mustBuild()["linux"]["resources"]["memory"]["swap"], 512 << 20);
  s = mustBuild([](ContainerSpecInput& in) {
    in.host.swap_limit = false;
    in.host.hugetlb = false;
  });
  EXPECT_EQ(s["linux"]["resources"]["memory"], (json{{"limit", 256 << 20}}));
  EXPECT_FALSE(s["linux"]["resources"].contains("hugepageLimits"));

  sandbox_.cgroup_parent = "/kubepods/burstable/poduid-1/";
  EXPECT_EQ(mustBuild()["linux"]["cgroupsPath"], "/kubepods/burstable/poduid-1/c0ffee");

  // unified: on a cgroup v2 host; refused by name on v1 (runc would refuse it at create).
  r.unified = {{"memory.high", "200000000"}};
  auto v2 = [](ContainerSpecInput& in) { in.host.cgroup_unified = true; };
  EXPECT_EQ(mustBuild(v2)["linux"]["resources"]["unified"], (json{{"memory.high", "200000000"}}));
  expectError(absl::StatusCode::kInvalidArgument, "resources.unified needs a cgroup v2");
}

TEST_F(ContainerSpecTest, NoResources) {
  json s = mustBuild();
  EXPECT_FALSE(s["linux"]["resources"].contains("cpu"));
  EXPECT_FALSE(s["linux"]["resources"].contains("memory"));
  EXPECT_EQ(s["process"]["oomScoreAdj"], clampOomScoreAdj(0));
}

TEST_F(ContainerSpecTest, DefaultPidsLimitUnlessTheConfigSetsOne) {
  EXPECT_FALSE(mustBuild()["linux"]["resources"].contains("pids"));
  auto with_default = [](ContainerSpecInput& in) { in.default_pids_limit = 4096; };
  EXPECT_EQ(mustBuild(with_default)["linux"]["resources"]["pids"], (json{{"limit", 4096}}));
  config_.resources.unified["pids.max"] = "100";
  json s = mustBuild([&](ContainerSpecInput& in) {
    with_default(in);
    in.host.cgroup_unified = true;
  });
  EXPECT_FALSE(s["linux"]["resources"].contains("pids")) << "the container's own limit wins";
  EXPECT_EQ(s["linux"]["resources"]["unified"]["pids.max"], "100");
}

TEST_F(ContainerSpecTest, HandlerRlimitsGoToTheProcess) {
  EXPECT_FALSE(mustBuild()["process"].contains("rlimits"));
  json s = mustBuild([](ContainerSpecInput& in) {
    in.rlimits = {{.type = "RLIMIT_NOFILE", .soft = 1024, .hard = 2048}};
  });
  EXPECT_EQ(s["process"]["rlimits"],
            json::parse(R"([{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 2048}])"));
}

TEST_F(ContainerSpecTest, OomScoreAdjClamp) {
  // A negative value is raised to what this process may set (see machine-notes).
  config_.resources.oom_score_adj = -999;
  EXPECT_EQ(mustBuild()["process"]["oomScoreAdj"], clampOomScoreAdj(-999));
  EXPECT_GE(mustBuild()["process"]["oomScoreAdj"].get<int>(), -999);
  config_.resources.oom_score_adj = 1001;
  expectError(absl::StatusCode::kInvalidArgument, "oom_score_adj 1001");
}

TEST_F(ContainerSpecTest, BadResources) {
  struct Case {
    std::function<void(ContainerResources&)> set;
    const char* part;
  } cases[] = {
      {[](ContainerResources& r) { r.cpu_shares = -1; }, "cpu_shares -1 is negative"},
      {[](ContainerResources& r) { r.memory_limit_in_bytes = -5; }, "memory_limit_in_bytes"},
      {[](ContainerResources& r) {
         r.hugepage_limits = {{"2M", 1}};
       },
       "page_size \"2M\""},
      {[](ContainerResources& r) {
         r.hugepage_limits = {{"MB", 1}};
       },
       "page_size \"MB\""},
  };
  for (const auto& tc : cases) {
    config_.resources = {};
    tc.set(config_.resources);
    expectError(absl::StatusCode::kInvalidArgument, tc.part);
  }
  config_.resources = {};
  sandbox_.cgroup_parent = "relative";
  expectError(absl::StatusCode::kInvalidArgument, "cgroup parent \"relative\"");
  sandbox_.cgroup_parent.clear();
  expectError(absl::StatusCode::kInvalidArgument, "is invalid in a cgroup path",
              [](ContainerSpecInput& in) { in.id = "../x"; });
}

// ---- namespaces -----------------------------------------------------------------------------

struct NsCase {
  const char* name;
  NamespaceMode network, pid, ipc;
  std::map<std::string, std::string> want;  // type → path ("" = new namespace)
};

TEST_F(ContainerSpecTest, Namespaces) {
  using M = NamespaceMode;
  const std::string p = "/proc/4242/ns/";
  const NsCase cases[] = {
      {"all pod",
       M::kPod,
       M::kPod,
       M::kPod,
       {{"network", p + "net"},
        {"uts", p + "uts"},
        {"ipc", p + "ipc"},
        {"pid", p + "pid"},
        {"mount", ""}}},
      {"pid container",
       M::kPod,
       M::kContainer,
       M::kPod,
       {{"network", p + "net"},
        {"uts", p + "uts"},
        {"ipc", p + "ipc"},
        {"pid", ""},
        {"mount", ""}}},
      {"host network",
       M::kNode,
       M::kPod,
       M::kPod,
       {{"ipc", p + "ipc"}, {"pid", p + "pid"}, {"mount", ""}}},
      {"host pid",
       M::kPod,
       M::kNode,
       M::kPod,
       {{"network", p + "net"}, {"uts", p + "uts"}, {"ipc", p + "ipc"}, {"mount", ""}}},
      {"host ipc",
       M::kPod,
       M::kPod,
       M::kNode,
       {{"network", p + "net"}, {"uts", p + "uts"}, {"pid", p + "pid"}, {"mount", ""}}},
      {"all host", M::kNode, M::kNode, M::kNode, {{"mount", ""}}},
      {"pid target",
       M::kPod,
       M::kTarget,
       M::kPod,
       {{"network", p + "net"},
        {"uts", p + "uts"},
        {"ipc", p + "ipc"},
        {"pid", "/proc/777/ns/pid"},
        {"mount", ""}}},
  };
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.name);
    config_.security.network = tc.network;
    config_.security.pid = tc.pid;
    config_.security.ipc = tc.ipc;
    json s = mustBuild([](ContainerSpecInput& in) { in.target_pid = 777; });
    std::map<std::string, std::string> got;
    for (const json& n : s["linux"]["namespaces"]) got[n["type"]] = n.value("path", "");
    EXPECT_EQ(got, tc.want);
    EXPECT_FALSE(s.contains("hostname"));
  }
}

TEST_F(ContainerSpecTest, NamespacePathsAndErrors) {
  json s = mustBuild([](ContainerSpecInput& in) { in.netns_path = "/run/berth/netns/x"; });
  EXPECT_EQ((*ns(s, "network"))["path"], "/run/berth/netns/x");

  s = mustBuild([](ContainerSpecInput& in) { in.host.cgroup_unified = true; });
  ASSERT_NE(ns(s, "cgroup"), nullptr);
  EXPECT_FALSE(ns(s, "cgroup")->contains("path"));

  config_.security.pid = NamespaceMode::kTarget;
  config_.security.target_id = "other";
  expectError(absl::StatusCode::kInvalidArgument, "target \"other\"");
  config_.security.pid = NamespaceMode::kPod;
  config_.security.network = NamespaceMode::kTarget;
  expectError(absl::StatusCode::kInvalidArgument, "only valid for pid");
  config_.security.network = NamespaceMode::kPod;
  expectError(absl::StatusCode::kFailedPrecondition, "no running pause process",
              [](ContainerSpecInput& in) { in.sandbox_pid = 0; });
}

// ---- annotations and misc -------------------------------------------------------------------

TEST_F(ContainerSpecTest, Annotations) {
  config_.annotations = {{"user/key", "v"}, {kAnnotationContainerType, "spoofed"}};
  json s = mustBuild([](ContainerSpecInput& in) { in.image_name = "sha256:abc"; });
  EXPECT_EQ(s["annotations"], (json{{"user/key", "v"},
                                    {"io.kubernetes.cri.container-type", "container"},
                                    {"io.kubernetes.cri.container-name", "web"},
                                    {"io.kubernetes.cri.sandbox-id", "5a4d"},
                                    {"io.kubernetes.cri.sandbox-name", "web-pod"},
                                    {"io.kubernetes.cri.sandbox-namespace", "default"},
                                    {"io.kubernetes.cri.sandbox-uid", "uid-1"},
                                    {"io.kubernetes.cri.image-name", "sha256:abc"}}));
  EXPECT_EQ(mustBuild()["annotations"]["io.kubernetes.cri.image-name"],
            "docker.io/library/nginx:1.25");
}

TEST_F(ContainerSpecTest, TerminationLogMount) {
  std::ofstream(pod_ / "termlog") << "";
  json s = mustBuild(
      [this](ContainerSpecInput& in) { in.termination_log_host_path = pod_ / "termlog"; });
  bool found = false;
  for (const json& m : s["mounts"]) {
    if (m["destination"] != "/dev/termination-log") continue;
    found = true;
    EXPECT_EQ(m["source"], pod_ / "termlog");
    EXPECT_EQ(m["options"], (json{"rbind", "rprivate", "rw"}));
  }
  EXPECT_TRUE(found);
}

TEST_F(ContainerSpecTest, InputChecks) {
  expectError(absl::StatusCode::kInvalidArgument, "empty container id",
              [](ContainerSpecInput& in) { in.id.clear(); });
  expectError(absl::StatusCode::kInvalidArgument, "rootfs \"rel\"",
              [](ContainerSpecInput& in) { in.rootfs = "rel"; });
  ContainerSpecInput in = input();
  in.sandbox = nullptr;
  EXPECT_FALSE(buildContainerSpec(in).ok());
}

TEST(ImageStopSignalTest, DefaultsToSigterm) {
  json with = {{"config", {{"StopSignal", "SIGQUIT"}}}};
  json without = {{"config", json::object()}};
  EXPECT_EQ(imageStopSignal(&with), "SIGQUIT");
  EXPECT_EQ(imageStopSignal(&without), "SIGTERM");
  EXPECT_EQ(imageStopSignal(nullptr), "SIGTERM");
}

TEST(HostFactsTest, DetectsThisMachine) {
  HostFacts f = detectHostFacts();
  struct stat st {};
  EXPECT_EQ(f.apparmor, ::stat("/sys/kernel/security/apparmor", &st) == 0);
}

}  // namespace
}  // namespace berth::oci

namespace berth::oci {
namespace {

// ---- user namespaces ------------------------------------------------------------------------

const sandbox::SandboxConfig::UserNamespace kOwn = {.uids = {{0, 65536 * 3, 65536}},
                                                    .gids = {{0, 65536 * 4, 65536}}};

TEST_F(ContainerSpecTest, PodUserNamespaceIsJoinedWithItsMappings) {
  sandbox_.userns = kOwn;
  json spec = mustBuild([](ContainerSpecInput& in) { in.userns_path = "/run/berth/userns/5a4d"; });
  ASSERT_NE(ns(spec, "user"), nullptr);
  EXPECT_EQ((*ns(spec, "user"))["path"], "/run/berth/userns/5a4d");
  EXPECT_EQ(spec["linux"]["uidMappings"],
            json::parse(R"([{"containerID": 0, "hostID": 196608, "size": 65536}])"));
  EXPECT_EQ(spec["linux"]["gidMappings"],
            json::parse(R"([{"containerID": 0, "hostID": 262144, "size": 65536}])"));
  // Saying POD with the pod's mappings is the same; without a pinned namespace it cannot be.
  config_.security.userns = kOwn;
  EXPECT_EQ(
      mustBuild([](ContainerSpecInput& in) { in.userns_path = "/u"; })["linux"]["uidMappings"],
      spec["linux"]["uidMappings"]);
  expectError(absl::StatusCode::kFailedPrecondition, "has no pinned user namespace");
}

TEST_F(ContainerSpecTest, HostUsersPodHasNoUserNamespace) {
  json spec = mustBuild();
  EXPECT_EQ(ns(spec, "user"), nullptr);
  EXPECT_FALSE(spec["linux"].contains("uidMappings"));
}

TEST(CheckUserNamespaceTest, ContainersAndMountsFollowThePod) {
  sandbox::SandboxConfig pod, own;
  own.userns = kOwn;
  ContainerConfig c;
  EXPECT_TRUE(checkUserNamespace(c, pod).ok());
  EXPECT_TRUE(checkUserNamespace(c, own).ok());
  c.security.userns = kOwn;
  EXPECT_TRUE(checkUserNamespace(c, own).ok());
  EXPECT_EQ(checkUserNamespace(c, pod).message(),
            "user namespace mode POD: the pod has no user namespace of its own");
  c.security.userns->uids[0].host_id += 1;
  EXPECT_EQ(checkUserNamespace(c, own).message(),
            "user namespace mappings differ from the pod's (a pod's containers share its user "
            "namespace)");
  c.security.userns.reset();
  c.security.userns_node = true;
  EXPECT_EQ(checkUserNamespace(c, own).message(),
            "user namespace mode NODE in a pod with a user namespace of its own");
  EXPECT_TRUE(checkUserNamespace(c, pod).ok());
  c.security.userns_node = false;
  c.mounts.push_back({.container_path = "/v",
                      .host_path = "/srv",
                      .uid_mappings = kOwn.uids,
                      .gid_mappings = kOwn.gids});
  EXPECT_TRUE(checkUserNamespace(c, own).ok());
  EXPECT_EQ(checkUserNamespace(c, pod).message(),
            "mount at \"/v\": id mappings need a pod with a user namespace of its own");
  c.mounts[0].gid_mappings = kOwn.uids;
  EXPECT_EQ(checkUserNamespace(c, own).message(),
            "mount at \"/v\": id mappings differ from the pod's user namespace");
  c.mounts[0].gid_mappings = kOwn.gids;
  c.mounts[0].propagation = MountPropagation::kBidirectional;
  EXPECT_EQ(checkUserNamespace(c, own).message(),
            "mount at \"/v\": bidirectional propagation cannot be idmapped");
  EXPECT_TRUE(absl::IsInvalidArgument(checkUserNamespace(c, own)));
}

}  // namespace
}  // namespace berth::oci
