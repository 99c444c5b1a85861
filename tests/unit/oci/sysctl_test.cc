// Tests for the namespaced-sysctl rules.
#include "oci/sysctl.h"

#include "gtest/gtest.h"

namespace berth::oci {
namespace {

TEST(SysctlTest, Normalize) {
  EXPECT_EQ(normalizeSysctlName("net.ipv4.ip_forward"), "net.ipv4.ip_forward");
  EXPECT_EQ(normalizeSysctlName("net/ipv4/ip_forward"), "net.ipv4.ip_forward");
  EXPECT_EQ(normalizeSysctlName("net/ipv4/conf/eth0.100/forwarding"),
            "net.ipv4.conf.eth0/100.forwarding");
}

TEST(SysctlTest, Namespaces) {
  EXPECT_EQ(sysctlNamespace("kernel.shmmax"), SysctlNamespace::kIpc);
  EXPECT_EQ(sysctlNamespace("kernel.shm_rmid_forced"), SysctlNamespace::kIpc);
  EXPECT_EQ(sysctlNamespace("kernel.msgmax"), SysctlNamespace::kIpc);
  EXPECT_EQ(sysctlNamespace("kernel.sem"), SysctlNamespace::kIpc);
  EXPECT_EQ(sysctlNamespace("fs.mqueue.msg_max"), SysctlNamespace::kIpc);
  EXPECT_EQ(sysctlNamespace("net.core.somaxconn"), SysctlNamespace::kNet);
  EXPECT_EQ(sysctlNamespace("kernel.hostname"), SysctlNamespace::kUts);
  EXPECT_EQ(sysctlNamespace("kernel.pid_max"), SysctlNamespace::kHost);
  EXPECT_EQ(sysctlNamespace("vm.overcommit_memory"), SysctlNamespace::kHost);
  EXPECT_EQ(sysctlNamespace("kernel.semx"), SysctlNamespace::kHost);
}

struct Case {
  std::string name;
  bool host_network;
  bool host_ipc;
  bool ok;
};

class PodSysctlTest : public ::testing::TestWithParam<Case> {};

TEST_P(PodSysctlTest, Validates) {
  const Case& c = GetParam();
  std::map<std::string, std::string> out;
  absl::Status st = validatePodSysctls({{c.name, "1"}}, c.host_network, c.host_ipc, &out);
  if (c.ok) {
    EXPECT_TRUE(st.ok()) << st;
    EXPECT_EQ(out.size(), 1u);
  } else {
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(st.message().find(c.name), absl::string_view::npos) << st;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, PodSysctlTest,
    ::testing::Values(
        Case{"net.core.somaxconn", false, false, true},
        Case{"net.core.somaxconn", true, false, false},
        Case{"net/ipv4/ip_unprivileged_port_start", true, false, false},
        Case{"net.core.somaxconn", false, true, true}, Case{"kernel.shmmax", false, false, true},
        Case{"kernel.shmmax", false, true, false}, Case{"kernel.msgmnb", false, true, false},
        Case{"kernel.sem", false, true, false}, Case{"fs.mqueue.queues_max", false, true, false},
        Case{"kernel.shmmax", true, false, true}, Case{"kernel.hostname", true, false, false},
        Case{"kernel.domainname", false, false, true}, Case{"kernel.pid_max", false, false, false},
        Case{"vm.swappiness", false, false, false}));

TEST(PodSysctlTest, RejectsNewlineInValue) {
  std::map<std::string, std::string> out;
  auto st = validatePodSysctls({{"net.core.somaxconn", "1\n2"}}, false, false, &out);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace berth::oci
