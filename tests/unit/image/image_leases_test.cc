// Tests for ImageLeases: leases and claims exclude each other, a lease waits for a claim to end,
// a claim never waits.
#include "image/image_leases.h"

#include <atomic>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace berth::image {
namespace {

TEST(ImageLeasesTest, LeasedKeyCannotBeClaimedUntilEveryLeaseEnds) {
  ImageLeases leases;
  const std::string key = ImageLeases::blobKey("sha256:1");
  ImageLeases::Lease a = leases.lease();
  ImageLeases::Lease b = leases.lease();
  a.add(key);
  b.add(key);
  EXPECT_EQ(leases.holders(key), 2);
  {
    ImageLeases::Claims gc(leases);
    EXPECT_FALSE(gc.claim(key));
    EXPECT_TRUE(gc.claim(ImageLeases::blobKey("sha256:2"))) << "others are free";
  }
  a.release();
  {
    ImageLeases::Claims gc(leases);
    EXPECT_FALSE(gc.claim(key)) << "still held by b";
  }
  ImageLeases::Lease moved = std::move(b);
  EXPECT_EQ(leases.holders(key), 1);
  moved = ImageLeases::Lease();
  EXPECT_EQ(leases.holders(key), 0);
  ImageLeases::Claims gc(leases);
  EXPECT_TRUE(gc.claim(key));
  ImageLeases::Claims other(leases);
  EXPECT_FALSE(other.claim(key)) << "one collection at a time per key";
}

TEST(ImageLeasesTest, LeaseWaitsWhileACollectionRemovesTheKey) {
  ImageLeases leases;
  const std::string key = ImageLeases::snapshotKey("sha256:c");
  auto gc = std::make_unique<ImageLeases::Claims>(leases);
  ASSERT_TRUE(gc->claim(key));
  std::atomic<bool> leased{false};
  absl::Notification started;
  std::thread pull([&] {
    ImageLeases::Lease lease = leases.lease();
    started.Notify();
    lease.add(key);
    leased = true;
  });
  started.WaitForNotification();
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_FALSE(leased) << "the lease waits for the removal to finish";
  gc.reset();  // the collection ends
  pull.join();
  EXPECT_TRUE(leased);
}

}  // namespace
}  // namespace berth::image
