// Joined calls: a second call of a key in flight gets the first one's result without running.
#include "common/flights.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"

namespace berth {
namespace {

TEST(FlightsTest, ASecondCallJoinsTheFirstAndGetsItsResult) {
  Flights f;
  std::atomic<int> runs{0};
  absl::Notification release, entered;
  absl::Status first, second;
  std::thread a([&] {
    first = f.run("stop/x", [&] {
      ++runs;
      entered.Notify();
      release.WaitForNotification();
      return absl::UnavailableError("the first one's answer");
    });
  });
  entered.WaitForNotification();
  EXPECT_TRUE(f.inFlight("stop/x"));
  std::thread b([&] {
    second = f.run("stop/x", [&] {
      ++runs;
      return absl::OkStatus();
    });
  });
  // Another key is not held up.
  EXPECT_TRUE(f.run("stop/y", [&] { return absl::OkStatus(); }).ok());
  absl::SleepFor(absl::Milliseconds(50));
  release.Notify();
  a.join();
  b.join();
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(first.message(), "the first one's answer");
  EXPECT_EQ(second, first);
  EXPECT_FALSE(f.inFlight("stop/x"));
  // Once it has ended, the key runs afresh.
  EXPECT_TRUE(f.run("stop/x", [&] {
                 ++runs;
                 return absl::OkStatus();
               }).ok());
  EXPECT_EQ(runs, 2);
}

}  // namespace
}  // namespace berth
