// Exits and OOM kills of a pod's tasks (its pause and its containers) as events: one
// subscription per shim, read on berthd's event loop, instead of a waiter thread per task. The
// shim pushes each exit and each OOM kill with a sequence number; the handler persists it, and
// only then is it acknowledged, so an event pushed while berthd dies is replayed on the next
// subscription. When a subscription ends
// because the shim died, what ran under it is ended first (ShimLink::gone) and only then are
// the exits of the tasks still watched reported, with an unknown code.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/unique_fd.h"
#include "events/backoff_monitor.h"
#include "events/event_loop.h"
#include "shim/protocol.h"
#include "shim/shim_client.h"

namespace berth::sandbox {

// The exit code reported when it cannot be read (as containerd).
inline constexpr int kUnknownExitCode = 255;
// The exit of `task` reported when nothing of it runs any more but how it ended is unknown (its
// monitor died, or never ran it): kUnknownExitCode, now, no pid.
shim::ExitInfo unknownExit(const std::string& task);

// What TaskEvents needs of a pod's shim; a narrow seam, so tests can drive it with fakes.
struct ShimLink {
  // A connection on which the shim pushes exit events (ShimClient::subscribe).
  std::function<absl::StatusOr<UniqueFd>()> subscribe;
  // The exit `seq` of `task` is persisted: the shim may forget it.
  std::function<absl::Status(const std::string& task, uint64_t seq)> ack;
  // The same for the OOM kill `seq` of `task`.
  std::function<absl::Status(const std::string& task, uint64_t seq)> ack_oom;
  // The subscription ended. False when the shim still answers (it is subscribed again); true
  // once it is gone and nothing that ran under it runs any more (Controller::monitorGone).
  std::function<absl::StatusOr<bool>()> gone;
};

// Thread-safe.
class TaskEvents {
 public:
  // Persists an exit. OK: the exit is acknowledged to the shim. An error: retried with
  // back-off, unacknowledged meanwhile.
  using ExitHandler = std::function<absl::Status(const shim::ExitInfo&)>;
  // Persists that a process of the task was OOM-killed (the event's exited_at_ns is when).
  // Idempotent: what it records is that the task was OOM-killed, so once one OOM kill of a
  // task is persisted, later ones are acknowledged without calling it again.
  using OomHandler = std::function<absl::Status(const shim::ExitInfo&)>;

  TaskEvents(events::EventLoop& loop, events::BackoffMonitor& monitor);
  ~TaskEvents();
  TaskEvents(const TaskEvents&) = delete;
  TaskEvents& operator=(const TaskEvents&) = delete;

  // Subscribes to the pod's shim (again, replacing an earlier subscription). Exits pushed for
  // tasks nobody watches yet are kept until they are watched.
  [[nodiscard]] absl::Status open(const std::string& pod, ShimLink link);
  // The pod's shim is being shut down: the end of its subscription is not a dead shim. Exits
  // pushed before that end are still handled.
  void ending(const std::string& pod);
  // Drops the pod's subscription and what it knows of the pod's tasks. After ending(), first
  // waits (at most 1 s) until the end of the subscription was read. Handlers in progress
  // finish.
  void close(const std::string& pod);

  // Calls `exited` once, on a worker of the loop, with the task's exit: as the shim reports it
  // (also replayed after a restart), or with kUnknownExitCode once the shim is found gone and
  // what it ran has been ended. Watching a watched task changes nothing. FailedPrecondition
  // when the pod has no subscription. With `oom`, calls it on a worker for the task's OOM
  // kills while it runs (without, they are acknowledged and dropped).
  [[nodiscard]] absl::Status watch(const std::string& pod, const std::string& task,
                                   ExitHandler exited, OomHandler oom = nullptr);
  bool watching(const std::string& pod, const std::string& task) const;
  void unwatch(const std::string& pod, const std::string& task);

 private:
  struct Task {
    ExitHandler handler;
    bool delivering = false;  // the handler runs, or is queued or retried
    bool delivered = false;
    OomHandler oom;
    bool oom_delivering = false;  // the OOM handler runs, or is queued or retried
    bool oom_recorded = false;    // an OOM kill is persisted: later ones are acknowledged
    uint64_t oom_ack_after = 0;   // an OOM kill that came in while delivering: ack it after
  };
  struct Pod {
    std::string id;
    ShimLink link;
    UniqueFd fd;  // the subscription; invalid while the shim is checked or once it is gone
    shim::FrameReader reader;
    bool ending = false;  // shut down on purpose
    bool closed = false;  // close() was called: in-flight work stops here
    bool gone = false;    // the shim is gone and what it ran was ended
    std::map<std::string, Task> tasks;
    std::map<std::string, shim::ExitInfo> unclaimed;  // exits of tasks not watched (yet)
    std::map<std::string, shim::ExitInfo> unclaimed_oom;  // their OOM kills, the newest
  };

  [[nodiscard]] absl::Status subscribe(const std::shared_ptr<Pod>& p);
  void onReadable(const std::shared_ptr<Pod>& p);
  void dispatch(const std::shared_ptr<Pod>& p, const shim::ExitInfo& e)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Queues the handler of `task` for `e`; the task must be watched and not delivering.
  void deliver(const std::shared_ptr<Pod>& p, const std::string& task, const shim::ExitInfo& e)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  [[nodiscard]] absl::Status runHandler(const std::shared_ptr<Pod>& p, const std::string& task,
                                        const shim::ExitInfo& e);
  void dispatchOom(const std::shared_ptr<Pod>& p, const shim::ExitInfo& e)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void deliverOom(const std::shared_ptr<Pod>& p, const std::string& task, const shim::ExitInfo& e)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  [[nodiscard]] absl::Status runOomHandler(const std::shared_ptr<Pod>& p, const std::string& task,
                                           const shim::ExitInfo& e);
  // Acknowledges OOM kill `seq` of `task` on a worker.
  void ackOomLater(const std::shared_ptr<Pod>& p, const std::string& task, uint64_t seq);
  // After the subscription ended: gone → report the rest; alive → subscribe again.
  [[nodiscard]] absl::Status checkShim(const std::shared_ptr<Pod>& p);

  events::EventLoop& loop_;
  events::BackoffMonitor& monitor_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<Pod>> pods_ ABSL_GUARDED_BY(mu_);
};

}  // namespace berth::sandbox
