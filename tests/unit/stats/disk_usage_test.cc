// Tests for the writable-layer directory walk.
#include "stats/disk_usage.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "common/test_dir.h"
#include "gtest/gtest.h"
#include "stats/fake_tree.h"
#include "stats/sampling.h"

namespace berth::stats {
namespace {

using berth::testing::TestDir;
using testing::put;

uint64_t blocksOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

TEST(DiskUsageTest, CountsBlocksAndInodesWithHardLinksOnce) {
  TestDir dir;
  std::string top = dir / "upper";
  put(top + "/a/b/big", std::string(100'000, 'x'));
  put(top + "/small", "hello");
  ASSERT_EQ(::link((top + "/a/b/big").c_str(), (top + "/big-link").c_str()), 0);
  // A symlink to something large outside is counted as itself, not followed.
  put(dir / "outside/huge", std::string(300'000, 'y'));
  std::filesystem::create_directory_symlink(dir / "outside", top + "/escape");

  uint64_t want = 0;
  for (const char* p : {"", "/a", "/a/b", "/a/b/big", "/small", "/escape"}) {
    want += blocksOf(top + p);
  }
  absl::StatusOr<DiskUsage> du = diskUsage(top);
  ASSERT_TRUE(du.ok()) << du.status();
  EXPECT_EQ(du->inodes, 6u);  // upper, a, b, big (twice linked), small, escape
  EXPECT_EQ(du->bytes, want);
  EXPECT_GE(du->bytes, 100'000u);
  EXPECT_LT(du->bytes, 300'000u);
}

TEST(DiskUsageTest, MissingDirIsNotFoundAndCancelStops) {
  TestDir dir;
  EXPECT_TRUE(absl::IsNotFound(diskUsage(dir / "missing").status()));
  put(dir / "upper/f", "x");
  std::atomic<bool> cancel{true};
  EXPECT_TRUE(absl::IsCancelled(diskUsage(dir / "upper", &cancel).status()));
}

TEST(DiskUsageTest, EmptyDirIsOneInode) {
  TestDir dir;
  absl::StatusOr<DiskUsage> du = diskUsage(dir.path());
  ASSERT_TRUE(du.ok());
  EXPECT_EQ(du->inodes, 1u);
}

TEST(DiskUsageTest, SampleTargetFillsWritableLayer) {
  TestDir dir;
  put(dir / "upper/etc/conf", std::string(10'000, 'z'));
  SamplingPaths o;
  o.cgroup_root = dir / "cgroup";
  Sample s = sampleTarget(o, Target{.writable_dir = dir / "upper"}, nullptr, 5);
  ASSERT_TRUE(s.writable_layer);
  EXPECT_EQ(s.writable_layer->timestamp_ns, 5);
  EXPECT_EQ(s.writable_layer->inodes_used, 3u);
  EXPECT_GE(s.writable_layer->used_bytes, 10'000u);
  EXPECT_FALSE(sampleTarget(o, Target{.writable_dir = dir / "gone"}, nullptr, 5).writable_layer);
}

}  // namespace
}  // namespace berth::stats
