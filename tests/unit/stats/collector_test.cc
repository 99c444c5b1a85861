// Tests for the collector's cache: track/untrack/latest, refresh() on the caller's thread,
// synchronous rounds, and the two threads.
#include "stats/collector.h"

#include <atomic>
#include <filesystem>

#include "absl/time/clock.h"
#include "common/test_dir.h"
#include "gtest/gtest.h"
#include "stats/fake_tree.h"

namespace berth::stats {
namespace {

using berth::testing::TestDir;
using testing::put;

constexpr int64_t kSecond = 1'000'000'000;

class CollectorTest : public ::testing::Test {
 protected:
  // Readings are stamped by the fake clock unless `real_clock` (the threads' tests, where time
  // must pass for the fast thread to see readings age).
  CollectorOptions options(absl::Duration interval = absl::Hours(1),
                           absl::Duration max_age = absl::Seconds(1), bool real_clock = false) {
    CollectorOptions o;
    o.cgroup_root = dir_.path();
    o.proc_root = dir_ / "proc";
    o.interval = interval;
    o.max_age = max_age;
    // Plain reads: a fake file stays readable through an open descriptor after it is removed,
    // unlike a cgroup file (open_files_test.cc and real_cgroup_test.cc cover kept files).
    o.max_open_files = 0;
    if (!real_clock) o.clock = [this] { return clock_ns_.load(); };
    return o;
  }
  void setUsage(const std::string& id, uint64_t ns) {
    put(dir_ / ("cpuacct/berth/" + id + "/cpuacct.usage"), std::to_string(ns) + "\n");
  }
  void setMemory(const std::string& id, uint64_t bytes) {
    put(dir_ / ("memory/berth/" + id + "/memory.usage_in_bytes"), std::to_string(bytes) + "\n");
  }
  void advance(int64_t ns) { clock_ns_ += ns; }
  static uint64_t cpuOf(const Collector& c, const std::string& key) {
    std::optional<Sample> s = c.latest(key);
    return s && s->cpu ? s->cpu->usage_core_nano_seconds : 0;
  }
  // Polls until `done`, for at most `limit`.
  template <typename Fn>
  static bool waitUntil(Fn done, absl::Duration limit) {
    absl::Time deadline = absl::Now() + limit;
    while (absl::Now() < deadline) {
      if (done()) return true;
      absl::SleepFor(absl::Milliseconds(5));
    }
    return done();
  }

  TestDir dir_;
  std::atomic<int64_t> clock_ns_{1'000 * kSecond};
};

TEST_F(CollectorTest, TrackCollectLatestUntrack) {
  setUsage("a", 100);
  setUsage("b", 200);
  Collector c(options());
  EXPECT_FALSE(c.latest("a"));  // not tracked
  c.track("a", Target{.cgroup_path = "/berth/a"});
  c.track("b", Target{.cgroup_path = "/berth/b"});
  EXPECT_FALSE(c.latest("a"));  // tracked, not read yet (no thread)

  c.collectNow();
  ASSERT_TRUE(c.latest("a") && c.latest("a")->cpu);
  EXPECT_EQ(c.latest("a")->cpu->usage_core_nano_seconds, 100u);
  EXPECT_EQ(c.latest("a")->cpu->usage_nano_cores, 0u);  // no previous reading
  EXPECT_EQ(c.latest("b")->cpu->usage_core_nano_seconds, 200u);
  EXPECT_EQ(c.latestAll().size(), 2u);

  // Half a core for one second.
  setUsage("a", 100 + 500'000'000);
  advance(kSecond);
  c.collectNow();
  std::optional<Sample> a = c.latest("a");
  ASSERT_TRUE(a && a->cpu);
  EXPECT_EQ(a->cpu->usage_core_nano_seconds, 500'000'100u);
  EXPECT_EQ(a->cpu->usage_nano_cores, 500'000'000u);
  EXPECT_EQ(a->cpu->timestamp_ns, clock_ns_.load());

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
  c.refresh({"a"});  // never read: read now, however recent the old target's reading was
  EXPECT_EQ(cpuOf(c, "a"), 999u);
}

TEST_F(CollectorTest, GoneCgroupKeepsLastValues) {
  setUsage("a", 100);
  Collector c(options());
  c.track("a", Target{.cgroup_path = "/berth/a"});
  c.collectNow();
  int64_t read_at = clock_ns_.load();
  std::filesystem::remove_all(dir_ / "cpuacct/berth/a");
  advance(5 * kSecond);
  c.collectNow();
  c.refresh({"a"});
  std::optional<Sample> s = c.latest("a");
  ASSERT_TRUE(s && s->cpu);
  EXPECT_EQ(s->cpu->usage_core_nano_seconds, 100u);
  EXPECT_EQ(s->cpu->timestamp_ns, read_at) << "the values keep the time they were read";
  EXPECT_EQ(s->timestamp_ns, read_at);
}

TEST_F(CollectorTest, NeverSampledTargetWithoutCgroupHasEmptySample) {
  Collector c(options());
  c.track("x", Target{.cgroup_path = "/berth/not-created-yet"});
  c.collectNow();
  std::optional<Sample> s = c.latest("x");
  ASSERT_TRUE(s);
  EXPECT_FALSE(s->hasCgroupData());
  setUsage("not-created-yet", 5);  // the container started
  advance(kSecond);
  c.collectNow();
  EXPECT_EQ(cpuOf(c, "x"), 5u);
}

// Regression: stats asked right after a container started came without CPU or memory, because
// the first reading was left to the background thread.
TEST_F(CollectorTest, RefreshReadsANewTargetInTheCallersThread) {
  setUsage("a", 100);
  setMemory("a", 4096);
  Collector c(options());  // no thread at all
  c.track("a", Target{.cgroup_path = "/berth/a"});
  c.refresh({"a"});
  std::optional<Sample> s = c.latest("a");
  ASSERT_TRUE(s && s->cpu && s->memory) << "read by refresh() itself";
  EXPECT_EQ(s->cpu->usage_core_nano_seconds, 100u);
  EXPECT_EQ(s->cpu->timestamp_ns, clock_ns_.load());
  EXPECT_EQ(s->memory->usage_bytes, 4096u);
  EXPECT_EQ(s->memory->timestamp_ns, clock_ns_.load());
  EXPECT_FALSE(s->writable_layer) << "refresh() reads cgroup files only";
}

// Regression: two stats calls a second apart (crictl stats) saw the same CPU reading, made up to
// stats_collect_period_seconds earlier.
TEST_F(CollectorTest, RefreshRereadsOnlyWhatIsOlderThanMaxAge) {
  setUsage("a", 1'000);
  Collector c(options(absl::Hours(1), absl::Seconds(1)));
  c.track("a", Target{.cgroup_path = "/berth/a"});
  c.refresh({"a"});
  int64_t first = c.latest("a")->cpu->timestamp_ns;

  setUsage("a", 2'000);
  advance(kSecond / 2);
  c.refresh({"a"});  // half a second old: kept
  EXPECT_EQ(cpuOf(c, "a"), 1'000u);
  EXPECT_EQ(c.latest("a")->cpu->timestamp_ns, first);

  setUsage("a", 1'000 + 250'000'000);
  advance(kSecond / 2);
  c.refresh({"a"});  // a second old: read again, with the rate since the first reading
  std::optional<Sample> s = c.latest("a");
  EXPECT_EQ(s->cpu->usage_core_nano_seconds, 250'001'000u);
  EXPECT_EQ(s->cpu->timestamp_ns, first + kSecond);
  EXPECT_EQ(s->cpu->usage_nano_cores, 250'000'000u);

  c.refresh({"not-tracked"});  // skipped
  EXPECT_FALSE(c.latest("not-tracked"));
}

TEST_F(CollectorTest, RefreshKeepsTheSlowPartsWithTheirOwnTimes) {
  setUsage("a", 1);
  put(dir_ / "upper/file", std::string(10000, 'x'));
  Collector c(options());
  c.track("a", Target{.cgroup_path = "/berth/a", .writable_dir = dir_ / "upper"});
  c.collectNow();
  int64_t slow_at = clock_ns_.load();
  ASSERT_TRUE(c.latest("a")->writable_layer);
  advance(3 * kSecond);
  setUsage("a", 2);
  c.refresh({"a"});
  std::optional<Sample> s = c.latest("a");
  EXPECT_EQ(s->cpu->usage_core_nano_seconds, 2u);
  EXPECT_EQ(s->cpu->timestamp_ns, slow_at + 3 * kSecond);
  ASSERT_TRUE(s->writable_layer);
  EXPECT_EQ(s->writable_layer->timestamp_ns, slow_at);
  EXPECT_GT(s->writable_layer->used_bytes, 0u);
}

TEST_F(CollectorTest, ReadingsCloserThanTheRateWindowKeepTheRate) {
  setUsage("a", 0);
  Collector c(options());
  c.track("a", Target{.cgroup_path = "/berth/a"});
  c.collectNow();
  setUsage("a", kSecond);  // one core for one second
  advance(kSecond);
  c.collectNow();
  ASSERT_EQ(c.latest("a")->cpu->usage_nano_cores, static_cast<uint64_t>(kSecond));
  // Two callers a millisecond apart: the second reading's own rate would be noise.
  setUsage("a", kSecond + 100);
  advance(1'000'000);
  c.collectNow();
  EXPECT_EQ(c.latest("a")->cpu->usage_nano_cores, static_cast<uint64_t>(kSecond));
  EXPECT_EQ(cpuOf(c, "a"), static_cast<uint64_t>(kSecond + 100));
}

TEST_F(CollectorTest, CollectNowRunsTheSlowRoundHook) {
  int rounds = 0;
  CollectorOptions o = options();
  o.on_slow_round = [&rounds] { ++rounds; };
  Collector c(std::move(o));
  c.collectNow();
  c.collectNow();
  EXPECT_EQ(rounds, 2);
}

TEST_F(CollectorTest, SlowThreadReadsNewTargetWithoutWaitingForTheInterval) {
  setUsage("a", 1);
  setUsage("late", 2);
  Collector c(options(absl::Hours(1)));
  c.track("a", Target{.cgroup_path = "/berth/a"});
  c.start();
  c.start();  // a second start does nothing
  ASSERT_TRUE(waitUntil([&] { return cpuOf(c, "a") == 1; }, absl::Seconds(10)));
  // The next full round is an hour away; a new target is still read right away.
  c.track("late", Target{.cgroup_path = "/berth/late"});
  EXPECT_TRUE(waitUntil([&] { return cpuOf(c, "late") == 2; }, absl::Seconds(10)));
}

TEST_F(CollectorTest, SlowThreadRereadsEveryIntervalAndRunsTheHook) {
  setUsage("a", 1);
  std::atomic<int> rounds{0};
  CollectorOptions o = options(absl::Milliseconds(20), absl::Seconds(1), /*real_clock=*/true);
  o.on_slow_round = [&rounds] { ++rounds; };
  Collector c(std::move(o));
  c.track("a", Target{.cgroup_path = "/berth/a"});
  c.start();
  ASSERT_TRUE(waitUntil([&] { return cpuOf(c, "a") == 1; }, absl::Seconds(10)));
  setUsage("a", 2);
  EXPECT_TRUE(waitUntil([&] { return cpuOf(c, "a") == 2; }, absl::Seconds(10)));
  EXPECT_TRUE(waitUntil([&] { return rounds.load() >= 2; }, absl::Seconds(10)));
}

TEST_F(CollectorTest, FastThreadKeepsCgroupsFreshOnlyWhileAsked) {
  setUsage("a", 1);
  // Slow rounds an hour apart: only the fast thread can read "a" again.
  Collector c(options(absl::Hours(1), absl::Milliseconds(100), /*real_clock=*/true));
  c.track("a", Target{.cgroup_path = "/berth/a"});
  c.start();
  ASSERT_TRUE(waitUntil([&] { return cpuOf(c, "a") == 1; }, absl::Seconds(10)));
  // Nobody has asked for stats: nothing is read again.
  setUsage("a", 2);
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_EQ(cpuOf(c, "a"), 1u);
  // One refresh() (which reads "a" itself) starts the fast thread; it then follows changes
  // without further calls.
  c.refresh({"a"});
  EXPECT_EQ(cpuOf(c, "a"), 2u);
  setUsage("a", 3);
  EXPECT_TRUE(waitUntil([&] { return cpuOf(c, "a") == 3; }, absl::Seconds(10)));
  setUsage("a", 4);
  EXPECT_TRUE(waitUntil([&] { return cpuOf(c, "a") == 4; }, absl::Seconds(10)));
}

TEST_F(CollectorTest, WindowsFollowTheOptions) {
  Collector c(options(absl::Seconds(10), absl::Seconds(1)));
  EXPECT_EQ(c.fastInterval(), absl::Milliseconds(750));
  EXPECT_EQ(c.demandWindow(), absl::Seconds(30));
  Collector slow(options(absl::Seconds(60), absl::Seconds(2)));
  EXPECT_EQ(slow.fastInterval(), absl::Milliseconds(1500));
  EXPECT_EQ(slow.demandWindow(), absl::Seconds(180));
}

TEST_F(CollectorTest, DestructorStopsPromptly) {
  absl::Time begin = absl::Now();
  {
    Collector c(options(absl::Hours(1)));
    c.start();
    c.refresh({});  // the fast thread running too
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_LT(absl::Now() - begin, absl::Seconds(5));
  Collector never_started(options());  // destroying one that never started is fine
}

}  // namespace
}  // namespace berth::stats
