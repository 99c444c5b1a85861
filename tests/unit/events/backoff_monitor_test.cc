// Back-off retries of failed clean-ups.
#include "events/backoff_monitor.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "absl/time/clock.h"

namespace berth::events {
namespace {

TEST(BackoffMonitorTest, RetriesWithDoublingDelayUntilSuccess) {
  EventLoop loop;
  BackoffMonitor m(loop, {.initial = absl::Milliseconds(20), .max = absl::Milliseconds(200)});
  std::atomic<int> calls{0};
  std::vector<absl::Time> times;
  absl::Mutex mu;
  absl::Time start = absl::Now();
  m.backoff("pod-a", [&]() -> absl::Status {
    absl::MutexLock lock(&mu);
    times.push_back(absl::Now());
    return ++calls < 4 ? absl::UnavailableError("not yet") : absl::OkStatus();
  });
  EXPECT_TRUE(m.pending("pod-a"));
  for (int i = 0; i < 200 && m.pending("pod-a"); ++i) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_FALSE(m.pending("pod-a"));
  EXPECT_EQ(calls, 4);
  absl::MutexLock lock(&mu);
  ASSERT_EQ(times.size(), 4u);
  // 20 ms, then 40, 80, 160 between tries.
  EXPECT_GE(times[0] - start, absl::Milliseconds(20));
  EXPECT_GE(times[1] - times[0], absl::Milliseconds(40));
  EXPECT_GE(times[2] - times[1], absl::Milliseconds(80));
  EXPECT_GE(times[3] - times[2], absl::Milliseconds(160));
}

TEST(BackoffMonitorTest, DelayIsCapped) {
  EventLoop loop;
  BackoffMonitor m(loop, {.initial = absl::Milliseconds(10), .max = absl::Milliseconds(30)});
  std::atomic<int> calls{0};
  m.backoff("k", [&] { return ++calls < 6 ? absl::InternalError("x") : absl::OkStatus(); });
  absl::Time start = absl::Now();
  for (int i = 0; i < 300 && m.pending("k"); ++i) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_EQ(calls, 6);
  // Uncapped would take 10+20+40+80+160+320 ms; capped at 30 ms it is about 10+20+30*4.
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(600));
}

TEST(BackoffMonitorTest, CancelDropsAndKeysAreIndependent) {
  EventLoop loop;
  BackoffMonitor m(loop, {.initial = absl::Milliseconds(30), .max = absl::Seconds(1)});
  std::atomic<int> a{0}, b{0};
  m.backoff("a", [&] { ++a; return absl::OkStatus(); });
  m.backoff("b", [&] { ++b; return absl::OkStatus(); });
  m.cancel("a");
  for (int i = 0; i < 100 && m.pending("b"); ++i) absl::SleepFor(absl::Milliseconds(5));
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(a, 0);
  EXPECT_EQ(b, 1);
}

TEST(BackoffMonitorTest, DestructorStopsWithPendingWork) {
  std::atomic<int> calls{0};
  {
    EventLoop loop;
    BackoffMonitor m(loop, {.initial = absl::Seconds(60)});
    m.backoff("x", [&] { ++calls; return absl::OkStatus(); });
  }
  EXPECT_EQ(calls, 0);
}

// Shutdown: stop() returns only after a retry in progress has returned, and nothing runs or is
// scheduled afterwards, so that the components the retries use can be destroyed next.
TEST(BackoffMonitorTest, StopWaitsForARunningRetryAndRefusesNewOnes) {
  EventLoop loop;
  BackoffMonitor m(loop, {.initial = absl::Milliseconds(1)});
  std::atomic<bool> running{false}, finished{false};
  std::atomic<int> later{0};
  m.backoff("slow", [&] {
    running = true;
    absl::SleepFor(absl::Milliseconds(200));
    finished = true;
    return absl::OkStatus();
  });
  for (int i = 0; i < 200 && !running; ++i) absl::SleepFor(absl::Milliseconds(5));
  ASSERT_TRUE(running);
  m.stop();
  EXPECT_TRUE(finished) << "stop() returned while a retry was still running";
  m.backoff("late", [&] {
    ++later;
    return absl::OkStatus();
  });
  EXPECT_FALSE(m.pending("late"));
  m.stop();  // idempotent
  EXPECT_EQ(later, 0);
}

}  // namespace
}  // namespace berth::events
