// waitForExit: the shared waiter loop.
#include "sandbox/exit_wait.h"

#include "absl/time/clock.h"
#include "common/logging.h"
#include "common/status.h"

namespace berth::sandbox {
namespace {

shim::ExitInfo unknownExit(const std::string& task_id) {
  return {.container_id = task_id,
          .exit_code = kUnknownExitCode,
          .exited_at_ns = absl::ToUnixNanos(absl::Now())};
}

}  // namespace

void waitForExit(shim::ShimClient& shim, events::BackoffMonitor& monitor, const ExitWait& w) {
  auto log = logging::get("exit");
  for (;;) {
    auto exit = shim.wait(w.task_id);
    if (exit.ok()) {
      w.exited(*exit);
      return;
    }
    if (w.stop_on_failure()) return;
    auto gone = w.monitor_gone();
    if (!gone.ok()) {
      log->error("{}: its shim is gone and ending the pod's processes failed, retrying: {}", w.what,
                 gone.status().message());
      monitor.backoff(w.retry_key, [w]() -> absl::Status {
        BERTH_ASSIGN_OR_RETURN(bool ended, w.monitor_gone());
        if (!ended) return absl::UnavailableError("the shim answers again");
        w.exited(unknownExit(w.task_id));
        return absl::OkStatus();
      });
      return;
    }
    if (!*gone) {
      // The shim answers: a broken connection, unless the task is no longer running in it.
      auto state = shim.state(w.task_id);
      if (state.ok() && (state->status == "running" || state->status == "paused")) {
        absl::SleepFor(absl::Milliseconds(100));
        continue;
      }
      log->error("{}: cannot read the exit status: {}", w.what, exit.status().message());
    }
    w.exited(unknownExit(w.task_id));
    return;
  }
}

}  // namespace berth::sandbox
