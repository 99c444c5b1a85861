// Retries clean-ups that failed (architecture rule 7): each key gets its own back-off, 1 s
// doubling to 5 min, until its task succeeds. Retries run on berthd's event loop: its timers
// say when, its workers run them; one key's retries never overlap.
#pragma once

#include <functional>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "events/event_loop.h"

namespace berth::events {

struct BackoffPolicy {
  absl::Duration initial = absl::Seconds(1);
  absl::Duration max = absl::Minutes(5);
};

// Thread-safe. Tasks run on the loop's workers, never under the monitor's lock.
class BackoffMonitor {
 public:
  using Task = std::function<absl::Status()>;

  explicit BackoffMonitor(EventLoop& loop, BackoffPolicy policy = {});
  ~BackoffMonitor();  // stop()
  // Drops pending retries, waits for retries in progress to return, and ignores later
  // backoff() calls. Called at shutdown, before the components whose clean-ups it runs are
  // destroyed. Idempotent.
  void stop();
  BackoffMonitor(const BackoffMonitor&) = delete;
  BackoffMonitor& operator=(const BackoffMonitor&) = delete;

  // Schedules `task` for `key` after the current back-off; a key already waiting keeps its
  // back-off and gets the newer task.
  void backoff(const std::string& key, Task task);
  // As backoff(), but the first try runs at once, on a worker: the work recovery finishes after
  // a restart (a stop or removal that a crash cut off), retried with back-off if it fails.
  void soon(const std::string& key, Task task);
  // Drops a pending retry (e.g. the object was removed).
  void cancel(const std::string& key);
  bool pending(const std::string& key) const;
  // How many times `key` has been retried so far (0 when not pending).
  int attempts(const std::string& key) const;

 private:
  struct Entry {
    Task task;
    absl::Duration delay;
    int attempts = 0;
    bool first_is_retry = true;  // false for soon(): its first run is the first try
    EventLoop::TimerId timer = 0;
    uint64_t serial = 0;  // tells a cancelled and re-added key from the one a retry ran for
  };
  void add(const std::string& key, Task task, bool at_once) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void schedule(const std::string& key, Entry& e, absl::Duration delay)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void fire(const std::string& key, uint64_t serial);

  EventLoop& loop_;
  BackoffPolicy policy_;
  mutable absl::Mutex mu_;
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_serial_ ABSL_GUARDED_BY(mu_) = 1;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace berth::events
