// Tests for /proc/<pid>/net/dev parsing.
#include "stats/net_dev.h"

#include "common/test_dir.h"
#include "gtest/gtest.h"
#include "stats/fake_tree.h"
#include "stats/sampling.h"

namespace berth::stats {
namespace {

using berth::testing::TestDir;
using testing::put;

// As the kernel prints it, including a counter wide enough to touch the colon.
constexpr char kNetDev[] =
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs "
    "drop fifo colls carrier compressed\n"
    "    lo:  123456     100    0    0    0     0          0         0   123456     100    0    "
    "0    0     0       0          0\n"
    "  net1:    1000      10    1    0    0     0          0         0     2000      20    2    "
    "0    0     0       0          0\n"
    "  eth0:12345678901   50000    3    4    0     0          0         0 98765   400    5    "
    "0    0     0       0          0\n"
    "  bad: 1 2 3\n";

TEST(NetDevTest, SkipsLoAndPutsEth0First) {
  std::vector<InterfaceSample> ifs = parseNetDev(kNetDev);
  ASSERT_EQ(ifs.size(), 2u);
  EXPECT_EQ(ifs[0].name, "eth0");
  EXPECT_EQ(ifs[0].rx_bytes, 12345678901u);
  EXPECT_EQ(ifs[0].rx_errors, 3u);
  EXPECT_EQ(ifs[0].tx_bytes, 98765u);
  EXPECT_EQ(ifs[0].tx_errors, 5u);
  EXPECT_EQ(ifs[1].name, "net1");
  EXPECT_EQ(ifs[1].rx_bytes, 1000u);
  EXPECT_EQ(ifs[1].rx_errors, 1u);
  EXPECT_EQ(ifs[1].tx_bytes, 2000u);
  EXPECT_EQ(ifs[1].tx_errors, 2u);
}

TEST(NetDevTest, NoEth0KeepsFileOrder) {
  std::string text =
      "h1\nh2\n  b: 1 0 0 0 0 0 0 0 2 0 0 0 0 0 0 0\n  a: 3 0 0 0 0 0 0 0 4 0 0 0 0 0 0 0\n";
  std::vector<InterfaceSample> ifs = parseNetDev(text);
  ASSERT_EQ(ifs.size(), 2u);
  EXPECT_EQ(ifs[0].name, "b");
  EXPECT_EQ(ifs[1].name, "a");
  EXPECT_TRUE(parseNetDev("").empty());
}

TEST(NetDevTest, ReadsFromProcRootByPid) {
  TestDir dir;
  put(dir / "proc/4242/net/dev", kNetDev);
  SamplingPaths o;
  o.cgroup_root = dir / "cgroup";
  o.proc_root = dir / "proc";
  Sample s = sampleTarget(o, Target{.pid = 4242}, nullptr, 77);
  ASSERT_TRUE(s.network);
  EXPECT_EQ(s.network->timestamp_ns, 77);
  ASSERT_EQ(s.network->interfaces.size(), 2u);
  EXPECT_EQ(s.network->interfaces[0].name, "eth0");

  EXPECT_FALSE(sampleTarget(o, Target{.pid = 0}, nullptr, 77).network);     // none asked for
  EXPECT_FALSE(sampleTarget(o, Target{.pid = 4243}, nullptr, 77).network);  // process gone
}

TEST(NetDevTest, ReadsOwnNamespaceFromRealProc) {
  // Our own process always has a readable net/dev with at least "lo" (skipped).
  std::optional<NetworkSample> n = readNetwork("/proc", ::getpid(), 1);
  ASSERT_TRUE(n);
  for (const InterfaceSample& i : n->interfaces) EXPECT_NE(i.name, "lo");
}

}  // namespace
}  // namespace berth::stats
