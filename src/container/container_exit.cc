// The container exit path and recovery: the pod's controller reports a running container's
// exit as an event (TaskEvents); it is recorded durably, then the task is deleted and the rootfs
// unmounted; a failed clean-up is retried by the back-off monitor. After a restart running
// containers are watched again; the shim replays the exits it recorded while berthd was down.
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/fs.h"
#include "common/json_text.h"
#include "common/logging.h"
#include "common/status.h"
#include "container/container_manager.h"
#include "container/image_volumes.h"
#include "image/snapshot_mount.h"
#include "sandbox/task_events.h"

namespace berth::container {
namespace {

std::shared_ptr<spdlog::logger> log() { return logging::get("container"); }

}  // namespace

absl::StatusOr<sandbox::Controller*> ContainerManager::controllerOf(const std::string& sandbox_id) {
  BERTH_ASSIGN_OR_RETURN(auto pod, store_.getSandbox(sandbox_id));
  return controllers_.get(pod->sandboxer.empty() ? "podsandbox" : pod->sandboxer);
}

void ContainerManager::watchExit(const std::string& id, const std::string& sandbox_id,
                                 const std::shared_ptr<Live>& l) {
  // No shim to hear it from: what ran is gone (monitorGone said so), how it ended is unknown.
  auto unknown = [this, id, l] { (void)handleExit(id, l, sandbox::unknownExit(id)); };
  sandbox::Controller::ExitHandler exited = [this, id, l](const shim::ExitInfo& e) {
    return handleExit(id, l, e);
  };
  sandbox::Controller::OomHandler oom = [this, id](const shim::ExitInfo& e) {
    return recordOom(id, e);
  };
  auto controller = controllerOf(sandbox_id);
  if (!controller.ok()) {
    log()->warn("container {}: {}; reported exited with an unknown code", id,
                controller.status().message());
    return unknown();
  }
  absl::Status st = (*controller)->watchTask(sandbox_id, id, exited, oom);
  if (st.ok()) return;
  auto gone = monitorGone(sandbox_id);
  if (gone.ok() && *gone) {
    log()->warn("container {}: {}; reported exited with an unknown code", id, st.message());
    return unknown();
  }
  // The shim runs but cannot be heard from now: never report an exit that may not be one.
  log()->error("container {}: cannot watch its exit, retrying: {}", id, st.message());
  monitor_.backoff("watch/" + id, [this, id, sandbox_id, exited, oom]() -> absl::Status {
    BERTH_ASSIGN_OR_RETURN(sandbox::Controller * c, controllerOf(sandbox_id));
    return c->watchTask(sandbox_id, id, exited, oom);
  });
}

absl::Status ContainerManager::recordOom(const std::string& id, const shim::ExitInfo& e) {
  bool changed = false;
  auto updated = store_.updateContainer(id, [&](store::ContainerRecord& r) {
    // As containerd: the reason is OOMKilled from the OOM kill on, also while the container
    // runs, and its exit keeps it. An exited container's exit told it already.
    if (r.state == store::ContainerState::kExited || r.reason == kReasonOomKilled) {
      return absl::OkStatus();
    }
    r.reason = kReasonOomKilled;
    changed = true;
    return absl::OkStatus();
  });
  if (!updated.ok()) {
    if (absl::IsNotFound(updated.status())) return absl::OkStatus();  // removed meanwhile
    return annotate(updated.status(), absl::StrCat("container ", id, ": record its OOM kill"));
  }
  if (changed) {
    log()->warn("container {}: a process of it was OOM-killed at {}", id,
                absl::FormatTime(absl::FromUnixNanos(e.exited_at_ns)));
  }
  return absl::OkStatus();
}

absl::Status ContainerManager::recordExit(const std::string& id, const shim::ExitInfo& e,
                                          const std::string& reason, const std::string& message) {
  return store_
      .updateContainer(id,
                       [&](store::ContainerRecord& r) {
                         if (r.state == store::ContainerState::kExited) {
                           return absl::OkStatus();  // recorded before (e.g. start failure)
                         }
                         r.state = store::ContainerState::kExited;
                         r.exit_code = e.exit_code;
                         r.finished_at_ns = e.exited_at_ns;
                         // An OOM kill recorded while it ran stays the reason.
                         if (!reason.empty() || r.reason != kReasonOomKilled) r.reason = reason;
                         r.message = message;
                         // A start or stop under way ends with the exit.
                         if (r.pending == store::Pending::kStarting ||
                             r.pending == store::Pending::kStopping) {
                           r.pending = store::Pending::kNone;
                         }
                         return absl::OkStatus();
                       })
      .status();
}

absl::Status ContainerManager::handleExit(const std::string& id, const std::shared_ptr<Live>& l,
                                          const shim::ExitInfo& e) {
  {
    absl::MutexLock lock(&l->mu);
    if (l->exited) return absl::OkStatus();  // reported already (e.g. the shim was gone)
  }
  log()->info("container {}: exited with status {}{}", id, e.exit_code, e.oom ? " (OOM-killed)" : "");
  // Empty: an OOMKilled recorded while it ran stays (recordExit).
  std::string reason = e.oom ? kReasonOomKilled : "";
  std::string message;
  if (e.exit_code == kUnknownExitCode && e.pid == 0 && !e.oom) {
    reason = kReasonUnknown;
    message = "the container's monitor is gone; its exit status is unknown";
  }
  absl::Status st = recordExit(id, e, reason, message);
  if (!st.ok() && !absl::IsNotFound(st)) {
    return annotate(st, absl::StrCat("container ", id, ": record its exit"));
  }
  {
    absl::MutexLock lock(&l->mu);
    if (l->exited) return absl::OkStatus();
    l->exited = true;
  }
  if (st.ok()) {
    if (auto rec = store_.getContainer(id); rec.ok()) {
      notify(id, (*rec)->sandbox_id, ContainerEvent::kStopped);
    }
  }
  cleanUpOrRetry(id, l);
  return absl::OkStatus();
}

void ContainerManager::cleanUpOrRetry(const std::string& id, const std::shared_ptr<Live>& l) {
  if (absl::Status st = cleanUp(id, l); !st.ok()) {
    if (closing_) return;  // finished after the restart
    log()->error("container {}: clean-up failed, retrying with back-off: {}", id, st.message());
    monitor_.backoff("container/" + id, [this, id, l] { return cleanUp(id, l); });
  }
}

absl::Status ContainerManager::cleanUp(const std::string& id, const std::shared_ptr<Live>& l) {
  // The exit path, its back-off retry and remove may clean up at once: they join.
  return flights_.run("cleanup/" + id, [&] { return cleanUpOnce(id, l); });
}

absl::Status ContainerManager::cleanUpOnce(const std::string& id, const std::shared_ptr<Live>& l) {
  {
    absl::MutexLock lock(&l->mu);
    if (l->task_deleted) return absl::OkStatus();
  }
  BERTH_ASSIGN_OR_RETURN(auto rec, store_.getContainer(id));
  if (!rec->task_deleted) {
    auto task = taskContext(rec->sandbox_id);
    if (task.ok()) {
      BERTH_RETURN_IF_ERROR(task->shim->remove(id, /*force=*/true));
      (void)task->shim->ackExit(id);  // the exit is in the store now
    } else if (!absl::IsUnavailable(task.status()) && !absl::IsNotFound(task.status())) {
      return task.status();
    }
    // With no shim there is no task left to delete.
    if (!rec->rootfs.empty()) {
      absl::Status st = image::unmountAll(rec->rootfs, rec->rootfs_mounts);
      // EINVAL: not mounted (any more): an earlier attempt got that far.
      if (!st.ok() && !absl::IsInvalidArgument(st)) return st;
    }
    BERTH_RETURN_IF_ERROR(unmountImageVolumes(options_.containers_dir + "/" + id));
    BERTH_RETURN_IF_ERROR(store_
                              .updateContainer(id,
                                               [](store::ContainerRecord& r) {
                                                 r.task_deleted = true;
                                                 return absl::OkStatus();
                                               })
                              .status());
  }
  absl::MutexLock lock(&l->mu);
  l->task_deleted = true;
  return absl::OkStatus();
}

void ContainerManager::removeOrphans() {
  // A crash during CreateContainer, between reserving the name and writing the record, leaves
  // a name with no owner (kubelet's retry would be refused forever), and maybe a rootfs.
  for (const auto& [name, owner] : store_.listNames()) {
    if (store_.getContainer(owner).ok() || store_.getSandbox(owner).ok()) continue;
    log()->warn("releasing name \"{}\" of {}, which was never created", name, owner);
    if (absl::Status st = store_.releaseName(name); !st.ok()) log()->error("{}", st.message());
  }
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(options_.containers_dir, ec)) {
    const std::string id = entry.path().filename().string();
    if (store_.getContainer(id).ok()) continue;
    log()->warn("removing the leftovers of container {}, which was never created", id);
    if (absl::Status iv = removeImageVolumes(snapshots_, id, entry.path().string()); !iv.ok()) {
      log()->error("{}", iv.message());
      continue;  // never delete below a mount
    }
    absl::Status st = image::unmountAll(entry.path().string() + "/rootfs", 1);
    if (!st.ok() && !absl::IsInvalidArgument(st) && !absl::IsNotFound(st)) {
      log()->error("{}", st.message());
      continue;  // never delete below a mount
    }
    if (absl::Status s2 = snapshots_.remove(id); !s2.ok()) log()->error("{}", s2.message());
    if (absl::Status s2 = removeAll(entry.path().string()); !s2.ok()) log()->error("{}", s2.message());
  }
}

void ContainerManager::adoptStarted(const store::ContainerRecord& rec,
                                    const std::shared_ptr<Live>& l) {
  // berthd died between the runtime's start and recording it: the shim knows better. A
  // container whose process runs (or ran) is RUNNING, its exit watched; never CREATED, which
  // would make kubelet start it again. One that never started stays CREATED.
  auto task = taskContext(rec.sandbox_id);
  auto state = task.ok() ? task->shim->state(rec.id) : task.status();
  if (!state.ok() || state->status == shim::ProcessStatus::kCreated) {
    if (rec.pending == store::Pending::kStarting) endOp(rec.id, l, store::Pending::kStarting);
    return;
  }
  log()->warn("container {}: started before berthd went down ({}); recorded running", rec.id,
              shim::toString(state->status));
  auto updated = store_.updateContainer(rec.id, [&](store::ContainerRecord& r) {
    r.state = store::ContainerState::kRunning;
    r.started_at_ns = absl::ToUnixNanos(absl::Now());
    if (r.pending == store::Pending::kStarting) r.pending = store::Pending::kNone;
    return absl::OkStatus();
  });
  if (!updated.ok()) {
    log()->error("container {}: {}", rec.id, updated.status().message());
    return;
  }
  notify(rec.id, rec.sandbox_id, ContainerEvent::kStarted);
  watchExit(rec.id, rec.sandbox_id, l);
}

void ContainerManager::finishStop(const std::string& id, const std::shared_ptr<Live>& l) {
  log()->warn("container {}: a stop was cut off by a crash; finishing it", id);
  monitor_.soon("stop/" + id, [this, id, l]() -> absl::Status {
    auto rec = store_.getContainer(id);
    if (absl::IsNotFound(rec.status())) return absl::OkStatus();
    BERTH_RETURN_IF_ERROR(rec.status());
    if ((*rec)->pending != store::Pending::kStopping) return absl::OkStatus();  // done since
    // The grace period began before the crash: what is left of it is unknown, so it ends now.
    BERTH_RETURN_IF_ERROR(stopNow(id, l, absl::ZeroDuration()));
    endOp(id, l, store::Pending::kStopping);
    return absl::OkStatus();
  });
}

void ContainerManager::finishRemoval(const std::string& id) {
  log()->warn(
      "container {}: a removal (or a creation never acknowledged) was cut off by a "
      "crash; removing it",
      id);
  monitor_.soon("remove/" + id, [this, id] { return remove(id); });
}

absl::Status ContainerManager::recover() {
  removeOrphans();
  for (const auto& rec : store_.listContainers()) {
    const std::string id = rec->id;
    auto l = live(id);
    finishCutOffCheckpoints(*rec);
    if (rec->pending == store::Pending::kCreating) {
      // CreateContainer never answered: nobody knows this container; it is undone.
      auto st = store_.updateContainer(id, [](store::ContainerRecord& r) {
        r.pending = store::Pending::kRemoving;
        return absl::OkStatus();
      });
      if (!st.ok()) log()->error("container {}: {}", id, st.status().message());
    }
    if (rec->pending == store::Pending::kUpdating) {
      log()->warn(
          "container {}: an update of its resources was cut off by a crash; the runtime "
          "may hold the new limits, the record keeps the old ones",
          id);
      endOp(id, l, store::Pending::kUpdating);
    }
    switch (rec->state) {
      case store::ContainerState::kRunning:
      case store::ContainerState::kUnknown:
        // The shim replays an exit it recorded while berthd was down.
        watchExit(id, rec->sandbox_id, l);
        break;
      case store::ContainerState::kCreated:
        if (rec->pending == store::Pending::kNone || rec->pending == store::Pending::kStarting) {
          adoptStarted(*rec, l);
        }
        break;
      case store::ContainerState::kExited: {
        absl::MutexLock lock(&l->mu);
        l->exited = true;
      }
        if (!rec->task_deleted) cleanUpOrRetry(id, l);
        break;
    }
    switch (rec->pending) {
      case store::Pending::kCreating:
      case store::Pending::kRemoving:
        finishRemoval(id);
        break;
      case store::Pending::kStopping:
        finishStop(id, l);
        break;
      default:
        break;
    }
  }
  return absl::OkStatus();
}

}  // namespace berth::container
