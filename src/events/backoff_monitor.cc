// Back-off on the event loop: each pending key has one loop timer; when it fires, a worker runs
// the key's task, and a failure sets a new timer with the doubled delay.
#include "events/backoff_monitor.h"

#include <algorithm>

#include "common/logging.h"

namespace berth::events {

BackoffMonitor::BackoffMonitor(EventLoop& loop, BackoffPolicy policy)
    : loop_(loop), policy_(policy) {}

BackoffMonitor::~BackoffMonitor() { stop(); }

void BackoffMonitor::stop() {
  absl::MutexLock lock(&mu_);
  stopping_ = true;
  for (auto& [key, e] : entries_) loop_.cancel(e.timer);
  entries_.clear();
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return running_ == 0; };
  mu_.Await(absl::Condition(&idle));
}

void BackoffMonitor::schedule(const std::string& key, Entry& e, absl::Duration delay) {
  uint64_t serial = e.serial;
  e.timer = loop_.after(delay, [this, key, serial] { fire(key, serial); });
}

void BackoffMonitor::add(const std::string& key, Task task, bool at_once) {
  if (stopping_) return;  // berthd is shutting down; recovery retries after the restart
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    it->second.task = std::move(task);
    return;
  }
  Entry& e = entries_[key];
  e = Entry{.task = std::move(task), .delay = policy_.initial, .serial = next_serial_++};
  e.first_is_retry = !at_once;
  schedule(key, e, at_once ? absl::ZeroDuration() : e.delay);
}

void BackoffMonitor::backoff(const std::string& key, Task task) {
  absl::MutexLock lock(&mu_);
  add(key, std::move(task), /*at_once=*/false);
}

void BackoffMonitor::soon(const std::string& key, Task task) {
  absl::MutexLock lock(&mu_);
  add(key, std::move(task), /*at_once=*/true);
}

void BackoffMonitor::cancel(const std::string& key) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  loop_.cancel(it->second.timer);
  entries_.erase(it);
}

bool BackoffMonitor::pending(const std::string& key) const {
  absl::MutexLock lock(&mu_);
  return entries_.contains(key);
}

int BackoffMonitor::attempts(const std::string& key) const {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(key);
  return it == entries_.end() ? 0 : it->second.attempts;
}

void BackoffMonitor::fire(const std::string& key, uint64_t serial) {
  Task task;
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(key);
    if (stopping_ || it == entries_.end() || it->second.serial != serial) return;
    task = it->second.task;
    ++running_;
  }
  absl::Status st = task();
  auto log = logging::get("events");
  absl::MutexLock lock(&mu_);
  --running_;
  auto it = entries_.find(key);
  if (it == entries_.end() || it->second.serial != serial) return;  // cancelled meanwhile
  Entry& e = it->second;
  if (st.ok()) {
    int retries = e.attempts + (e.first_is_retry ? 1 : 0);
    if (retries > 0) log->info("{}: clean-up succeeded after {} retries", key, retries);
    entries_.erase(it);
    return;
  }
  ++e.attempts;
  e.delay = std::min(e.delay * 2, policy_.max);
  log->warn("{}: clean-up failed again ({}), next try in {}", key, st.message(),
            absl::FormatDuration(e.delay));
  schedule(key, e, e.delay);
}

}  // namespace berth::events
