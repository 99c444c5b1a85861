// The CNI client against the real Debian plugins (bridge + host-local) in a namespace of our
// own. Needs root and /usr/lib/cni; skipped otherwise. Only a 198.18.0.0/15 subnet, no
// masquerading; the bridge, the namespace and the ip_forward setting are put back afterwards.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/fs.h"
#include "common/test_dir.h"
#include "gtest/gtest.h"
#include "network/cni.h"
#include "network/netns.h"

namespace berth::network {
namespace {

using nlohmann::json;

constexpr char kPluginDir[] = "/usr/lib/cni";
constexpr char kIpForward[] = "/proc/sys/net/ipv4/ip_forward";

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// Undoes what the test did to the host, whatever assertion stopped it.
struct HostCleanup {
  std::string bridge, netns, netns_dir, ip_forward;
  ~HostCleanup() {
    if (!bridge.empty()) {
      std::string cmd = absl::StrCat("ip link del ", bridge, " >/dev/null 2>&1");
      if (std::system(cmd.c_str()) != 0) {
        // Not created (the test stopped before ADD): nothing to remove.
      }
    }
    if (!netns.empty()) (void)removeNetns(netns);
    if (!netns_dir.empty()) (void)releaseNetnsDir(netns_dir);
    // The bridge plugin turns on forwarding for a gateway; leave the host as it was.
    if (!ip_forward.empty()) std::ofstream(kIpForward) << ip_forward;
  }
};

// ADD, CHECK and DEL of one pod; `cleanup` says what to undo.
void attachAndDetach(const testing::TestDir& tmp, HostCleanup& cleanup) {
  const int id = static_cast<int>(::getpid() % 10000);
  const std::string subnet_prefix = absl::StrCat("198.18.", 10 + id % 200, ".");
  const std::string bridge = absl::StrCat("bcni", id);
  ASSERT_FALSE(exists("/sys/class/net/" + bridge)) << "bridge name in use";
  cleanup.bridge = bridge;  // only now is it ours to remove
  cleanup.netns_dir = tmp / "netns";
  cleanup.netns = cleanup.netns_dir + "/pod";
  cleanup.ip_forward = readFile(kIpForward).value_or("");

  ASSERT_TRUE(createNetns(cleanup.netns).ok());
  std::string ipam_dir = tmp / "ipam";
  json list = {
      {"cniVersion", "1.0.0"},
      {"name", "bcni-test"},
      {"plugins",
       json::array({json{
           {"type", "bridge"},
           {"bridge", cleanup.bridge},
           {"isGateway", true},
           {"ipMasq", false},
           {"ipam",
            {{"type", "host-local"},
             {"ranges", json::array({json::array({json{{"subnet", subnet_prefix + "0/24"}}})})},
             {"dataDir", ipam_dir}}}}})},
  };
  ASSERT_TRUE(makeDirs(tmp / "net.d", 0755).ok());
  ASSERT_TRUE(writeFileAtomic(tmp / "net.d/10-test.conflist", list.dump(), 0644).ok());

  CniOptions o;
  o.conf_dir = tmp / "net.d";
  o.bin_dirs = {kPluginDir};
  o.default_network = false;
  CniManager m(o);
  ASSERT_TRUE(m.readiness().ready) << m.readiness().message;

  CniAttachment a;
  a.container_id = "cni-real-test";
  a.netns_path = cleanup.netns;
  a.pod_namespace = "default";
  a.pod_name = "real";
  a.pod_uid = "uid";
  absl::StatusOr<json> added = m.add(a);
  ASSERT_TRUE(added.ok()) << added.status();
  std::vector<std::string> ips = resultIps(*added);
  ASSERT_EQ(ips.size(), 1u) << added->dump();
  EXPECT_TRUE(absl::StartsWith(ips[0], subnet_prefix)) << ips[0];
  std::string lease = absl::StrCat(ipam_dir, "/bcni-test/", ips[0]);
  EXPECT_TRUE(exists(lease));
  EXPECT_TRUE(exists("/sys/class/net/" + cleanup.bridge));

  EXPECT_TRUE(m.check(a, *added).ok());
  absl::Status deleted = m.del(a, *added);
  EXPECT_TRUE(deleted.ok()) << deleted;
  EXPECT_FALSE(exists(lease));
  // DEL again (as after a restart) is fine.
  EXPECT_TRUE(m.del(a, *added).ok());
}

TEST(CniRealPluginsTest, BridgeWithHostLocal) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  for (const char* p : {"bridge", "host-local"}) {
    if (!exists(absl::StrCat(kPluginDir, "/", p)))
      GTEST_SKIP() << "no " << p << " in " << kPluginDir;
  }
  if (!findExecutable("ip").ok()) GTEST_SKIP() << "no ip command";

  testing::TestDir tmp;
  std::string bridge, ip_forward;
  {
    HostCleanup cleanup;
    attachAndDetach(tmp, cleanup);
    bridge = cleanup.bridge;
    ip_forward = cleanup.ip_forward;
  }
  EXPECT_FALSE(exists("/sys/class/net/" + bridge));
  EXPECT_EQ(readFile(kIpForward).value_or(""), ip_forward);
}

}  // namespace
}  // namespace berth::network
