// Issue 16: nothing a request asks for is silently ignored. Every field of
// LinuxContainerConfig and LinuxPodSandboxConfig is set, one at a time, through the CRI; each is
// either applied (seen in the runtime spec berth hands to runc, from verbose status) or refused
// with an error that names it. A field added to the CRI without a case here is not covered:
// the case lists follow cri-api v0.36.3's field lists. Not in them: selinux_options (berth has
// no SELinux: logged once, as containerd and CRI-O ignore them without SELinux) and the
// Windows configs.
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "berthd_fixture.h"
#include "cri_calls.h"
#include "nlohmann/json.hpp"
#include "test_env.h"

namespace berth::testing {
namespace {

using nlohmann::json;

struct Case {
  std::string field;
  std::function<void(v1::ContainerConfig&)> set;
  // Applied: a check of the runtime spec; refused: the expected code and a part of the message.
  std::function<void(const json& spec)> applied;
  grpc::StatusCode code = grpc::StatusCode::OK;
  std::string says;
};

v1::LinuxContainerSecurityContext* sec(v1::ContainerConfig& c) {
  return c.mutable_linux()->mutable_security_context();
}
v1::LinuxContainerResources* res(v1::ContainerConfig& c) {
  return c.mutable_linux()->mutable_resources();
}

bool cgroupV2() {
  struct statfs fs {};
  return ::statfs("/sys/fs/cgroup", &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC;
}

bool hasNamespace(const json& spec, const std::string& type, bool with_path) {
  for (const json& n : spec["linux"]["namespaces"]) {
    if (n["type"] == type) return with_path == n.contains("path");
  }
  return false;
}

TEST(FieldsTest, EveryLinuxContainerConfigFieldIsAppliedOrRefused) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  const std::string busybox = envKey("BERTH_TEST_IMAGE_BUSYBOX");
  ASSERT_TRUE(pullImage(d, busybox).ok());
  v1::PodSandboxConfig pod_config = hostNetworkPod("fields");
  std::string pod;
  ASSERT_TRUE(runPod(d, pod_config, &pod).ok()) << d.log();

  const std::vector<Case> cases = {
      // resources
      {"resources.cpu_period", [](auto& c) { res(c)->set_cpu_period(100000); },
       [](const json& s) { EXPECT_EQ(s["linux"]["resources"]["cpu"]["period"], 100000); }},
      {"resources.cpu_quota", [](auto& c) { res(c)->set_cpu_quota(50000); },
       [](const json& s) { EXPECT_EQ(s["linux"]["resources"]["cpu"]["quota"], 50000); }},
      {"resources.cpu_shares", [](auto& c) { res(c)->set_cpu_shares(512); },
       [](const json& s) { EXPECT_EQ(s["linux"]["resources"]["cpu"]["shares"], 512); }},
      {"resources.memory_limit_in_bytes",
       [](auto& c) { res(c)->set_memory_limit_in_bytes(64 << 20); },
       [](const json& s) { EXPECT_EQ(s["linux"]["resources"]["memory"]["limit"], 64 << 20); }},
      {"resources.oom_score_adj", [](auto& c) { res(c)->set_oom_score_adj(500); },
       [](const json& s) { EXPECT_EQ(s["process"]["oomScoreAdj"], 500); }},
      {"resources.cpuset_cpus", [](auto& c) { res(c)->set_cpuset_cpus("0"); },
       [](const json& s) { EXPECT_EQ(s["linux"]["resources"]["cpu"]["cpus"], "0"); }},
      {"resources.cpuset_mems", [](auto& c) { res(c)->set_cpuset_mems("0"); },
       [](const json& s) { EXPECT_EQ(s["linux"]["resources"]["cpu"]["mems"], "0"); }},
      // Where the host cannot limit them, skipped (logged once), as containerd does.
      {"resources.hugepage_limits",
       [](auto& c) {
         auto* h = res(c)->add_hugepage_limits();
         h->set_page_size("2MB");
         h->set_limit(0);
       },
       [](const json& s) {
         bool hugetlb =
             std::filesystem::exists("/sys/fs/cgroup/hugetlb") ||
             slurp("/sys/fs/cgroup/cgroup.controllers").find("hugetlb") != std::string::npos;
         EXPECT_EQ(s["linux"]["resources"].contains("hugepageLimits"), hugetlb);
       }},
      {"resources.memory_swap_limit_in_bytes",
       [](auto& c) {
         res(c)->set_memory_limit_in_bytes(64 << 20);
         res(c)->set_memory_swap_limit_in_bytes(128 << 20);
       },
       [](const json& s) {
         bool swap = std::filesystem::exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes") ||
                     std::filesystem::exists("/sys/fs/cgroup/system.slice/memory.swap.max") ||
                     std::filesystem::exists("/sys/fs/cgroup/init.scope/memory.swap.max");
         EXPECT_EQ(s["linux"]["resources"]["memory"].contains("swap"), swap) << s["linux"];
         if (swap) {
           EXPECT_EQ(s["linux"]["resources"]["memory"]["swap"], 128 << 20);
         }
       }},
      // Only a pure cgroup v2 host has them (this machine is hybrid: refused by name).
      cgroupV2() ? Case{"resources.unified",
                        [](auto& c) { (*res(c)->mutable_unified())["pids.max"] = "77"; },
                        [](const json& s) {
                          EXPECT_EQ(s["linux"]["resources"]["unified"]["pids.max"], "77");
                        }}
                 : Case{"resources.unified",
                        [](auto& c) { (*res(c)->mutable_unified())["pids.max"] = "77"; }, nullptr,
                        grpc::StatusCode::INVALID_ARGUMENT, "resources.unified"},
      // security context
      {"capabilities.add/drop",
       [](auto& c) {
         sec(c)->mutable_capabilities()->add_drop_capabilities("ALL");
         sec(c)->mutable_capabilities()->add_add_capabilities("NET_RAW");
       },
       [](const json& s) {
         EXPECT_EQ(s["process"]["capabilities"]["effective"], json({"CAP_NET_RAW"}));
       }},
      {"capabilities.add_ambient_capabilities",
       [](auto& c) { sec(c)->mutable_capabilities()->add_add_ambient_capabilities("NET_RAW"); },
       nullptr, grpc::StatusCode::INVALID_ARGUMENT, "add_ambient_capabilities"},
      {"privileged (in an unprivileged pod)", [](auto& c) { sec(c)->set_privileged(true); },
       nullptr, grpc::StatusCode::INVALID_ARGUMENT, "privileged"},
      {"namespace_options.pid CONTAINER",
       [](auto& c) { sec(c)->mutable_namespace_options()->set_pid(v1::CONTAINER); },
       [](const json& s) { EXPECT_TRUE(hasNamespace(s, "pid", false)) << s["linux"]; }},
      {"namespace_options.ipc NODE",
       [](auto& c) { sec(c)->mutable_namespace_options()->set_ipc(v1::NODE); },
       [](const json& s) {
         EXPECT_FALSE(hasNamespace(s, "ipc", true) || hasNamespace(s, "ipc", false));
       }},
      {"namespace_options.target_id",
       [](auto& c) {
         sec(c)->mutable_namespace_options()->set_pid(v1::TARGET);
         sec(c)->mutable_namespace_options()->set_target_id("nonexistent");
       },
       nullptr, grpc::StatusCode::NOT_FOUND, "nonexistent"},
      {"namespace_options.userns_options POD",
       [](auto& c) {
         auto* u = sec(c)->mutable_namespace_options()->mutable_userns_options();
         u->set_mode(v1::POD);
       },
       nullptr, grpc::StatusCode::INVALID_ARGUMENT, "user namespace"},
      {"run_as_user", [](auto& c) { sec(c)->mutable_run_as_user()->set_value(1234); },
       [](const json& s) { EXPECT_EQ(s["process"]["user"]["uid"], 1234); }},
      {"run_as_group",
       [](auto& c) {
         sec(c)->mutable_run_as_user()->set_value(1234);
         sec(c)->mutable_run_as_group()->set_value(4321);
       },
       [](const json& s) { EXPECT_EQ(s["process"]["user"]["gid"], 4321); }},
      {"run_as_username", [](auto& c) { sec(c)->set_run_as_username("nobody"); },
       [](const json& s) { EXPECT_EQ(s["process"]["user"]["uid"], 65534); }},
      {"readonly_rootfs", [](auto& c) { sec(c)->set_readonly_rootfs(true); },
       [](const json& s) { EXPECT_EQ(s["root"]["readonly"], true); }},
      {"supplemental_groups", [](auto& c) { sec(c)->add_supplemental_groups(4242); },
       [](const json& s) {
         const json& g = s["process"]["user"]["additionalGids"];
         EXPECT_NE(std::find(g.begin(), g.end(), json(4242)), g.end()) << g;
       }},
      {"supplemental_groups_policy Strict",
       [](auto& c) {
         sec(c)->set_run_as_username("berth");  // the test image's user in "users" (100)
         sec(c)->set_supplemental_groups_policy(v1::Strict);
       },
       [](const json& s) { EXPECT_EQ(s["process"]["user"]["additionalGids"], json({1002})); }},
      {"no_new_privs", [](auto& c) { sec(c)->set_no_new_privs(true); },
       [](const json& s) { EXPECT_EQ(s["process"]["noNewPrivileges"], true); }},
      {"masked_paths", [](auto& c) { sec(c)->add_masked_paths("/proc/berth-masked"); },
       [](const json& s) { EXPECT_EQ(s["linux"]["maskedPaths"], json({"/proc/berth-masked"})); }},
      {"readonly_paths", [](auto& c) { sec(c)->add_readonly_paths("/proc/berth-ro"); },
       [](const json& s) { EXPECT_EQ(s["linux"]["readonlyPaths"], json({"/proc/berth-ro"})); }},
      {"seccomp",
       [](auto& c) {
         sec(c)->mutable_seccomp()->set_profile_type(v1::SecurityProfile::RuntimeDefault);
       },
       [](const json& s) { EXPECT_EQ(s["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO"); }},
      {"seccomp_profile_path (deprecated)",
       [](auto& c) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
         sec(c)->set_seccomp_profile_path("runtime/default");
#pragma GCC diagnostic pop
       },
       [](const json& s) { EXPECT_TRUE(s["linux"].contains("seccomp")); }},
      // This host has no AppArmor: a named profile cannot be applied.
      {"apparmor",
       [](auto& c) {
         sec(c)->mutable_apparmor()->set_profile_type(v1::SecurityProfile::Localhost);
         sec(c)->mutable_apparmor()->set_localhost_ref("berth-test");
       },
       nullptr, grpc::StatusCode::FAILED_PRECONDITION, "apparmor profile \"berth-test\""},
      {"apparmor_profile (deprecated)",
       [](auto& c) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
         sec(c)->set_apparmor_profile("localhost/berth-test");
#pragma GCC diagnostic pop
       },
       nullptr, grpc::StatusCode::FAILED_PRECONDITION, "apparmor profile \"berth-test\""},
  };
  int n = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.field);
    v1::ContainerConfig config = sleepContainer("f" + std::to_string(n++), busybox);
    c.set(config);
    std::string id;
    grpc::Status st = createContainer(d, pod, config, pod_config, &id);
    if (!c.applied) {
      EXPECT_EQ(st.error_code(), c.code) << st.error_message();
      EXPECT_NE(st.error_message().find(c.says), std::string::npos) << st.error_message();
      continue;
    }
    ASSERT_TRUE(st.ok()) << st.error_message();
    json info = json::parse(containerStatus(d, id, true).info().at("info"), nullptr, false);
    c.applied(info["runtimeSpec"]);
    EXPECT_TRUE(removeContainer(d, id).ok());
  }
}

TEST(FieldsTest, EveryLinuxPodSandboxConfigFieldIsAppliedOrRefused) {
  Berthd d;
  // As on a node, the folders above state can be searched by anyone (a pod's own user
  // namespace needs that to reach its rootfs; the fixture's folder is 0700).
  ASSERT_EQ(::chmod(d.dir().c_str(), 0755), 0);
  ASSERT_TRUE(d.start()) << d.log();
  struct PodCase {
    std::string field;
    std::function<void(v1::PodSandboxConfig&)> set;
    std::function<void(const json& spec, const json& info)> applied;
    grpc::StatusCode code = grpc::StatusCode::OK;
    std::string says;
  };
  auto psec = [](v1::PodSandboxConfig& c) { return c.mutable_linux()->mutable_security_context(); };
  const std::vector<PodCase> cases = {
      // Under the daemon's own cgroup parent, which the fixture removes with what is under it.
      {"cgroup_parent",
       [&](auto& c) { c.mutable_linux()->set_cgroup_parent(d.cgroupParent() + "/fields"); },
       [&](const json& s, const json&) {
         EXPECT_EQ(
             s["linux"]["cgroupsPath"].get<std::string>().rfind(d.cgroupParent() + "/fields/", 0),
             0u);
       }},
      {"namespace_options.pid NODE",
       [&](auto& c) { psec(c)->mutable_namespace_options()->set_pid(v1::NODE); },
       [](const json& s, const json&) { EXPECT_FALSE(hasNamespace(s, "pid", false)); }},
      {"namespace_options.ipc NODE",
       [&](auto& c) { psec(c)->mutable_namespace_options()->set_ipc(v1::NODE); },
       [](const json& s, const json&) { EXPECT_FALSE(hasNamespace(s, "ipc", false)); }},
      {"namespace_options.userns_options POD",
       [&](auto& c) {
         psec(c)->mutable_namespace_options()->set_network(v1::POD);
         auto* u = psec(c)->mutable_namespace_options()->mutable_userns_options();
         u->set_mode(v1::POD);
         for (auto* maps : {u->mutable_uids(), u->mutable_gids()}) {
           auto* m = maps->Add();
           m->set_host_id(65536 * 29);
           m->set_length(65536);
         }
       },
       [](const json& s, const json& info) {
         EXPECT_EQ(s["linux"]["uidMappings"][0]["hostID"], 65536 * 29);
         EXPECT_EQ(s["linux"]["gidMappings"][0]["size"], 65536);
         EXPECT_TRUE(hasNamespace(s, "user", true)) << s["linux"]["namespaces"];
         EXPECT_EQ(info["pid"].get<int>() > 0, true);
       }},
      {"namespace_options.userns_options POD without mappings",
       [&](auto& c) {
         psec(c)->mutable_namespace_options()->set_network(v1::POD);
         psec(c)->mutable_namespace_options()->mutable_userns_options()->set_mode(v1::POD);
       },
       nullptr, grpc::StatusCode::INVALID_ARGUMENT, "user namespace uid mappings: no mappings"},
      {"run_as_user", [&](auto& c) { psec(c)->mutable_run_as_user()->set_value(1234); },
       [](const json& s, const json&) { EXPECT_EQ(s["process"]["user"]["uid"], 1234); }},
      {"run_as_group",
       [&](auto& c) {
         psec(c)->mutable_run_as_user()->set_value(1234);
         psec(c)->mutable_run_as_group()->set_value(4321);
       },
       [](const json& s, const json&) { EXPECT_EQ(s["process"]["user"]["gid"], 4321); }},
      {"readonly_rootfs", [&](auto& c) { psec(c)->set_readonly_rootfs(true); },
       [](const json& s, const json&) { EXPECT_EQ(s["root"]["readonly"], true); }},
      {"supplemental_groups", [&](auto& c) { psec(c)->add_supplemental_groups(4242); },
       [](const json& s, const json&) {
         EXPECT_EQ(s["process"]["user"]["additionalGids"], json({4242}));
       }},
      {"privileged", [&](auto& c) { psec(c)->set_privileged(true); },
       [](const json& s, const json&) { EXPECT_FALSE(s["linux"].contains("maskedPaths")); }},
      {"seccomp",
       [&](auto& c) {
         psec(c)->mutable_seccomp()->set_profile_type(v1::SecurityProfile::RuntimeDefault);
       },
       [](const json& s, const json&) { EXPECT_TRUE(s["linux"].contains("seccomp")); }},
      {"apparmor",
       [&](auto& c) {
         psec(c)->mutable_apparmor()->set_profile_type(v1::SecurityProfile::Localhost);
         psec(c)->mutable_apparmor()->set_localhost_ref("berth-test");
       },
       nullptr, grpc::StatusCode::FAILED_PRECONDITION, "apparmor profile \"berth-test\""},
      {"sysctls",
       [](auto& c) { (*c.mutable_linux()->mutable_sysctls())["net.ipv4.ip_forward"] = "1"; },
       nullptr, grpc::StatusCode::INVALID_ARGUMENT, "net.ipv4.ip_forward"},
      // kubelet sizes the pod cgroup itself: overhead and resources are recorded (verbose
      // config), as containerd does.
      {"overhead and resources",
       [](auto& c) {
         c.mutable_linux()->mutable_overhead()->set_cpu_shares(7);
         c.mutable_linux()->mutable_resources()->set_memory_limit_in_bytes(128 << 20);
       },
       [](const json&, const json& info) {
         EXPECT_EQ(info["config"]["linux"]["overhead"]["cpu_shares"], "7") << info["config"];
         EXPECT_EQ(info["config"]["linux"]["resources"]["memory_limit_in_bytes"], "134217728");
       }},
  };
  int n = 0;
  for (const PodCase& c : cases) {
    SCOPED_TRACE(c.field);
    v1::PodSandboxConfig config = hostNetworkPod("fields-" + std::to_string(n++));
    c.set(config);
    std::string id;
    grpc::Status st = runPod(d, config, &id);
    if (!c.applied) {
      EXPECT_EQ(st.error_code(), c.code) << st.error_message();
      EXPECT_NE(st.error_message().find(c.says), std::string::npos) << st.error_message();
      continue;
    }
    ASSERT_TRUE(st.ok()) << st.error_message();
    json info = json::parse(podStatus(d, id, true).info().at("info"), nullptr, false);
    c.applied(info["runtimeSpec"], info);
    EXPECT_TRUE(stopPod(d, id).ok());
    EXPECT_TRUE(removePod(d, id).ok());
  }
}

}  // namespace
}  // namespace berth::testing
