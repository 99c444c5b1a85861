// EventHub: fan-out to every subscriber, statuses filled in, slow subscribers dropped alone.
#include "cri/event_hub.h"

#include <gtest/gtest.h>

namespace berth::cri {
namespace {

TEST(EventHubTest, EverySubscriberGetsEveryEventInOrderWithStatuses) {
  EventHub hub;
  hub.setStatusFiller([](const std::string& pod, v1::ContainerEventResponse* ev) {
    ev->mutable_pod_sandbox_status()->set_id(pod);
  });
  auto a = hub.subscribe();
  auto b = hub.subscribe();
  hub.publish("c1", "p1", v1::CONTAINER_CREATED_EVENT);
  hub.publish("c1", "p1", v1::CONTAINER_STARTED_EVENT);
  for (auto& s : {a, b}) {
    v1::ContainerEventResponse ev;
    ASSERT_EQ(s->next(&ev, absl::ZeroDuration()), EventHub::Subscription::Next::kEvent);
    EXPECT_EQ(ev.container_event_type(), v1::CONTAINER_CREATED_EVENT);
    EXPECT_EQ(ev.pod_sandbox_status().id(), "p1");
    EXPECT_GT(ev.created_at(), 0);
    ASSERT_EQ(s->next(&ev, absl::ZeroDuration()), EventHub::Subscription::Next::kEvent);
    EXPECT_EQ(ev.container_event_type(), v1::CONTAINER_STARTED_EVENT);
    EXPECT_EQ(s->next(&ev, absl::Milliseconds(10)), EventHub::Subscription::Next::kTimeout);
  }
}

TEST(EventHubTest, ASlowSubscriberIsDroppedAndOthersKeepReceiving) {
  EventHub hub(3);
  auto slow = hub.subscribe();
  auto fast = hub.subscribe();
  v1::ContainerEventResponse ev;
  for (int i = 0; i < 5; ++i) {
    hub.publish("c" + std::to_string(i), "p", v1::CONTAINER_CREATED_EVENT);
    ASSERT_EQ(fast->next(&ev, absl::ZeroDuration()), EventHub::Subscription::Next::kEvent);
    EXPECT_EQ(ev.container_id(), "c" + std::to_string(i));
  }
  EXPECT_TRUE(slow->dropped());
  EXPECT_EQ(slow->next(&ev, absl::ZeroDuration()), EventHub::Subscription::Next::kClosed);
  EXPECT_FALSE(fast->dropped());
}

TEST(EventHubTest, CloseEndsSubscriptionsAfterTheirQueuedEvents) {
  EventHub hub;
  auto s = hub.subscribe();
  hub.publish("c", "p", v1::CONTAINER_STOPPED_EVENT);
  hub.close();
  v1::ContainerEventResponse ev;
  EXPECT_EQ(s->next(&ev, absl::ZeroDuration()), EventHub::Subscription::Next::kEvent);
  EXPECT_EQ(s->next(&ev, absl::Seconds(5)), EventHub::Subscription::Next::kClosed);
  EXPECT_FALSE(s->dropped());
  EXPECT_EQ(hub.subscribe()->next(&ev, absl::ZeroDuration()), EventHub::Subscription::Next::kClosed);
}

TEST(EventHubTest, NoSubscriberMeansNoStatusWork) {
  EventHub hub;
  int filled = 0;
  hub.setStatusFiller([&](const std::string&, v1::ContainerEventResponse*) { ++filled; });
  hub.publish("c", "p", v1::CONTAINER_CREATED_EVENT);
  EXPECT_EQ(filled, 0);
}

}  // namespace
}  // namespace berth::cri
