// Tests for the pod's resolv.conf, hosts, hostname and /dev/shm.
#include "sandbox/pod_files.h"

#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "common/fs.h"
#include "common/test_dir.h"
#include "gtest/gtest.h"

namespace berth::sandbox {
namespace {

std::string read(const std::string& path) {
  auto s = readFile(path);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *s : "";
}

mode_t modeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0);
  return st.st_mode & 07777;
}

bool mountedAt(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string a, b, c, d, mp;
    f >> a >> b >> c >> d >> mp;
    if (mp == path) return true;
  }
  return false;
}

struct ResolvCase {
  std::string label;
  std::vector<std::string> servers, searches, options;
  std::string want;  // "HOST" = the host file's copy; "" = InvalidArgument
};

class ResolvConfTest : public ::testing::TestWithParam<ResolvCase> {};

TEST_P(ResolvConfTest, Writes) {
  const ResolvCase& tc = GetParam();
  testing::TestDir dir;
  ASSERT_TRUE(writeFileAtomic(dir / "host-resolv", "nameserver 192.0.2.53\n", 0644).ok());
  SandboxConfig c;
  c.dns_servers = tc.servers;
  c.dns_searches = tc.searches;
  c.dns_options = tc.options;
  absl::Status st = writeResolvConf(dir / "resolv.conf", c, dir / "host-resolv");
  if (tc.want.empty()) {
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
    EXPECT_NE(::access((dir / "resolv.conf").c_str(), F_OK), 0);
    return;
  }
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(read(dir / "resolv.conf"), tc.want == "HOST" ? "nameserver 192.0.2.53\n" : tc.want);
  EXPECT_EQ(modeOf(dir / "resolv.conf"), 0644u);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ResolvConfTest,
    ::testing::Values(ResolvCase{"host_copy", {}, {}, {}, "HOST"},
                      ResolvCase{
                          "full",
                          {"10.96.0.10", "10.96.0.11"},
                          {"default.svc.cluster.local", "svc.cluster.local"},
                          {"ndots:5", "edns0"},
                          "search default.svc.cluster.local svc.cluster.local\n"
                          "nameserver 10.96.0.10\nnameserver 10.96.0.11\noptions ndots:5 edns0\n"},
                      ResolvCase{"servers_only", {"1.1.1.1"}, {}, {}, "nameserver 1.1.1.1\n"},
                      ResolvCase{"newline_server", {"1.1.1.1\nnameserver 6.6.6.6"}, {}, {}, ""},
                      ResolvCase{"newline_search", {"1.1.1.1"}, {"a\nb"}, {}, ""},
                      ResolvCase{"empty_option", {"1.1.1.1"}, {}, {""}, ""}),
    [](const auto& info) { return info.param.label; });

TEST(ResolvConfTest, ErrorNamesTheEntry) {
  testing::TestDir dir;
  SandboxConfig c;
  c.dns_servers = {"bad\nentry"};
  absl::Status st = writeResolvConf(dir / "r", c);
  EXPECT_NE(st.message().find("bad\nentry"), absl::string_view::npos) << st;
}

TEST(ResolvConfTest, MissingHostFileIsNotFound) {
  testing::TestDir dir;
  EXPECT_EQ(writeResolvConf(dir / "r", SandboxConfig{}, dir / "nope").code(),
            absl::StatusCode::kNotFound);
}

TEST(HostsTest, PodNetwork) {
  testing::TestDir dir;
  ASSERT_TRUE(writeHosts(dir / "hosts", "web", "10.88.0.17").ok());
  std::string h = read(dir / "hosts");
  EXPECT_NE(h.find("127.0.0.1\tlocalhost\n"), std::string::npos);
  EXPECT_NE(h.find("::1\tlocalhost ip6-localhost ip6-loopback\n"), std::string::npos);
  EXPECT_NE(h.find("\n10.88.0.17\tweb\n"), std::string::npos);
  EXPECT_EQ(modeOf(dir / "hosts"), 0644u);

  ASSERT_TRUE(writeHosts(dir / "hosts", "web", "").ok());
  EXPECT_EQ(read(dir / "hosts").find("web"), std::string::npos);
  EXPECT_EQ(writeHosts(dir / "hosts", "we b", "10.0.0.1").code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(HostsTest, CopyHost) {
  testing::TestDir dir;
  ASSERT_TRUE(writeFileAtomic(dir / "host-hosts", "127.0.0.1 localhost myhost\n", 0600).ok());
  ASSERT_TRUE(copyHostHosts(dir / "hosts", dir / "host-hosts").ok());
  EXPECT_EQ(read(dir / "hosts"), "127.0.0.1 localhost myhost\n");
  EXPECT_EQ(modeOf(dir / "hosts"), 0644u);
  EXPECT_TRUE(copyHostHosts(dir / "real-hosts").ok());  // the machine's /etc/hosts
}

TEST(HostnameTest, Writes) {
  testing::TestDir dir;
  ASSERT_TRUE(writeHostname(dir / "hostname", "web-0").ok());
  EXPECT_EQ(read(dir / "hostname"), "web-0\n");
  EXPECT_EQ(writeHostname(dir / "hostname", "").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(writeHostname(dir / "hostname", "a\nb").code(), absl::StatusCode::kInvalidArgument);
}

struct HostnameCase {
  std::string label;
  std::string name, hostname;
  NamespaceMode network;
  std::string want;  // "HOST" = gethostname()
};

class PodHostnameTest : public ::testing::TestWithParam<HostnameCase> {};

TEST_P(PodHostnameTest, Picks) {
  const HostnameCase& tc = GetParam();
  SandboxConfig c;
  c.name = tc.name;
  c.hostname = tc.hostname;
  c.network = tc.network;
  std::string want = tc.want;
  if (want == "HOST") {
    char buf[256] = {};
    ASSERT_EQ(::gethostname(buf, sizeof buf - 1), 0);
    want = buf;
  }
  std::string got = podHostname(c);
  EXPECT_EQ(got, want);
  EXPECT_LE(got.size(), 63u);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, PodHostnameTest,
    ::testing::Values(HostnameCase{"config_wins", "web", "given", NamespaceMode::kPod, "given"},
                      HostnameCase{"config_wins_on_host", "web", "given", NamespaceMode::kNode,
                                   "given"},
                      HostnameCase{"host_network", "web", "", NamespaceMode::kNode, "HOST"},
                      HostnameCase{"pod_name", "web-0", "", NamespaceMode::kPod, "web-0"},
                      HostnameCase{"sanitized", "Web_App!", "", NamespaceMode::kPod, "web-app"},
                      HostnameCase{"trimmed", "--a.b--", "", NamespaceMode::kPod, "a.b"},
                      HostnameCase{"truncated", std::string(62, 'a') + "-bcd", "",
                                   NamespaceMode::kPod, std::string(62, 'a')},
                      HostnameCase{"nothing_left", "___", "", NamespaceMode::kPod, "pod"}),
    [](const auto& info) { return info.param.label; });

class PodShmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  }
  testing::TestDir dir_;
};

TEST_F(PodShmTest, MountAndUnmountLeaveNothing) {
  std::string shm = dir_ / "pods/abc/shm";
  ASSERT_TRUE(mountPodShm(shm, 1 << 20).ok());
  EXPECT_TRUE(mountedAt(shm));
  struct statfs fs {};
  ASSERT_EQ(::statfs(shm.c_str(), &fs), 0);
  EXPECT_EQ(static_cast<unsigned long>(fs.f_type), static_cast<unsigned long>(TMPFS_MAGIC));
  EXPECT_EQ(static_cast<uint64_t>(fs.f_blocks) * fs.f_bsize, uint64_t{1} << 20);
  EXPECT_EQ(modeOf(shm), 01777u);
  EXPECT_TRUE(fs.f_flags & ST_NOSUID);
  EXPECT_TRUE(fs.f_flags & ST_NODEV);
  EXPECT_TRUE(fs.f_flags & ST_NOEXEC);
  ASSERT_TRUE(mountPodShm(shm, 1 << 20).ok());  // already mounted: one mount
  ASSERT_TRUE(writeFileAtomic(shm + "/seg", "x", 0600).ok());

  ASSERT_TRUE(unmountPodShm(shm).ok());
  EXPECT_FALSE(mountedAt(shm));
  EXPECT_NE(::access(shm.c_str(), F_OK), 0);
  EXPECT_TRUE(unmountPodShm(shm).ok());  // idempotent
}

TEST_F(PodShmTest, RelativePathIsInvalid) {
  EXPECT_EQ(mountPodShm("relative/shm").code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace berth::sandbox
