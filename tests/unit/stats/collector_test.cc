// Tests for the collector's cache: track/untrack/latest, synchronous rounds, the thread.
#include "stats/collector.h"

#include <filesystem>

#include "absl/time/clock.h"
#include "common/test_dir.h"
#include "gtest/gtest.h"
#include "stats/fake_tree.h"

namespace berth::stats {
namespace {

using berth::testing::TestDir;
using testing::put;

class CollectorTest : public ::testing::Test {
 protected:
  CollectorOptions options(absl::Duration interval = absl::Hours(1)) const {
    CollectorOptions o;
    o.cgroup_root = dir_.path();
    o.proc_root = dir_ / "proc";
    o.interval = interval;
    return o;
  }
  void setUsage(const std::string& id, uint64_t ns) {
    put(dir_ / ("cpuacct/berth/" + id + "/cpuacct.usage"), std::to_string(ns) + "\n");
  }
  // Polls `c` until `key` has a sample, for at most `limit`.
  static std::optional<Sample> waitFor(const Collector& c, const std::string& key,
                                       absl::Duration limit) {
    absl::Time deadline = absl::Now() + limit;
    while (absl::Now() < deadline) {
      if (std::optional<Sample> s = c.latest(key)) return s;
      absl::SleepFor(absl::Milliseconds(5));
    }
    return std::nullopt;
  }

  TestDir dir_;
};

TEST_F(CollectorTest, TrackCollectLatestUntrack) {
  setUsage("a", 100);
  setUsage("b", 200);
  Collector c(options());
  EXPECT_FALSE(c.latest("a"));  // not tracked
  c.track("a", Target{.cgroup_path = "/berth/a"});
  c.track("b", Target{.cgroup_path = "/berth/b"});
  EXPECT_FALSE(c.latest("a"));  // tracked, not sampled yet (no thread)

  c.collectNow();
  ASSERT_TRUE(c.latest("a") && c.latest("a")->cpu);
  EXPECT_EQ(c.latest("a")->cpu->usage_core_nano_seconds, 100u);
  EXPECT_EQ(c.latest("b")->cpu->usage_core_nano_seconds, 200u);
  EXPECT_EQ(c.latestAll().size(), 2u);

  // The second round has a previous sample, so a rate.
  setUsage("a", 100 + 50'000'000);
  absl::SleepFor(absl::Milliseconds(20));
  c.collectNow();
  std::optional<Sample> a = c.latest("a");
  ASSERT_TRUE(a && a->cpu);
  EXPECT_EQ(a->cpu->usage_core_nano_seconds, 50'000'100u);
  EXPECT_GT(a->cpu->usage_nano_cores, 0u);

  c.untrack("a");
  EXPECT_FALSE(c.latest("a"));
  EXPECT_TRUE(c.latest("b"));
  c.untrack("a");  // untracking twice is fine
  c.collectNow();
  ASSERT_EQ(c.latestAll().size(), 1u);
  EXPECT_EQ(c.latestAll()[0].first, "b");
}

TEST_F(CollectorTest, RetrackWithNewTargetDropsOldSample) {
  setUsage("a", 100);
  setUsage("a2", 999);
  Collector c(options());
  c.track("a", Target{.cgroup_path = "/berth/a"});
  c.collectNow();
  ASSERT_TRUE(c.latest("a"));
  c.track("a", Target{.cgroup_path = "/berth/a"});  // the same: sample kept
  EXPECT_TRUE(c.latest("a"));
  c.track("a", Target{.cgroup_path = "/berth/a2"});  // a different target: starts over
  EXPECT_FALSE(c.latest("a"));
  c.collectNow();
  EXPECT_EQ(c.latest("a")->cpu->usage_core_nano_seconds, 999u);
}

TEST_F(CollectorTest, GoneCgroupKeepsLastSample) {
  setUsage("a", 100);
  Collector c(options());
  c.track("a", Target{.cgroup_path = "/berth/a"});
  c.collectNow();
  std::filesystem::remove_all(dir_ / "cpuacct/berth/a");
  c.collectNow();
  std::optional<Sample> s = c.latest("a");
  ASSERT_TRUE(s && s->cpu);
  EXPECT_EQ(s->cpu->usage_core_nano_seconds, 100u);
}

TEST_F(CollectorTest, NeverSampledTargetWithoutCgroupHasEmptySample) {
  Collector c(options());
  c.track("x", Target{.cgroup_path = "/berth/not-created-yet"});
  c.collectNow();
  std::optional<Sample> s = c.latest("x");
  ASSERT_TRUE(s);
  EXPECT_FALSE(s->hasCgroupData());
  setUsage("not-created-yet", 5);  // the container started
  c.collectNow();
  EXPECT_EQ(c.latest("x")->cpu->usage_core_nano_seconds, 5u);
}

TEST_F(CollectorTest, ThreadSamplesNewTargetWithoutWaitingForTheInterval) {
  setUsage("a", 1);
  setUsage("late", 2);
  Collector c(options(absl::Hours(1)));
  c.track("a", Target{.cgroup_path = "/berth/a"});
  c.start();
  c.start();                                        // a second start does nothing
  ASSERT_TRUE(waitFor(c, "a", absl::Seconds(10)));  // the first round runs at once
  // The next full round is an hour away; a new target is still sampled right away.
  c.track("late", Target{.cgroup_path = "/berth/late"});
  std::optional<Sample> s = waitFor(c, "late", absl::Seconds(10));
  ASSERT_TRUE(s && s->cpu);
  EXPECT_EQ(s->cpu->usage_core_nano_seconds, 2u);
}

TEST_F(CollectorTest, ThreadResamplesEveryInterval) {
  setUsage("a", 1);
  Collector c(options(absl::Milliseconds(20)));
  c.track("a", Target{.cgroup_path = "/berth/a"});
  c.start();
  ASSERT_TRUE(waitFor(c, "a", absl::Seconds(10)));
  setUsage("a", 2);
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline && c.latest("a")->cpu->usage_core_nano_seconds != 2) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(c.latest("a")->cpu->usage_core_nano_seconds, 2u);
}

TEST_F(CollectorTest, DestructorStopsPromptly) {
  absl::Time begin = absl::Now();
  {
    Collector c(options(absl::Hours(1)));
    c.start();
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_LT(absl::Now() - begin, absl::Seconds(5));
  Collector never_started(options());  // destroying one that never started is fine
}

}  // namespace
}  // namespace berth::stats
