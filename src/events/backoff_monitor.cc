// The retry loop: sleep until the earliest due entry, run it without the lock, reschedule
// it with a doubled delay if it failed again.
#include "events/backoff_monitor.h"

#include <algorithm>

#include "absl/time/clock.h"
#include "common/logging.h"

namespace berth::events {

BackoffMonitor::BackoffMonitor(BackoffPolicy policy) : policy_(policy) {
  thread_ = std::thread([this] { run(); });
}

BackoffMonitor::~BackoffMonitor() { stop(); }

void BackoffMonitor::stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    entries_.clear();
  }
  if (thread_.joinable()) thread_.join();
}

void BackoffMonitor::backoff(const std::string& key, Task task) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return;  // berthd is shutting down; recovery retries after the restart
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    it->second.task = std::move(task);
    return;
  }
  entries_[key] = Entry{.task = std::move(task),
                        .due = absl::Now() + policy_.initial,
                        .delay = policy_.initial};
}

void BackoffMonitor::cancel(const std::string& key) {
  absl::MutexLock lock(&mu_);
  entries_.erase(key);
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

void BackoffMonitor::run() {
  auto log = logging::get("events");
  for (;;) {
    std::string key;
    Task task;
    {
      absl::MutexLock lock(&mu_);
      for (;;) {
        if (stopping_) return;
        absl::Time next = absl::InfiniteFuture();
        for (const auto& [k, e] : entries_) next = std::min(next, e.due);
        if (next <= absl::Now()) break;
        // Wake for the next due entry, a new entry, or shutdown.
        size_t count = entries_.size();
        auto changed = [this, count]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return stopping_ || entries_.size() != count;
        };
        mu_.AwaitWithDeadline(absl::Condition(&changed), next);
      }
      auto it = std::min_element(entries_.begin(), entries_.end(), [](const auto& a, const auto& b) {
        return a.second.due < b.second.due;
      });
      key = it->first;
      task = it->second.task;
    }
    absl::Status st = task();
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(key);
    if (it == entries_.end()) continue;  // cancelled meanwhile
    if (st.ok()) {
      log->info("{}: clean-up succeeded after {} retries", key, it->second.attempts + 1);
      entries_.erase(it);
      continue;
    }
    Entry& e = it->second;
    ++e.attempts;
    e.delay = std::min(e.delay * 2, policy_.max);
    e.due = absl::Now() + e.delay;
    log->warn("{}: clean-up failed again ({}), next try in {}", key, st.message(),
              absl::FormatDuration(e.delay));
  }
}

}  // namespace berth::events
