// GetContainerEvents: container and pod sandbox lifecycle events, each carrying the pod's full
// status and its containers' statuses, fanned out to any number of subscribers. An event is
// published only after the change it reports is persisted (its publishers call in after the
// store update). A subscriber that falls behind by more than its queue holds is dropped: its
// stream ends, and the others are not held up.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "runtime/v1/api.h"

namespace berth::cri {

namespace v1 = ::runtime::v1;

// Thread-safe.
class EventHub {
 public:
  // Fills the pod's status and its containers' statuses into an event (non-verbose).
  using StatusFiller = std::function<void(const std::string& sandbox_id, v1::ContainerEventResponse*)>;

  class Subscription {
   public:
    // Waits up to `timeout` for the next event. kEvent: `out` is set; kTimeout: nothing yet;
    // kClosed: the subscription was dropped (too slow) or the hub closed.
    enum class Next { kEvent, kTimeout, kClosed };
    Next next(v1::ContainerEventResponse* out, absl::Duration timeout);
    bool dropped() const;

   private:
    friend class EventHub;
    mutable absl::Mutex mu_;
    std::deque<v1::ContainerEventResponse> queue_ ABSL_GUARDED_BY(mu_);
    bool closed_ ABSL_GUARDED_BY(mu_) = false;
    bool dropped_ ABSL_GUARDED_BY(mu_) = false;
  };

  explicit EventHub(size_t max_queue = 1024) : max_queue_(max_queue) {}

  // Set once at start-up, before events flow.
  void setStatusFiller(StatusFiller filler) { filler_ = std::move(filler); }

  std::shared_ptr<Subscription> subscribe();
  void unsubscribe(const std::shared_ptr<Subscription>& s);

  // Builds the event (statuses as they are now, after the change) and queues it for every
  // subscriber. Cheap when nobody listens.
  void publish(const std::string& container_id, const std::string& sandbox_id,
               v1::ContainerEventType type);
  // The same with statuses taken before the change, for a pod that is gone once it is
  // persisted (its DELETED event, which must still carry the pod's status: evented PLEG drops
  // an event without one).
  void publish(const std::string& container_id, v1::ContainerEventType type,
               const v1::PodSandboxStatusResponse& statuses_before);
  // Whether anybody is subscribed (to skip building statuses nobody reads).
  bool listening();

  // Ends every subscription (berthd shutdown); later subscriptions start closed.
  void close();

 private:
  void deliver(const v1::ContainerEventResponse& event);

  const size_t max_queue_;
  StatusFiller filler_;
  absl::Mutex mu_;
  std::set<std::shared_ptr<Subscription>> subs_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace berth::cri
