// berthd's event loop: one thread waits (epoll) on descriptors and timers; the work they start
// runs on a pool of workers that grows with load up to a bound and shrinks when idle. The
// subscriptions to the shims' exit events and the back-off retries of failed clean-ups run on
// it, so berthd's thread count does not grow with pods or containers.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/unique_fd.h"

namespace berth::events {

struct EventLoopOptions {
  int max_workers = 32;                    // work beyond this waits in the queue
  absl::Duration idle = absl::Seconds(5);  // a worker idle this long ends
};

// Thread-safe.
class EventLoop {
 public:
  using Fn = std::function<void()>;
  using TimerId = uint64_t;

  explicit EventLoop(EventLoopOptions options = {});
  ~EventLoop();  // stop()
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Ends the loop: descriptors are no longer watched, timers and queued work are dropped,
  // work in progress finishes (this waits for it), and later calls are ignored. Idempotent.
  void stop();

  // Calls `on_ready` on the loop thread each time `fd` is readable or hung up (level
  // triggered). It must not block: it reads what is there and posts slow work. The caller
  // keeps `fd` open until unwatch().
  [[nodiscard]] absl::Status watch(int fd, Fn on_ready);
  // After it returns, `fd`'s callback is neither running (unless this is called from it) nor
  // called again.
  void unwatch(int fd);

  // Runs `fn` on a worker.
  void post(Fn fn);
  // Runs `fn` on a worker once `delay` has passed, unless cancelled first.
  TimerId after(absl::Duration delay, Fn fn);
  void cancel(TimerId id);

  // Threads of the loop now: the loop's own and the workers.
  int threads() const;

 private:
  struct Watch {
    Fn on_ready;
  };
  void run();
  void work(uint64_t worker_id);
  // Starts workers while queued work outnumbers idle workers, up to the bound.
  void growLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void wake();
  // Joins workers that ended (idle); called with mu_ not held.
  void joinFinished();

  const EventLoopOptions options_;
  UniqueFd epoll_;
  UniqueFd wake_fd_;  // eventfd: timers, stop
  std::thread loop_thread_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::map<int, std::shared_ptr<Watch>> watches_ ABSL_GUARDED_BY(mu_);
  int dispatching_fd_ ABSL_GUARDED_BY(mu_) = -1;  // whose callback the loop thread runs now
  std::map<TimerId, std::pair<absl::Time, Fn>> timers_ ABSL_GUARDED_BY(mu_);
  TimerId next_timer_ ABSL_GUARDED_BY(mu_) = 1;
  std::deque<Fn> queue_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, std::thread> workers_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> finished_ ABSL_GUARDED_BY(mu_);  // ended, not yet joined
  uint64_t next_worker_ ABSL_GUARDED_BY(mu_) = 1;
  int idle_workers_ ABSL_GUARDED_BY(mu_) = 0;  // started and not running work
};

}  // namespace berth::events
