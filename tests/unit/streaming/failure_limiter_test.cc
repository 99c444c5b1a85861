// The per-peer limit on failed token lookups, on a fake clock.
#include "streaming/failure_limiter.h"

#include <gtest/gtest.h>

namespace berth::streaming {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using TimePoint = std::chrono::steady_clock::time_point;

struct FakeClock {
  TimePoint now{seconds(1000)};
  FailureLimiter::Clock fn() {
    return [this] { return now; };
  }
};

TEST(StreamingFailureLimiterTest, APeerIsRefusedAfterTheLimitWithinTheWindow) {
  FakeClock clock;
  FailureLimiter limiter(10, absl::Seconds(10), clock.fn());
  for (int i = 0; i < 9; ++i) {
    limiter.recordFailure("uid 1000");
    clock.now += seconds(1);
  }
  EXPECT_FALSE(limiter.blocked("uid 1000"));  // 9 failures at t = 0…8, now t = 9
  limiter.recordFailure("uid 1000");
  EXPECT_TRUE(limiter.blocked("uid 1000"));
  // Other peers are not touched by it.
  EXPECT_FALSE(limiter.blocked("uid 0"));
  EXPECT_FALSE(limiter.blocked("ip 192.0.2.7"));

  // Until the oldest failure (t = 0) is a window old, and then for one more guess only.
  clock.now += milliseconds(999);
  EXPECT_TRUE(limiter.blocked("uid 1000"));
  clock.now += milliseconds(1);  // t = 10
  EXPECT_FALSE(limiter.blocked("uid 1000"));
  limiter.recordFailure("uid 1000");
  EXPECT_TRUE(limiter.blocked("uid 1000"));

  // A burst of failures at one instant blocks for a whole window.
  FailureLimiter burst(3, absl::Seconds(10), clock.fn());
  for (int i = 0; i < 3; ++i) burst.recordFailure("ip 192.0.2.7");
  EXPECT_TRUE(burst.blocked("ip 192.0.2.7"));
  clock.now += milliseconds(9999);
  EXPECT_TRUE(burst.blocked("ip 192.0.2.7"));
  clock.now += milliseconds(1);
  EXPECT_FALSE(burst.blocked("ip 192.0.2.7"));
}

TEST(StreamingFailureLimiterTest, QuietPeersAreForgottenAndMemoryIsBounded) {
  FakeClock clock;
  FailureLimiter limiter(2, absl::Seconds(10), clock.fn(), /*max_peers=*/2);
  limiter.recordFailure("a");
  limiter.recordFailure("b");
  // A third peer is not remembered while two are: the limiter's memory stays bounded.
  limiter.recordFailure("c");
  limiter.recordFailure("c");
  EXPECT_FALSE(limiter.blocked("c"));
  EXPECT_EQ(limiter.peersTracked(), 2u);
  clock.now += seconds(10);
  EXPECT_EQ(limiter.peersTracked(), 0u);
  limiter.recordFailure("c");
  limiter.recordFailure("c");
  EXPECT_TRUE(limiter.blocked("c"));
}

}  // namespace
}  // namespace berth::streaming
