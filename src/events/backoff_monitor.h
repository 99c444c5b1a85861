// Retries clean-ups that failed (architecture rule 7): each key gets its own back-off, 1 s
// doubling to 5 min, until its task succeeds. One thread runs all retries.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace berth::events {

struct BackoffPolicy {
  absl::Duration initial = absl::Seconds(1);
  absl::Duration max = absl::Minutes(5);
};

// Thread-safe. Tasks run on the monitor's own thread, never under its lock.
class BackoffMonitor {
 public:
  using Task = std::function<absl::Status()>;

  explicit BackoffMonitor(BackoffPolicy policy = {});
  ~BackoffMonitor();  // stop()
  // Stops the thread once a retry in progress has returned; pending retries are dropped and
  // later backoff() calls ignored. Called first at shutdown, before the components whose
  // clean-ups it runs are destroyed. Idempotent.
  void stop();
  BackoffMonitor(const BackoffMonitor&) = delete;
  BackoffMonitor& operator=(const BackoffMonitor&) = delete;

  // Schedules `task` for `key` after the current back-off; a key already waiting keeps its
  // back-off and gets the newer task.
  void backoff(const std::string& key, Task task);
  // Drops a pending retry (e.g. the object was removed).
  void cancel(const std::string& key);
  bool pending(const std::string& key) const;
  // How many times `key` has been retried so far (0 when not pending).
  int attempts(const std::string& key) const;

 private:
  struct Entry {
    Task task;
    absl::Time due;
    absl::Duration delay;
    int attempts = 0;
  };
  void run();

  BackoffPolicy policy_;
  mutable absl::Mutex mu_;
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace berth::events
