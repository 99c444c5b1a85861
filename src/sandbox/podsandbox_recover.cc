// podsandbox recovery after a berthd restart: reconnect and subscribe to the shims (they replay
// the exits recorded while berthd was down), watch the pauses that run, end what ran under a
// shim that died.
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/json_text.h"
#include "common/logging.h"
#include "sandbox/podsandbox.h"

namespace berth::sandbox {

absl::Status PodSandboxController::recover() {
  auto log = logging::get("podsandbox");
  for (const auto& r : store_.listSandboxes()) {
    if (r->sandboxer != "podsandbox") continue;
    const std::string id = r->id;
    const std::string& shim_dir = r->shim_dir;
    auto l = liveOrCreate(id);
    auto shim = shim_dir.empty()
                    ? absl::StatusOr<std::unique_ptr<shim::PodShim>>(absl::NotFoundError("no shim"))
                    : options_.shims->connect(shim_dir);
    if (!shim.ok()) {
      // No shim: it died, or berthd died before it was launched. What it ran may still run:
      // it is ended first (processes, runtime state, cgroups). A pod that was ready has then
      // exited with an unknown code.
      if (absl::Status st = takeOver(id, l); !st.ok()) {
        log->error("pod sandbox {}: its shim is gone and ending its processes failed, retrying: {}",
                   id, st.message());
        monitor_.backoff("sandbox/" + id, [this, id, l] { return takeOver(id, l); });
      }
      absl::MutexLock lock(&l->mu);
      l->exited = true;
      l->process_status = shim::ProcessStatus::kDeleted;
      l->exit = {.exit_status = static_cast<uint32_t>(r->exit_code), .exited_at_ns = r->exited_at_ns};
      if (r->state == store::SandboxState::kReady || r->state == store::SandboxState::kCreated) {
        int64_t now = absl::ToUnixNanos(absl::Now());
        l->exit = {.exit_status = 255, .exited_at_ns = now};
        auto st = store_.updateSandbox(id, [&](store::SandboxRecord& rec) {
          rec.state = store::SandboxState::kNotReady;
          rec.exit_code = 255;
          rec.exited_at_ns = now;
          return absl::OkStatus();
        });
        if (!st.ok()) log->error("pod sandbox {}: {}", id, st.status().message());
        log->warn("pod sandbox {}: its shim is gone; reported NOTREADY with an unknown exit", id);
      }
      continue;
    }
    std::shared_ptr<shim::PodShim> client = std::move(*shim);
    {
      absl::MutexLock lock(&l->mu);
      l->shim = client;
    }
    // Also for a stopped pod: its containers may still run. A failure is tried again when a
    // task is watched.
    if (absl::Status st = subscribe(id, client); !st.ok()) log->error("{}", st.message());
    if (r->state == store::SandboxState::kNotReady) {
      // Stopped before the restart. A task whose clean-up had not finished is deleted now
      // (its back-off did not survive the restart).
      auto task = client->state(id);
      {
        absl::MutexLock lock(&l->mu);
        l->exited = true;
        l->exit = {.exit_status = static_cast<uint32_t>(r->exit_code), .exited_at_ns = r->exited_at_ns};
        l->process_status = task.ok() ? task->status : shim::ProcessStatus::kDeleted;
      }
      if (task.ok()) {
        if (absl::Status st = deleteTask(id, l); !st.ok()) {
          monitor_.backoff("sandbox/" + id, [this, id, l] { return deleteTask(id, l); });
        }
      }
      continue;
    }
    // An exit the shim recorded while berthd was down is replayed to the watch.
    auto exits = client->exits();
    bool exited = false;
    if (exits.ok()) {
      for (const auto& e : *exits) {
        if (e.container_id != id) continue;
        log->info("pod sandbox {}: exited with {} while berthd was down", id, e.exit_code);
        exited = true;
      }
    }
    if (exited) {
      if (absl::Status st = watchPause(id, l); !st.ok()) log->error("{}", st.message());
      continue;
    }
    auto state = client->state(id);
    if (state.ok() && (state->status == shim::ProcessStatus::kRunning ||
                       state->status == shim::ProcessStatus::kPaused)) {
      {
        absl::MutexLock lock(&l->mu);
        l->process_status = state->status;
      }
      if (r->state == store::SandboxState::kCreated) {
        // berthd died between starting the pause and recording it: it is ready now.
        auto st = store_.updateSandbox(id, [&](store::SandboxRecord& rec) {
          rec.state = store::SandboxState::kReady;
          rec.pid = state->pid;
          // Made whole when its network is recorded too: only RunPodSandbox's answer was lost
          // (kubelet finds the pod by its labels). Otherwise the pod stays Creating, and the
          // CRI's recovery stops the cut-off RunPodSandbox's pod.
          if (rec.pending == store::Pending::kCreating && store::networkMade(rec))
            rec.pending = store::Pending::kNone;
          return absl::OkStatus();
        });
        if (!st.ok()) log->error("pod sandbox {}: {}", id, st.status().message());
      }
      if (absl::Status st = watchPause(id, l); !st.ok()) log->error("{}", st.message());
      continue;
    }
    // Created but never started, or in a state we cannot use: kubelet will remove it.
    {
      absl::MutexLock lock(&l->mu);
      l->process_status = state.ok() ? state->status : shim::ProcessStatus::kUnknown;
    }
    auto st = store_.updateSandbox(id, [&](store::SandboxRecord& rec) {
      rec.state = store::SandboxState::kUnknown;
      return absl::OkStatus();
    });
    if (!st.ok()) log->error("pod sandbox {}: {}", id, st.status().message());
  }
  return absl::OkStatus();
}

}  // namespace berth::sandbox
