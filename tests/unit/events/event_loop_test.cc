// The event loop: descriptors, timers, the worker pool and stop.
#include "events/event_loop.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/eventually.h"

namespace berth::events {
namespace {

using berth::testing::eventually;

struct Pipe {
  int r = -1, w = -1;
  Pipe() {
    int fds[2];
    EXPECT_EQ(::pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
    r = fds[0];
    w = fds[1];
  }
  ~Pipe() {
    if (r >= 0) ::close(r);
    if (w >= 0) ::close(w);
  }
};

TEST(EventLoopTest, ReadableDescriptorCallsBackOnTheLoopThreadUntilUnwatched) {
  EventLoop loop;
  Pipe p;
  std::atomic<int> bytes{0};
  std::atomic<bool> hangup{false};
  ASSERT_TRUE(loop.watch(p.r,
                         [&] {
                           char buf[16];
                           ssize_t n = ::read(p.r, buf, sizeof buf);
                           if (n > 0) bytes += static_cast<int>(n);
                           if (n == 0) {
                             hangup = true;
                             loop.unwatch(p.r);  // from its own callback: does not wait for itself
                           }
                         })
                  .ok());
  ASSERT_EQ(::write(p.w, "abc", 3), 3);
  ASSERT_TRUE(eventually([&] { return bytes == 3; }));
  ::close(p.w);
  p.w = -1;
  ASSERT_TRUE(eventually([&] { return hangup.load(); }));
}

TEST(EventLoopTest, UnwatchWaitsForACallbackInProgress) {
  EventLoop loop;
  Pipe p;
  std::atomic<bool> in{false}, out{false};
  ASSERT_TRUE(loop.watch(p.r,
                         [&] {
                           char c;
                           (void)::read(p.r, &c, 1);
                           in = true;
                           absl::SleepFor(absl::Milliseconds(150));
                           out = true;
                         })
                  .ok());
  ASSERT_EQ(::write(p.w, "x", 1), 1);
  ASSERT_TRUE(eventually([&] { return in.load(); }));
  loop.unwatch(p.r);
  EXPECT_TRUE(out) << "unwatch returned while the callback still ran";
  ASSERT_EQ(::write(p.w, "y", 1), 1);
  absl::SleepFor(absl::Milliseconds(50));
  char c;
  EXPECT_EQ(::read(p.r, &c, 1), 1) << "the callback ran after unwatch";
}

TEST(EventLoopTest, TimersFireInOrderAndCancelledOnesNever) {
  EventLoop loop;
  absl::Mutex mu;
  std::vector<int> order;
  absl::Time start = absl::Now();
  auto record = [&](int v) {
    return [&, v] {
      absl::MutexLock lock(&mu);
      order.push_back(v);
    };
  };
  loop.after(absl::Milliseconds(60), record(3));
  loop.after(absl::Milliseconds(20), record(1));
  EventLoop::TimerId gone = loop.after(absl::Milliseconds(30), record(99));
  loop.after(absl::Milliseconds(40), record(2));
  loop.cancel(gone);
  ASSERT_TRUE(eventually([&] {
    absl::MutexLock lock(&mu);
    return order.size() == 3;
  }));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(60));
  absl::SleepFor(absl::Milliseconds(30));
  absl::MutexLock lock(&mu);
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

// Work runs in parallel up to the bound, and idle workers end: the thread count follows the
// load, not the number of things watched.
TEST(EventLoopTest, WorkersGrowToTheBoundAndEndWhenIdle) {
  EventLoop loop({.max_workers = 4, .idle = absl::Milliseconds(100)});
  EXPECT_EQ(loop.threads(), 1);
  std::atomic<int> running{0}, peak{0}, done{0};
  absl::Notification release;
  for (int i = 0; i < 12; ++i) {
    loop.post([&] {
      int now = ++running;
      int p = peak.load();
      while (now > p && !peak.compare_exchange_weak(p, now)) {
      }
      release.WaitForNotificationWithTimeout(absl::Seconds(5));
      --running;
      ++done;
    });
  }
  ASSERT_TRUE(eventually([&] { return running == 4; }));
  EXPECT_EQ(loop.threads(), 5);
  release.Notify();
  ASSERT_TRUE(eventually([&] { return done == 12; }));
  EXPECT_EQ(peak, 4);
  absl::SleepFor(absl::Milliseconds(300));  // past the idle time: the workers end
  loop.post([] {});                         // and this joins them (and starts one)
  EXPECT_LE(loop.threads(), 2);
}

TEST(EventLoopTest, StopWaitsForRunningWorkDropsTheRestAndRefusesMore) {
  EventLoop loop({.max_workers = 1});
  std::atomic<bool> started{false}, finished{false};
  std::atomic<int> later{0};
  loop.post([&] {
    started = true;
    absl::SleepFor(absl::Milliseconds(150));
    finished = true;
  });
  loop.post([&] { ++later; });  // queued behind the first: dropped
  loop.after(absl::Milliseconds(1), [&] { ++later; });
  ASSERT_TRUE(eventually([&] { return started.load(); }));
  loop.stop();
  EXPECT_TRUE(finished) << "stop() returned while work still ran";
  loop.post([&] { ++later; });
  EXPECT_EQ(loop.after(absl::Milliseconds(1), [&] { ++later; }), 0u);
  Pipe p;
  EXPECT_FALSE(loop.watch(p.r, [] {}).ok());
  absl::SleepFor(absl::Milliseconds(30));
  EXPECT_EQ(later, 0);
  loop.stop();  // idempotent
}

}  // namespace
}  // namespace berth::events
