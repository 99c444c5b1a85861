// Tests for reading cgroup v1, v2 and hybrid trees, on fake trees in a temp dir.
#include "stats/cgroup_reader.h"

#include "common/test_dir.h"
#include "gtest/gtest.h"
#include "stats/fake_tree.h"
#include "stats/sampling.h"

namespace berth::stats {
namespace {

using berth::testing::TestDir;
using testing::put;

constexpr int64_t kNow = 1'000'000'000'000;
constexpr uint64_t kMiB = 1024 * 1024;

// A v1 host: cpuacct under `cpuacct_dir`, memory and pids under their own mounts.
void writeV1(const std::string& root, const std::string& cpuacct_dir, const std::string& path) {
  put(root + "/" + cpuacct_dir + path + "/cpuacct.usage", "5000000000\n");
  put(root + "/memory" + path + "/memory.usage_in_bytes", std::to_string(100 * kMiB) + "\n");
  put(root + "/memory" + path + "/memory.limit_in_bytes", std::to_string(256 * kMiB) + "\n");
  put(root + "/memory" + path + "/memory.stat",
      "cache 1\nrss 2\ninactive_file 3\npgfault 4\npgmajfault 5\n"
      "total_cache 999\ntotal_rss " +
          std::to_string(60 * kMiB) + "\n" + "total_inactive_file " + std::to_string(30 * kMiB) +
          "\n" + "total_pgfault 1234\ntotal_pgmajfault 56\n");
  put(root + "/pids" + path + "/pids.current", "7\n");
}

// A v2 cgroup under `unified`.
void writeV2(const std::string& unified, const std::string& path, const std::string& max) {
  put(unified + "/cgroup.controllers", "cpuset cpu io memory hugetlb pids\n");
  put(unified + path + "/cpu.stat", "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n");
  put(unified + path + "/memory.current", std::to_string(80 * kMiB) + "\n");
  put(unified + path + "/memory.max", max);
  put(unified + path + "/memory.stat",
      "anon " + std::to_string(50 * kMiB) + "\nfile 100\ninactive_file " +
          std::to_string(20 * kMiB) + "\nactive_file 7\npgfault 321\npgmajfault 9\n");
  put(unified + path + "/pids.current", "3\n");
}

Sample sample(const TestDir& dir, const std::string& cgroup_path) {
  SamplingPaths o;
  o.cgroup_root = dir.path();
  o.proc_root = dir / "proc";
  return sampleTarget(o, Target{.cgroup_path = cgroup_path}, nullptr, kNow);
}

TEST(CleanCgroupPathTest, NormalisesAndRejects) {
  EXPECT_EQ(cleanCgroupPath("/berth/abc"), "/berth/abc");
  EXPECT_EQ(cleanCgroupPath("berth//abc/"), "/berth/abc");
  EXPECT_EQ(cleanCgroupPath(""), std::nullopt);
  EXPECT_EQ(cleanCgroupPath("/"), std::nullopt);
  EXPECT_EQ(cleanCgroupPath("/berth/../etc"), std::nullopt);
  EXPECT_EQ(cleanCgroupPath("/berth/./x"), std::nullopt);
}

// The cpuacct hierarchy goes by several names; every one of them is found.
class CpuacctNameTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CpuacctNameTest, FindsTheHierarchyHoldingCpuacct) {
  TestDir dir;
  writeV1(dir.path(), GetParam(), "/berth/c1");
  put(dir / "cpu/cpu.shares", "1024\n");  // a cpu-only hierarchy must not be taken for cpuacct
  CgroupLayout layout = detectCgroupLayout(dir.path());
  EXPECT_EQ(layout.cpuacct, dir / GetParam());
  EXPECT_EQ(layout.memory, dir / "memory");
  EXPECT_EQ(layout.pids, dir / "pids");
  EXPECT_EQ(layout.unified, "");
  Sample s = sample(dir, "/berth/c1");
  ASSERT_TRUE(s.cpu);
  EXPECT_EQ(s.cpu->usage_core_nano_seconds, 5'000'000'000u);
  EXPECT_EQ(s.cpu->usage_nano_cores, 0u);  // no previous sample
  EXPECT_EQ(s.cpu->timestamp_ns, kNow);
}

INSTANTIATE_TEST_SUITE_P(Names, CpuacctNameTest,
                         ::testing::Values("cpuacct", "cpu,cpuacct", "cpuacct,cpu"));

TEST(CgroupV1Test, ReadsMemoryFromTotalKeysAndPids) {
  TestDir dir;
  writeV1(dir.path(), "cpu,cpuacct", "/berth/c1");
  Sample s = sample(dir, "/berth/c1");
  ASSERT_TRUE(s.memory);
  EXPECT_EQ(s.memory->usage_bytes, 100 * kMiB);
  EXPECT_EQ(s.memory->working_set_bytes, 70 * kMiB);  // usage - total_inactive_file
  EXPECT_EQ(s.memory->available_bytes, 186 * kMiB);   // limit - working set
  EXPECT_EQ(s.memory->rss_bytes, 60 * kMiB);
  EXPECT_EQ(s.memory->page_faults, 1234u);
  EXPECT_EQ(s.memory->major_page_faults, 56u);
  EXPECT_EQ(s.memory->timestamp_ns, kNow);
  EXPECT_EQ(s.process_count, 7u);
  EXPECT_TRUE(s.hasCgroupData());
  EXPECT_FALSE(s.network);
  EXPECT_FALSE(s.writable_layer);
}

TEST(CgroupV1Test, FallsBackToPlainKeysWithoutTotals) {
  TestDir dir;
  std::string m = dir / "memory/berth/c1";
  put(m + "/memory.usage_in_bytes", "1000\n");
  put(m + "/memory.stat", "rss 600\ninactive_file 300\npgfault 11\npgmajfault 2\n");
  Sample s = sample(dir, "/berth/c1");
  ASSERT_TRUE(s.memory);
  EXPECT_EQ(s.memory->working_set_bytes, 700u);
  EXPECT_EQ(s.memory->rss_bytes, 600u);
  EXPECT_EQ(s.memory->page_faults, 11u);
  EXPECT_EQ(s.memory->major_page_faults, 2u);
  EXPECT_EQ(s.memory->available_bytes, 0u);  // no limit file: no limit
}

// Working set and available bytes for a range of usage / inactive_file / limit values.
struct MemoryCase {
  const char* name;
  uint64_t usage;
  uint64_t inactive_file;
  std::string limit;  // contents of memory.limit_in_bytes
  uint64_t working_set;
  uint64_t available;
};

class V1MemoryArithmeticTest : public ::testing::TestWithParam<MemoryCase> {};

TEST_P(V1MemoryArithmeticTest, WorkingSetAndAvailable) {
  const MemoryCase& c = GetParam();
  TestDir dir;
  std::string m = dir / "memory/pod";
  put(m + "/memory.usage_in_bytes", std::to_string(c.usage));
  put(m + "/memory.limit_in_bytes", c.limit);
  put(m + "/memory.stat", "total_inactive_file " + std::to_string(c.inactive_file) + "\n");
  Sample s = sample(dir, "/pod");
  ASSERT_TRUE(s.memory);
  EXPECT_EQ(s.memory->usage_bytes, c.usage);
  EXPECT_EQ(s.memory->working_set_bytes, c.working_set);
  EXPECT_EQ(s.memory->available_bytes, c.available);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, V1MemoryArithmeticTest,
    ::testing::Values(MemoryCase{"limited", 1000, 200, "5000\n", 800, 4200},
                      MemoryCase{"inactive_above_usage", 100, 300, "5000\n", 0, 5000},
                      MemoryCase{"working_set_above_limit", 6000, 0, "5000\n", 6000, 0},
                      MemoryCase{"default_unlimited", 1000, 200, "9223372036854771712\n", 800, 0},
                      MemoryCase{"just_below_2_62", 1000, 200, "4611686018427387903\n", 800,
                                 4611686018427387903u - 800},
                      MemoryCase{"exactly_2_62", 1000, 200, "4611686018427387904\n", 800, 0},
                      MemoryCase{"unparsable_limit", 1000, 200, "junk\n", 800, 0}),
    [](const ::testing::TestParamInfo<MemoryCase>& info) { return info.param.name; });

TEST(CgroupV2Test, ReadsUnifiedTreeAtTheRoot) {
  TestDir dir;
  writeV2(dir.path(), "/berth/c2", std::to_string(100 * kMiB) + "\n");
  put(dir / "memory/memory.usage_in_bytes", "1\n");  // a v2 cgroup named "memory" is no v1 mount
  CgroupLayout layout = detectCgroupLayout(dir.path());
  EXPECT_EQ(layout.unified, dir.path());
  EXPECT_EQ(layout.memory, "");
  Sample s = sample(dir, "/berth/c2");
  ASSERT_TRUE(s.cpu);
  EXPECT_EQ(s.cpu->usage_core_nano_seconds, 2'500'000'000u);  // usage_usec in ns
  ASSERT_TRUE(s.memory);
  EXPECT_EQ(s.memory->usage_bytes, 80 * kMiB);
  EXPECT_EQ(s.memory->working_set_bytes, 60 * kMiB);
  EXPECT_EQ(s.memory->available_bytes, 40 * kMiB);
  EXPECT_EQ(s.memory->rss_bytes, 50 * kMiB);  // anon
  EXPECT_EQ(s.memory->page_faults, 321u);
  EXPECT_EQ(s.memory->major_page_faults, 9u);
  EXPECT_EQ(s.process_count, 3u);
}

TEST(CgroupV2Test, MaxMeansNoLimit) {
  TestDir dir;
  writeV2(dir.path(), "/berth/c2", "max\n");
  Sample s = sample(dir, "/berth/c2");
  ASSERT_TRUE(s.memory);
  EXPECT_EQ(s.memory->working_set_bytes, 60 * kMiB);
  EXPECT_EQ(s.memory->available_bytes, 0u);
}

TEST(CgroupHybridTest, PrefersV1AndFallsBackToUnified) {
  TestDir dir;
  writeV1(dir.path(), "cpu,cpuacct", "/berth/c1");
  put(dir / "cpuacct", "");  // a stray file beside the mounts is ignored
  writeV2(dir / "unified", "/berth/c1", "max\n");
  CgroupLayout layout = detectCgroupLayout(dir.path());
  EXPECT_EQ(layout.unified, dir / "unified");
  EXPECT_EQ(layout.cpuacct, dir / "cpu,cpuacct");

  // Present in both: the v1 controllers win (on a hybrid host they hold the accounting).
  Sample both = sample(dir, "/berth/c1");
  ASSERT_TRUE(both.cpu && both.memory && both.process_count);
  EXPECT_EQ(both.cpu->usage_core_nano_seconds, 5'000'000'000u);
  EXPECT_EQ(both.memory->usage_bytes, 100 * kMiB);
  EXPECT_EQ(both.process_count, 7u);

  // Only in the unified tree: read from there.
  writeV2(dir / "unified", "/berth/only-v2", "max\n");
  Sample v2 = sample(dir, "/berth/only-v2");
  ASSERT_TRUE(v2.cpu && v2.memory && v2.process_count);
  EXPECT_EQ(v2.cpu->usage_core_nano_seconds, 2'500'000'000u);
  EXPECT_EQ(v2.memory->usage_bytes, 80 * kMiB);
  EXPECT_EQ(v2.process_count, 3u);
}

TEST(CgroupHybridTest, UnifiedWithoutControllersGivesCpuOnly) {
  // This machine's shape: cgroup2 at unified/ with no memory or pids controller, so a cgroup
  // there has cpu.stat (always present in v2) and nothing else.
  TestDir dir;
  put(dir / "unified/cgroup.controllers", "hugetlb\n");
  put(dir / "unified/berth/c3/cpu.stat", "usage_usec 10\n");
  put(dir / "memory/cgroup.procs", "");
  Sample s = sample(dir, "/berth/c3");
  ASSERT_TRUE(s.cpu);
  EXPECT_EQ(s.cpu->usage_core_nano_seconds, 10'000u);
  EXPECT_FALSE(s.memory);
  EXPECT_FALSE(s.process_count);
}

TEST(CgroupMissingTest, MissingFilesLeavePartsEmpty) {
  TestDir dir;
  put(dir / "memory/berth/c1/memory.usage_in_bytes", "5000\n");  // no stat, no limit
  put(dir / "pids/berth/c1/cgroup.procs", "");                   // no pids.current
  put(dir / "cpuacct/berth/c1/cpuacct.usage", "not a number\n");
  Sample s = sample(dir, "/berth/c1");
  EXPECT_FALSE(s.cpu);
  ASSERT_TRUE(s.memory);
  EXPECT_EQ(s.memory->working_set_bytes, 5000u);
  EXPECT_EQ(s.memory->rss_bytes, 0u);
  EXPECT_FALSE(s.process_count);

  Sample gone = sample(dir, "/berth/no-such-cgroup");
  EXPECT_FALSE(gone.hasCgroupData());
  EXPECT_EQ(gone.timestamp_ns, kNow);

  // No cgroup mounts at all, or a root that does not exist.
  TestDir empty;
  EXPECT_FALSE(sample(empty, "/berth/c1").hasCgroupData());
  SamplingPaths o;
  o.cgroup_root = empty / "nothing-here";
  o.proc_root = empty / "nothing-here";
  Sample none = sampleTarget(o, Target{.cgroup_path = "/x", .pid = 1, .writable_dir = "/nope"},
                             nullptr, kNow);
  EXPECT_FALSE(none.hasCgroupData() || none.network || none.writable_layer);
}

TEST(CgroupCpuTest, NanoCoresFromTwoSamples) {
  TestDir dir;
  std::string usage = dir / "cpuacct/berth/c1/cpuacct.usage";
  put(usage, "1000000000\n");
  SamplingPaths o;
  o.cgroup_root = dir.path();
  Target t{.cgroup_path = "/berth/c1"};
  Sample first = sampleTarget(o, t, nullptr, kNow);
  ASSERT_TRUE(first.cpu);
  EXPECT_EQ(first.cpu->usage_nano_cores, 0u);

  // 3 s of CPU over 2 s of wall time: 1.5 cores.
  put(usage, "4000000000\n");
  Sample second = sampleTarget(o, t, &first, kNow + 2'000'000'000);
  ASSERT_TRUE(second.cpu);
  EXPECT_EQ(second.cpu->usage_core_nano_seconds, 4'000'000'000u);
  EXPECT_EQ(second.cpu->usage_nano_cores, 1'500'000'000u);

  // Large counters over a long gap do not overflow: 64 cores for an hour.
  put(usage, std::to_string(4'000'000'000ull + 64ull * 3600 * 1'000'000'000) + "\n");
  Sample third = sampleTarget(o, t, &second, kNow + 2'000'000'000 + 3600'000'000'000);
  ASSERT_TRUE(third.cpu);
  EXPECT_EQ(third.cpu->usage_nano_cores, 64'000'000'000u);

  // A counter that went back (a new cgroup at the same path) or a clock that did not move
  // gives no rate rather than a huge one.
  put(usage, "10\n");
  Sample reset = sampleTarget(o, t, &third, kNow + 3700'000'000'000);
  EXPECT_EQ(reset.cpu->usage_nano_cores, 0u);
  Sample same_time = sampleTarget(o, t, &reset, reset.timestamp_ns);
  EXPECT_EQ(same_time.cpu->usage_nano_cores, 0u);

  // A previous sample without CPU (the cgroup appeared since) gives 0 too.
  Sample no_cpu;
  Sample after = sampleTarget(o, t, &no_cpu, kNow);
  EXPECT_EQ(after.cpu->usage_nano_cores, 0u);
}

}  // namespace
}  // namespace berth::stats
