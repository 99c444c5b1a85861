// EventHub: fan-out of container events with bounded per-subscriber queues.
#include "cri/event_hub.h"

#include "absl/time/clock.h"
#include "common/logging.h"

namespace berth::cri {

EventHub::Subscription::Next EventHub::Subscription::next(v1::ContainerEventResponse* out,
                                                          absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !queue_.empty() || closed_; };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  if (!queue_.empty() && !dropped_) {
    *out = std::move(queue_.front());
    queue_.pop_front();
    return Next::kEvent;
  }
  return closed_ ? Next::kClosed : Next::kTimeout;
}

bool EventHub::Subscription::dropped() const {
  absl::MutexLock lock(&mu_);
  return dropped_;
}

std::shared_ptr<EventHub::Subscription> EventHub::subscribe() {
  auto s = std::make_shared<Subscription>();
  absl::MutexLock lock(&mu_);
  if (closed_) {
    absl::MutexLock sl(&s->mu_);
    s->closed_ = true;
  } else {
    subs_.insert(s);
  }
  return s;
}

void EventHub::unsubscribe(const std::shared_ptr<Subscription>& s) {
  absl::MutexLock lock(&mu_);
  subs_.erase(s);
}

void EventHub::publish(const std::string& container_id, const std::string& sandbox_id,
                       v1::ContainerEventType type) {
  if (!listening()) return;
  v1::ContainerEventResponse event;
  event.set_container_id(container_id);
  event.set_container_event_type(type);
  event.set_created_at(absl::ToUnixNanos(absl::Now()));
  if (filler_) filler_(sandbox_id, &event);
  deliver(event);
}

void EventHub::publish(const std::string& container_id, v1::ContainerEventType type,
                       const v1::PodSandboxStatusResponse& statuses_before) {
  if (!listening()) return;
  v1::ContainerEventResponse event;
  event.set_container_id(container_id);
  event.set_container_event_type(type);
  event.set_created_at(absl::ToUnixNanos(absl::Now()));
  *event.mutable_pod_sandbox_status() = statuses_before.status();
  *event.mutable_containers_statuses() = statuses_before.containers_statuses();
  deliver(event);
}

bool EventHub::listening() {
  absl::MutexLock lock(&mu_);
  return !subs_.empty();
}

void EventHub::deliver(const v1::ContainerEventResponse& event) {
  std::set<std::shared_ptr<Subscription>> subs;
  {
    absl::MutexLock lock(&mu_);
    subs = subs_;
  }
  std::vector<std::shared_ptr<Subscription>> slow;
  for (const auto& s : subs) {
    absl::MutexLock sl(&s->mu_);
    if (s->closed_) continue;
    if (s->queue_.size() >= max_queue_) {
      // Too far behind: dropping it keeps everyone else's events flowing and its memory
      // bounded; its client sees the stream end and can subscribe again.
      s->closed_ = true;
      s->dropped_ = true;
      s->queue_.clear();
      slow.push_back(s);
      continue;
    }
    s->queue_.push_back(event);
  }
  if (!slow.empty()) {
    logging::get("cri")->warn("GetContainerEvents: dropped {} subscriber(s) that fell {} events behind",
                              slow.size(), max_queue_);
    absl::MutexLock lock(&mu_);
    for (const auto& s : slow) subs_.erase(s);
  }
}

void EventHub::close() {
  std::set<std::shared_ptr<Subscription>> subs;
  {
    absl::MutexLock lock(&mu_);
    closed_ = true;
    subs.swap(subs_);
  }
  for (const auto& s : subs) {
    absl::MutexLock sl(&s->mu_);
    s->closed_ = true;
  }
}

}  // namespace berth::cri
