// The body of an exit waiter, shared by the pause's and the containers' waiters: wait in the
// shim for a task's exit and report it once. A failed wait is not an exit: when the shim is
// gone its processes may run on, so the pod's controller ends them first (monitorGone) and only
// then is an exit with an unknown code reported; a shim that still answers and still runs the
// task is waited on again.
#pragma once

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "events/backoff_monitor.h"
#include "shim/shim_client.h"

namespace berth::sandbox {

// The exit code reported when it cannot be read (as containerd).
inline constexpr int kUnknownExitCode = 255;

struct ExitWait {
  std::string what;       // "pod sandbox <id>" / "container <id>", for logs
  std::string task_id;    // the task in the shim
  std::string retry_key;  // the back-off key for ending the processes of a dead shim
  // True when a failed wait is not to be reported (berthd or the pod is closing, or the exit
  // was handled already).
  std::function<bool()> stop_on_failure;
  std::function<absl::StatusOr<bool>()> monitor_gone;  // Controller::monitorGone of the pod
  std::function<void(const shim::ExitInfo&)> exited;   // records the exit; called at most once
};

// Runs on the waiter's thread until the exit is reported (or handed to `monitor`) or
// stop_on_failure() says to return.
void waitForExit(shim::ShimClient& shim, events::BackoffMonitor& monitor, const ExitWait& w);

}  // namespace berth::sandbox
