// Tests for the pod sandbox (pause container) spec.
#include <algorithm>
#include <functional>

#include "gtest/gtest.h"
#include "oci/capabilities.h"
#include "oci/oom.h"
#include "oci/spec.h"

namespace berth::oci {
namespace {

using nlohmann::json;
using sandbox::NamespaceMode;
using sandbox::SandboxConfig;

constexpr char kId[] = "0123456789abcdef";

sandbox::SandboxConfig baseConfig() {
  SandboxConfig c;
  c.name = "web";
  c.ns = "default";
  c.uid = "uid-1";
  c.hostname = "web-host";
  c.log_directory = "/var/log/pods/default_web_uid-1";
  return c;
}

SandboxSpecInput baseInput(const SandboxConfig* c) {
  return SandboxSpecInput{.id = kId,
                          .config = c,
                          .rootfs = "/var/lib/berth/pause/rootfs",
                          .netns_path = "/run/berth/netns/abc",
                          .resolv_conf = "/run/berth/pods/abc/resolv.conf",
                          .hosts = "/run/berth/pods/abc/hosts",
                          .hostname_file = "/run/berth/pods/abc/hostname",
                          .shm_path = "/run/berth/pods/abc/shm"};
}

const json* findNs(const json& spec, const std::string& type) {
  for (const auto& ns : spec["linux"]["namespaces"]) {
    if (ns["type"] == type) return &ns;
  }
  return nullptr;
}

std::vector<json> mountsAt(const json& spec, const std::string& dest) {
  std::vector<json> out;
  for (const auto& m : spec["mounts"]) {
    if (m["destination"] == dest) out.push_back(m);
  }
  return out;
}

json build(const SandboxConfig& c, const std::function<void(SandboxSpecInput&)>& tweak = {}) {
  SandboxSpecInput in = baseInput(&c);
  if (tweak) tweak(in);
  auto spec = buildSandboxSpec(in);
  EXPECT_TRUE(spec.ok()) << spec.status();
  return spec.ok() ? *spec : json();
}

TEST(SandboxSpecTest, DefaultPod) {
  SandboxConfig c = baseConfig();
  json s = build(c);
  EXPECT_EQ(s["process"]["args"], json{"/pause"});
  EXPECT_EQ(s["process"]["user"], (json{{"uid", 65535}, {"gid", 65535}}));
  EXPECT_EQ(s["process"]["capabilities"]["bounding"], json(defaultCapabilities()));
  EXPECT_EQ(s["root"], (json{{"path", "/var/lib/berth/pause/rootfs"}, {"readonly", true}}));
  EXPECT_EQ(s["hostname"], "web-host");
  EXPECT_EQ(s["linux"]["cgroupsPath"], std::string("/berth/") + kId);
  EXPECT_EQ(s["linux"]["resources"]["cpu"]["shares"], 2);
  EXPECT_EQ(s["linux"]["maskedPaths"].size(), 10u);
  EXPECT_EQ(s["linux"]["readonlyPaths"].size(), 5u);
  EXPECT_FALSE(s["linux"].contains("sysctl"));
  EXPECT_EQ(s["process"]["oomScoreAdj"], clampOomScoreAdj(-998));
  for (const char* dest : {"/etc/resolv.conf", "/etc/hosts", "/etc/hostname"}) {
    auto ms = mountsAt(s, dest);
    ASSERT_EQ(ms.size(), 1u) << dest;
    EXPECT_EQ(ms[0]["type"], "bind");
    EXPECT_EQ(ms[0]["options"], (json{"rbind", "ro"}));
  }
  EXPECT_EQ(mountsAt(s, "/etc/hosts")[0]["source"], "/run/berth/pods/abc/hosts");
  EXPECT_EQ(s["annotations"],
            (json{{"io.kubernetes.cri.container-type", "sandbox"},
                  {"io.kubernetes.cri.sandbox-id", kId},
                  {"io.kubernetes.cri.sandbox-name", "web"},
                  {"io.kubernetes.cri.sandbox-namespace", "default"},
                  {"io.kubernetes.cri.sandbox-uid", "uid-1"},
                  {"io.kubernetes.cri.sandbox-log-directory", "/var/log/pods/default_web_uid-1"}}));
}

// One row per namespace setup: which namespaces the spec has, the netns path, /dev/shm.
struct NsCase {
  std::string label;
  NamespaceMode network, pid, ipc;
  std::string netns_path;
  std::string shm_path;
  std::vector<std::string> want_ns;  // in spec order
  std::string want_net_path;         // "" = no path on the network entry
  bool want_hostname;
  json want_shm;  // the single /dev/shm mount
};

class SandboxNamespaceTest : public ::testing::TestWithParam<NsCase> {};

TEST_P(SandboxNamespaceTest, Namespaces) {
  const NsCase& tc = GetParam();
  SandboxConfig c = baseConfig();
  c.network = tc.network;
  c.pid = tc.pid;
  c.ipc = tc.ipc;
  json s = build(c, [&](SandboxSpecInput& in) {
    in.netns_path = tc.netns_path;
    in.shm_path = tc.shm_path;
  });
  std::vector<std::string> got;
  for (const auto& ns : s["linux"]["namespaces"]) got.push_back(ns["type"]);
  EXPECT_EQ(got, tc.want_ns);
  if (const json* net = findNs(s, "network"); net != nullptr) {
    EXPECT_EQ(net->value("path", ""), tc.want_net_path);
  }
  EXPECT_EQ(s.contains("hostname"), tc.want_hostname);
  auto shm = mountsAt(s, "/dev/shm");
  ASSERT_EQ(shm.size(), 1u);
  EXPECT_EQ(shm[0], tc.want_shm);
  // /dev/shm stays after /dev in mount order.
  std::vector<std::string> order;
  for (const auto& m : s["mounts"]) order.push_back(m["destination"]);
  EXPECT_LT(std::find(order.begin(), order.end(), "/dev") - order.begin(),
            std::find(order.begin(), order.end(), "/dev/shm") - order.begin());
}

const json kPodShm = {{"destination", "/dev/shm"},
                      {"type", "bind"},
                      {"source", "/shm"},
                      {"options", {"rbind", "rw", "nosuid", "nodev", "noexec"}}};
const json kHostShm = {{"destination", "/dev/shm"},
                       {"type", "bind"},
                       {"source", "/dev/shm"},
                       {"options", {"rbind", "ro", "nosuid", "nodev", "noexec"}}};
const json kTmpfsShm = {{"destination", "/dev/shm"},
                        {"type", "tmpfs"},
                        {"source", "shm"},
                        {"options", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}}};
constexpr auto kPod = NamespaceMode::kPod;
constexpr auto kNode = NamespaceMode::kNode;
constexpr auto kCtr = NamespaceMode::kContainer;

INSTANTIATE_TEST_SUITE_P(
    Cases, SandboxNamespaceTest,
    ::testing::Values(NsCase{"all_pod",
                             kPod,
                             kPod,
                             kPod,
                             "/netns/x",
                             "/shm",
                             {"pid", "ipc", "uts", "mount", "network"},
                             "/netns/x",
                             true,
                             kPodShm},
                      NsCase{"new_netns_by_runtime",
                             kPod,
                             kPod,
                             kPod,
                             "",
                             "/shm",
                             {"pid", "ipc", "uts", "mount", "network"},
                             "",
                             true,
                             kPodShm},
                      NsCase{"container_is_pod",
                             kCtr,
                             kCtr,
                             kCtr,
                             "/netns/x",
                             "/shm",
                             {"pid", "ipc", "uts", "mount", "network"},
                             "/netns/x",
                             true,
                             kPodShm},
                      NsCase{"host_network",
                             kNode,
                             kPod,
                             kPod,
                             "/netns/x",
                             "/shm",
                             {"pid", "ipc", "mount"},
                             "",
                             false,
                             kPodShm},
                      NsCase{"host_pid",
                             kPod,
                             kNode,
                             kPod,
                             "/netns/x",
                             "/shm",
                             {"ipc", "uts", "mount", "network"},
                             "/netns/x",
                             true,
                             kPodShm},
                      NsCase{"host_ipc",
                             kPod,
                             kPod,
                             kNode,
                             "/netns/x",
                             "/shm",
                             {"pid", "uts", "mount", "network"},
                             "/netns/x",
                             true,
                             kHostShm},
                      NsCase{"pod_ipc_without_shm_dir",
                             kPod,
                             kPod,
                             kPod,
                             "/netns/x",
                             "",
                             {"pid", "ipc", "uts", "mount", "network"},
                             "/netns/x",
                             true,
                             kTmpfsShm},
                      NsCase{
                          "all_host", kNode, kNode, kNode, "", "", {"mount"}, "", false, kHostShm}),
    [](const auto& info) { return info.param.label; });

TEST(SandboxSpecTest, TargetModeIsInvalid) {
  for (auto set : {+[](SandboxConfig& c) { c.network = NamespaceMode::kTarget; },
                   +[](SandboxConfig& c) { c.pid = NamespaceMode::kTarget; },
                   +[](SandboxConfig& c) { c.ipc = NamespaceMode::kTarget; }}) {
    SandboxConfig c = baseConfig();
    set(c);
    SandboxSpecInput in = baseInput(&c);
    auto s = buildSandboxSpec(in);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(s.status().message().find("TARGET"), absl::string_view::npos);
    EXPECT_NE(s.status().message().find(kId), absl::string_view::npos);
  }
}

TEST(SandboxSpecTest, HostnameFromInputWins) {
  SandboxConfig c = baseConfig();
  c.hostname.clear();
  EXPECT_FALSE(build(c).contains("hostname"));
  json s = build(c, [](SandboxSpecInput& in) { in.hostname = "web"; });
  EXPECT_EQ(s["hostname"], "web");
}

TEST(SandboxSpecTest, FileMountsOnlyWhenGiven) {
  SandboxConfig c = baseConfig();
  json s = build(c, [](SandboxSpecInput& in) {
    in.hosts.clear();
    in.hostname_file.clear();
  });
  EXPECT_EQ(mountsAt(s, "/etc/resolv.conf").size(), 1u);
  EXPECT_TRUE(mountsAt(s, "/etc/hosts").empty());
  EXPECT_TRUE(mountsAt(s, "/etc/hostname").empty());
}

struct SysctlCase {
  std::string label;
  NamespaceMode network, ipc;
  std::map<std::string, std::string> sysctls;
  bool ok;
  std::string named;  // the sysctl the error names
};

class SandboxSysctlTest : public ::testing::TestWithParam<SysctlCase> {};

TEST_P(SandboxSysctlTest, Sysctls) {
  const SysctlCase& tc = GetParam();
  SandboxConfig c = baseConfig();
  c.network = tc.network;
  c.ipc = tc.ipc;
  c.sysctls = tc.sysctls;
  SandboxSpecInput in = baseInput(&c);
  auto s = buildSandboxSpec(in);
  if (tc.ok) {
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_EQ((*s)["linux"]["sysctl"].size(), tc.sysctls.size());
  } else {
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(s.status().message().find(tc.named), absl::string_view::npos) << s.status();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, SandboxSysctlTest,
    ::testing::Values(
        SysctlCase{"pod_net_and_ipc",
                   kPod,
                   kPod,
                   {{"net.ipv4.ip_unprivileged_port_start", "0"}, {"kernel.shmmni", "8192"}},
                   true,
                   ""},
        SysctlCase{"net_on_host_network",
                   kNode,
                   kPod,
                   {{"net.core.somaxconn", "1024"}},
                   false,
                   "net.core.somaxconn"},
        SysctlCase{
            "shm_on_host_ipc", kPod, kNode, {{"kernel.shmmax", "1"}}, false, "kernel.shmmax"},
        SysctlCase{"mqueue_on_host_ipc",
                   kPod,
                   kNode,
                   {{"fs.mqueue.msg_max", "1"}},
                   false,
                   "fs.mqueue.msg_max"},
        SysctlCase{"ipc_on_host_network_ok", kNode, kPod, {{"kernel.msgmax", "1"}}, true, ""},
        SysctlCase{"not_namespaced", kPod, kPod, {{"vm.swappiness", "1"}}, false, "vm.swappiness"}),
    [](const auto& info) { return info.param.label; });

TEST(SandboxSpecTest, SlashSysctlIsNormalized) {
  SandboxConfig c = baseConfig();
  c.sysctls = {{"net/ipv4/ip_forward", "1"}};
  json s = build(c);
  EXPECT_EQ(s["linux"]["sysctl"], (json{{"net.ipv4.ip_forward", "1"}}));
}

struct CgroupCase {
  std::string config_parent, default_parent;
  std::string want;  // "" = InvalidArgument
};

class SandboxCgroupTest : public ::testing::TestWithParam<CgroupCase> {};

TEST_P(SandboxCgroupTest, CgroupsPath) {
  SandboxConfig c = baseConfig();
  c.cgroup_parent = GetParam().config_parent;
  SandboxSpecInput in = baseInput(&c);
  in.cgroup_parent_default = GetParam().default_parent;
  auto s = buildSandboxSpec(in);
  if (GetParam().want.empty()) {
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  } else {
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_EQ((*s)["linux"]["cgroupsPath"], GetParam().want);
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, SandboxCgroupTest,
                         ::testing::Values(CgroupCase{"", "/berth", std::string("/berth/") + kId},
                                           CgroupCase{
                                               "/kubepods/besteffort/pod1", "/berth",
                                               std::string("/kubepods/besteffort/pod1/") + kId},
                                           CgroupCase{"kubepods-besteffort.slice", "/berth", ""},
                                           CgroupCase{"/kubepods/../escape", "/berth", ""},
                                           CgroupCase{"", "relative", ""}));

TEST(SandboxSpecTest, Privileged) {
  SandboxConfig c = baseConfig();
  c.privileged = true;
  json s = build(c);
  auto all = currentCapabilities();
  EXPECT_GT(all.size(), defaultCapabilities().size());
  for (const char* set : {"bounding", "effective", "permitted"}) {
    EXPECT_EQ(s["process"]["capabilities"][set], json(all)) << set;
  }
  EXPECT_FALSE(s["linux"].contains("maskedPaths"));
  EXPECT_FALSE(s["linux"].contains("readonlyPaths"));
  EXPECT_EQ(s["linux"]["resources"]["devices"],
            (json::array({{{"allow", true}, {"access", "rwm"}}})));
  auto sys = mountsAt(s, "/sys");
  ASSERT_EQ(sys.size(), 1u);
  EXPECT_EQ(sys[0]["options"], (json{"nosuid", "noexec", "nodev", "rw"}));
}

struct UserCase {
  std::string label;
  int64_t user, group;
  std::vector<int64_t> groups;
  json want;  // null = InvalidArgument
};

class SandboxUserTest : public ::testing::TestWithParam<UserCase> {};

TEST_P(SandboxUserTest, User) {
  const UserCase& tc = GetParam();
  SandboxConfig c = baseConfig();
  c.run_as_user = tc.user;
  c.run_as_group = tc.group;
  c.supplemental_groups = tc.groups;
  SandboxSpecInput in = baseInput(&c);
  auto s = buildSandboxSpec(in);
  if (tc.want.is_null()) {
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  } else {
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_EQ((*s)["process"]["user"], tc.want);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, SandboxUserTest,
    ::testing::Values(
        UserCase{"pause_default", -1, -1, {}, json{{"uid", 65535}, {"gid", 65535}}},
        UserCase{"user_only", 1000, -1, {}, json{{"uid", 1000}, {"gid", 0}}},
        UserCase{"user_and_group", 1000, 2000, {}, json{{"uid", 1000}, {"gid", 2000}}},
        UserCase{"group_only", -1, 2000, {}, json{{"uid", 65535}, {"gid", 2000}}},
        UserCase{
            "supplemental", 0, 0, {5, 6}, json{{"uid", 0}, {"gid", 0}, {"additionalGids", {5, 6}}}},
        UserCase{"negative_user", -2, -1, {}, json()},
        UserCase{"huge_group", 1, 4294967295, {}, json()},
        UserCase{"negative_supplemental", 1, 1, {-3}, json()}),
    [](const auto& info) { return info.param.label; });

TEST(SandboxSpecTest, OomScoreAdjIsClamped) {
  SandboxConfig c = baseConfig();
  json s = build(c, [](SandboxSpecInput& in) { in.oom_score_adj = -998; });
  EXPECT_EQ(s["process"]["oomScoreAdj"], clampOomScoreAdj(-998));
  s = build(c, [](SandboxSpecInput& in) { in.oom_score_adj = 1000; });
  EXPECT_EQ(s["process"]["oomScoreAdj"], 1000);
}

TEST(SandboxSpecTest, PodAnnotationsKeptButCriKeysWin) {
  SandboxConfig c = baseConfig();
  c.annotations = {{"example.com/a", "1"}, {"io.kubernetes.cri.sandbox-id", "spoofed"}};
  json s = build(c);
  EXPECT_EQ(s["annotations"]["example.com/a"], "1");
  EXPECT_EQ(s["annotations"]["io.kubernetes.cri.sandbox-id"], kId);
}

TEST(SandboxSpecTest, BadInputs) {
  SandboxConfig c = baseConfig();
  SandboxSpecInput in = baseInput(&c);
  in.config = nullptr;
  EXPECT_EQ(buildSandboxSpec(in).status().code(), absl::StatusCode::kInvalidArgument);
  in = baseInput(&c);
  in.rootfs = "relative/rootfs";
  EXPECT_EQ(buildSandboxSpec(in).status().code(), absl::StatusCode::kInvalidArgument);
  in = baseInput(&c);
  in.args.clear();
  EXPECT_EQ(buildSandboxSpec(in).status().code(), absl::StatusCode::kInvalidArgument);
  in = baseInput(&c);
  in.id = "";
  EXPECT_EQ(buildSandboxSpec(in).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace berth::oci

namespace berth::oci {
namespace {

TEST(SandboxSpecUsernsTest, ThePauseJoinsThePinnedUserNamespaceWithItsMappings) {
  SandboxConfig c = baseConfig();
  c.userns = SandboxConfig::UserNamespace{.uids = {{0, 65536 * 5, 65536}},
                                          .gids = {{0, 65536 * 5, 65536}}};
  json spec = build(c, [](SandboxSpecInput& in) { in.userns_path = "/run/berth/userns/abc"; });
  ASSERT_NE(findNs(spec, "user"), nullptr);
  EXPECT_EQ((*findNs(spec, "user"))["path"], "/run/berth/userns/abc");
  EXPECT_EQ((*findNs(spec, "network"))["path"], "/run/berth/netns/abc");
  EXPECT_EQ(spec["linux"]["uidMappings"][0]["hostID"], 65536 * 5);
  EXPECT_EQ(spec["linux"]["gidMappings"][0]["size"], 65536);
  // Without the pinned namespaces it cannot be made.
  SandboxSpecInput in = baseInput(&c);
  auto missing = buildSandboxSpec(in);
  EXPECT_TRUE(absl::IsInvalidArgument(missing.status())) << missing.status();
  // A host-users pod: none.
  json host = build(baseConfig());
  EXPECT_EQ(findNs(host, "user"), nullptr);
  EXPECT_FALSE(host["linux"].contains("uidMappings"));
}

}  // namespace
}  // namespace berth::oci
