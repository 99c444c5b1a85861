// Container create / start / stop / remove.
#include "container/container_manager.h"

#include <signal.h>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/crash_point.h"
#include "common/fs.h"
#include "common/json_text.h"
#include "common/logging.h"
#include "common/random_id.h"
#include "common/status.h"
#include "common/undo.h"
#include "container/image_volumes.h"
#include "image/snapshot_mount.h"
#include "oci/cdi.h"
#include "oci/container_spec.h"
#include "oci/spec.h"

namespace berth::container {
namespace {

std::shared_ptr<spdlog::logger> log() { return logging::get("container"); }

int64_t nowNs() { return absl::ToUnixNanos(absl::Now()); }

}  // namespace

ContainerManager::ContainerManager(store::Store& store, image::ImageManager& images,
                                   image::OverlaySnapshotter& snapshots,
                                   sandbox::ControllerRegistry& controllers,
                                   events::BackoffMonitor& monitor, ContainerOptions options)
    : store_(store),
      images_(images),
      snapshots_(snapshots),
      controllers_(controllers),
      monitor_(monitor),
      options_(std::move(options)) {}

ContainerManager::~ContainerManager() = default;

void ContainerManager::beginShutdown() { closing_ = true; }

std::shared_ptr<ContainerManager::Live> ContainerManager::live(const std::string& id) {
  absl::MutexLock lock(&mu_);
  auto& l = live_[id];
  if (!l) l = std::make_shared<Live>();
  return l;
}

void ContainerManager::dropLive(const std::string& id) {
  absl::MutexLock lock(&mu_);
  live_.erase(id);
}

absl::StatusOr<sandbox::TaskContext> ContainerManager::taskContext(const std::string& sandbox_id) {
  BERTH_ASSIGN_OR_RETURN(sandbox::Controller * controller, controllerOf(sandbox_id));
  return controller->taskContext(sandbox_id);
}

absl::StatusOr<bool> ContainerManager::monitorGone(const std::string& sandbox_id) {
  auto controller = controllerOf(sandbox_id);
  if (absl::IsNotFound(controller.status())) return true;
  BERTH_RETURN_IF_ERROR(controller.status());
  return (*controller)->monitorGone(sandbox_id);
}

absl::StatusOr<std::string> ContainerManager::create(const CreateRequest& req) {
  const oci::ContainerConfig& c = req.config;
  BERTH_ASSIGN_OR_RETURN(auto pod, store_.getSandbox(req.sandbox_id));
  if (pod->state != store::SandboxState::kReady) {
    return absl::FailedPreconditionError(
        absl::StrCat("pod sandbox ", req.sandbox_id, " is not ready"));
  }
  BERTH_RETURN_IF_ERROR(annotate(oci::checkUserNamespace(c, req.sandbox_config),
                                 absl::StrCat("container \"", c.name, "\"")));
  auto image = images_.resolve(c.image);
  if (absl::IsNotFound(image.status())) {
    return absl::NotFoundError(absl::StrCat("image \"", c.image, "\" not found: pull it first"));
  }
  if (!image.ok()) return image.status();

  const std::string id = newObjectId();

  if (absl::Status st = store_.reserveName(req.name, id); !st.ok()) {
    if (absl::IsAlreadyExists(st)) {
      return absl::AlreadyExistsError(
          absl::StrCat("container name \"", req.name, "\" is already in use: ", st.message()));
    }
    return st;
  }
  Undo undo;
  undo.arm("name reservation", [&] { return store_.releaseName(req.name); });
  crashPoint("container.create.after_name");

  BERTH_ASSIGN_OR_RETURN(sandbox::TaskContext task, taskContext(req.sandbox_id));
  // A pod's own user namespace: its root reaches the rootfs, and every file system the
  // container sees is idmapped through it.
  const auto& userns = req.sandbox_config.userns;
  std::optional<image::Idmap> idmap;
  if (userns.has_value()) {
    BERTH_ASSIGN_OR_RETURN(idmap, image::Idmap::open(task.userns_path, userns->uids, userns->gids));
  }

  const std::string dir = options_.containers_dir + "/" + id;
  const std::string rootfs = dir + "/rootfs";
  BERTH_RETURN_IF_ERROR(makeDirs(rootfs, 0700));
  undo.arm("container dir", [dir] { return removeAll(dir); });
  if (userns.has_value()) BERTH_RETURN_IF_ERROR(letMappedRootThrough(dir, userns->gids));
  // The image's layers stay until the rootfs snapshot sits on them.
  auto in_use = images_.useImage(**image);
  if (!in_use.ok()) return annotate(in_use.status(), absl::StrCat("container ", id, ": rootfs"));
  auto mounts = snapshots_.prepare(id, (*image)->chain_id);
  if (!mounts.ok()) return annotate(mounts.status(), absl::StrCat("container ", id, ": prepare rootfs"));
  undo.arm("snapshot", [this, id] { return snapshots_.remove(id); });
  BERTH_RETURN_IF_ERROR(idmap ? image::mountAllIdmapped(*mounts, rootfs, *idmap)
                              : image::mountAll(*mounts, rootfs));
  undo.arm("rootfs mount", [rootfs, n = mounts->size()] { return image::unmountAll(rootfs, n); });
  crashPoint("container.create.after_rootfs");

  // Image volumes: mounted under the container's folder, then bound like any volume.
  oci::ContainerConfig config = c;
  size_t volumes = 0;
  for (oci::ContainerMount& m : config.mounts) {
    if (m.image.empty()) continue;
    BERTH_ASSIGN_OR_RETURN(m.host_path, mountImageVolume(images_, snapshots_, id, dir, volumes++,
                                                         {.container_path = m.container_path,
                                                          .image = m.image,
                                                          .sub_path = m.image_sub_path},
                                                         undo, idmap ? &*idmap : nullptr));
  }
  if (volumes > 0) crashPoint("container.create.after_image_volumes");
  // Volumes with id mappings (checkUserNamespace: the pod's): idmapped copies, bound instead.
  size_t idmapped = 0;
  for (oci::ContainerMount& m : config.mounts) {
    if (m.uid_mappings.empty() || !idmap) continue;
    BERTH_ASSIGN_OR_RETURN(
        m.host_path,
        mountIdmappedVolume(dir, idmapped++, m.host_path, *idmap,
                            m.propagation == oci::MountPropagation::kHostToContainer, undo));
  }
  // And the pod's files berth makes (root-owned), so that they show as root's inside too.
  if (idmap) {
    for (std::string* file : {&task.hosts_path, &task.resolv_conf_path, &task.hostname_path}) {
      if (file->empty()) continue;
      BERTH_ASSIGN_OR_RETURN(*file,
                             mountIdmappedVolume(dir, idmapped++, *file, *idmap, false, undo));
    }
  }
  if (idmapped > 0) crashPoint("container.create.after_idmapped_volumes");

  nlohmann::json image_config = parseJsonObject((*image)->config_json);

  oci::ContainerSpecInput in;
  in.id = id;
  in.sandbox_id = req.sandbox_id;
  in.config = &config;
  in.sandbox = &req.sandbox_config;
  in.image_config = &image_config;
  in.rootfs = rootfs;
  in.sandbox_pid = static_cast<uint32_t>(task.pid);
  in.netns_path = task.netns_path;
  in.userns_path = task.userns_path;
  if (c.security.pid == sandbox::NamespaceMode::kTarget) {
    auto target = store_.resolveContainerId(c.security.target_id);
    if (!target.ok()) {
      return annotate(target.status(), absl::StrCat("target container \"", c.security.target_id, "\""));
    }
    BERTH_ASSIGN_OR_RETURN(auto t, store_.getContainer(*target));
    if (t->state != store::ContainerState::kRunning || t->sandbox_id != req.sandbox_id) {
      return absl::FailedPreconditionError(absl::StrCat(
          "target container ", *target, " is not a running container of pod ", req.sandbox_id));
    }
    in.target_pid = static_cast<uint32_t>(t->pid);
  }
  in.hosts_path = task.hosts_path;
  in.resolv_conf_path = task.resolv_conf_path;
  in.hostname_path = task.hostname_path;
  in.shm_path = task.shm_path;
  in.cgroup_parent_default = options_.cgroup_parent;
  in.default_pids_limit = options_.pids_limit;
  in.rlimits = task.rlimits;
  in.runtime_handler = task.runtime_handler;
  in.recursive_read_only_supported = task.recursive_read_only;
  in.host = options_.host;
  BERTH_ASSIGN_OR_RETURN(nlohmann::json spec, oci::buildContainerSpec(in));
  BERTH_RETURN_IF_ERROR(annotate(oci::injectCdiDevices(options_.cdi_spec_dirs, c.cdi_devices, spec),
                                 absl::StrCat("container \"", c.name, "\"")));
  BERTH_RETURN_IF_ERROR(oci::writeBundle(dir, spec));

  std::string stop_signal = req.stop_signal.empty() ? oci::imageStopSignal(&image_config)
                                                    : req.stop_signal;
  BERTH_RETURN_IF_ERROR(parseSignal(stop_signal).status());
  if (!req.log_path.empty()) {
    std::string parent = req.log_path.substr(0, req.log_path.rfind('/'));
    if (!parent.empty()) BERTH_RETURN_IF_ERROR(makeDirs(parent, 0755));
  }

  // The record exists before the task so that a crash in between leaves something to find
  // and remove. It is CREATED and pending Creating until the runtime has made the task: the
  // CRI neither lists it nor gives it a status before that, and recovery undoes it.
  store::ContainerRecord rec;
  rec.id = id;
  rec.sandbox_id = req.sandbox_id;
  rec.name = req.name;
  rec.metadata = {.name = c.name, .attempt = c.attempt};
  rec.image_ref = c.image;
  rec.image_id = (*image)->id;
  rec.state = store::ContainerState::kCreated;
  rec.created_at_ns = nowNs();
  rec.log_path = req.log_path;
  rec.snapshot_key = id;
  rec.labels = c.labels;
  rec.annotations = c.annotations;
  rec.config_bytes = req.config_bytes;
  rec.spec_json = spec.dump();
  rec.rootfs = rootfs;
  rec.rootfs_mounts = static_cast<uint32_t>(mounts->size());
  rec.bundle_dir = dir;
  rec.stop_signal = stop_signal;
  rec.runtime_type = task.runtime_type;
  rec.snapshotter = "overlayfs";
  rec.pending = store::Pending::kCreating;
  BERTH_RETURN_IF_ERROR(store_.createContainer(rec));
  undo.arm("container record", [this, id] { return store_.deleteContainer(id); });
  crashPoint("container.create.after_record");

  auto pid = task.shim->create({.container_id = id,
                                .bundle = dir,
                                .terminal = c.tty,
                                .log_path = req.log_path,
                                .max_log_line = options_.max_log_line,
                                .stdin = c.stdin,
                                .stdin_once = c.stdin_once});
  if (!pid.ok()) {
    (void)task.shim->remove(id, /*force=*/true);
    if (absl::Status u = undo.run(); !u.ok()) log()->error("container {}: undo: {}", id, u.message());
    return annotate(pid.status(), absl::StrCat("create container ", id));
  }
  crashPoint("container.create.after_task");
  auto updated = store_.updateContainer(id, [&](store::ContainerRecord& r) {
    r.pid = *pid;
    r.pending = store::Pending::kNone;
    return absl::OkStatus();
  });
  if (!updated.ok()) {
    (void)task.shim->remove(id, /*force=*/true);
    if (absl::Status u = undo.run(); !u.ok()) log()->error("container {}: undo: {}", id, u.message());
    return updated.status();
  }
  undo.disarm();
  settled(live(id));
  notify(id, req.sandbox_id, ContainerEvent::kCreated);
  return id;
}

namespace {

// How long an operation waits for another one to end (remove for a start, stop for an update).
constexpr absl::Duration kOpWait = absl::Minutes(2);

}  // namespace

absl::Status ContainerManager::idle(const store::ContainerRecord& r, absl::string_view what) {
  if (r.pending == store::Pending::kNone) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "container ", r.id, " is ", store::toString(r.pending), ": cannot be ", what, " now"));
}

absl::StatusOr<bool> ContainerManager::beginOp(const std::string& id,
                                               const std::shared_ptr<Live>& l, store::Pending op,
                                               const ClaimFn& decide) {
  const absl::Time deadline = absl::Now() + kOpWait;
  for (;;) {
    uint64_t seen = 0;
    {
      absl::MutexLock lock(&l->mu);
      seen = l->settled;
    }
    Claim claim = Claim::kShare;
    store::Pending busy = store::Pending::kNone;
    auto updated = store_.updateContainer(id, [&](store::ContainerRecord& r) -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(claim, decide(r));
      busy = r.pending;
      if (claim == Claim::kTake) r.pending = op;
      return absl::OkStatus();
    });
    if (!updated.ok()) return updated.status();
    if (claim != Claim::kWait) return claim == Claim::kTake;
    absl::MutexLock lock(&l->mu);
    auto changed = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(l->mu) { return l->settled != seen; };
    if (!l->mu.AwaitWithDeadline(absl::Condition(&changed), deadline)) {
      return absl::DeadlineExceededError(
          absl::StrCat("container ", id, " is still ", store::toString(busy)));
    }
  }
}

void ContainerManager::endOp(const std::string& id, const std::shared_ptr<Live>& l,
                             store::Pending op) {
  auto st = store_.updateContainer(id, [op](store::ContainerRecord& r) {
    if (r.pending == op) r.pending = store::Pending::kNone;
    return absl::OkStatus();
  });
  if (!st.ok() && !absl::IsNotFound(st.status())) {
    // Left for recovery, which finishes or clears it after a restart.
    log()->error("container {}: end {}: {}", id, store::toString(op), st.status().message());
  }
  settled(l);
}

void ContainerManager::settled(const std::shared_ptr<Live>& l) {
  absl::MutexLock lock(&l->mu);
  ++l->settled;
}

absl::Status ContainerManager::start(const std::string& id) {
  auto l = live(id);
  BERTH_ASSIGN_OR_RETURN(bool took,
                         beginOp(id, l, store::Pending::kStarting,
                                 [](const store::ContainerRecord& r) -> absl::StatusOr<Claim> {
                                   BERTH_RETURN_IF_ERROR(idle(r, "started"));
                                   if (r.state != store::ContainerState::kCreated) {
                                     return absl::FailedPreconditionError(
                                         absl::StrCat("container ", r.id, " is in state ",
                                                      store::toString(r.state), ", not created"));
                                   }
                                   return Claim::kTake;
                                 }));
  (void)took;  // always taken
  absl::Cleanup end = [this, &id, &l] { endOp(id, l, store::Pending::kStarting); };
  BERTH_ASSIGN_OR_RETURN(auto rec, store_.getContainer(id));
  BERTH_ASSIGN_OR_RETURN(auto pod, store_.getSandbox(rec->sandbox_id));
  if (pod->state != store::SandboxState::kReady) {
    return absl::FailedPreconditionError(
        absl::StrCat("container ", id, ": pod sandbox ", rec->sandbox_id, " is not ready"));
  }
  BERTH_ASSIGN_OR_RETURN(sandbox::TaskContext task, taskContext(rec->sandbox_id));
  crashPoint("container.start.before_start");
  if (absl::Status st = task.shim->start(id); !st.ok()) {
    // As containerd: the container is exited with a start error, kubelet sees why.
    shim::ExitInfo e{.container_id = id, .exit_code = 128, .exited_at_ns = nowNs()};
    if (absl::Status r = recordExit(id, e, kReasonStartError, std::string(st.message())); !r.ok()) {
      log()->error("container {}: record start failure: {}", id, r.message());
    }
    {
      absl::MutexLock lock(&l->mu);
      l->exited = true;
    }
    notify(id, rec->sandbox_id, ContainerEvent::kStopped);
    cleanUpOrRetry(id, l);
    return annotate(st, absl::StrCat("start container ", id));
  }
  crashPoint("container.start.after_start");
  BERTH_RETURN_IF_ERROR(store_
                            .updateContainer(id,
                                             [](store::ContainerRecord& r) {
                                               r.state = store::ContainerState::kRunning;
                                               r.started_at_ns = nowNs();
                                               r.pending = store::Pending::kNone;
                                               return absl::OkStatus();
                                             })
                            .status());
  notify(id, rec->sandbox_id, ContainerEvent::kStarted);
  watchExit(id, rec->sandbox_id, l);
  return absl::OkStatus();
}

absl::Status ContainerManager::stop(const std::string& id, absl::Duration timeout) {
  auto l = live(id);
  const bool graceful = timeout > absl::ZeroDuration();
  // A create, start or update in progress ends first, so that the stop finds what it made. A
  // graceful stop is recorded (recovery finishes it); a kill, or a stop beside a removal or
  // another stop, goes ahead beside it. (Graceful stops of one container also join below.)
  auto claim = beginOp(id, l, store::Pending::kStopping,
                       [graceful](const store::ContainerRecord& r) -> absl::StatusOr<Claim> {
                         switch (r.pending) {
                           case store::Pending::kNone:
                             if (r.state != store::ContainerState::kRunning &&
                                 r.state != store::ContainerState::kUnknown) {
                               return Claim::kShare;  // nothing to stop
                             }
                             return graceful ? Claim::kTake : Claim::kShare;
                           case store::Pending::kStopping:
                           case store::Pending::kRemoving:
                             return Claim::kShare;
                           default:
                             return Claim::kWait;
                         }
                       });
  BERTH_RETURN_IF_ERROR(claim.status());
  if (!*claim) {
    if (!graceful) return stopNow(id, l, timeout);
    return flights_.run("stop/" + id, [&] { return stopNow(id, l, timeout); });
  }
  absl::Cleanup end = [this, &id, &l] { endOp(id, l, store::Pending::kStopping); };
  crashPoint("container.stop.after_intent");
  return flights_.run("stop/" + id, [&] { return stopNow(id, l, timeout); });
}

absl::Status ContainerManager::stopNow(const std::string& id, const std::shared_ptr<Live>& l,
                                       absl::Duration timeout) {
  BERTH_ASSIGN_OR_RETURN(auto rec, store_.getContainer(id));
  if (rec->state != store::ContainerState::kRunning &&
      rec->state != store::ContainerState::kUnknown) {
    return absl::OkStatus();
  }
  {
    absl::MutexLock lock(&l->mu);
    if (l->exited) return absl::OkStatus();
  }
  auto exited = [&l](absl::Duration d) {
    absl::MutexLock lock(&l->mu);
    auto done = [&l]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(l->mu) { return l->exited; };
    return l->mu.AwaitWithTimeout(absl::Condition(&done), d);
  };
  // Without the pod's shim the stop is berthd's: the controller ends the pod's processes; then
  // nothing of the container runs, and its exit is recorded (as unknown, unless the shim's
  // event got there first).
  auto without_shim = [&](const absl::Status& why) -> absl::Status {
    auto gone = monitorGone(rec->sandbox_id);
    if (!gone.ok()) return annotate(gone.status(), absl::StrCat("stop container ", id));
    if (!*gone) return annotate(why, absl::StrCat("stop container ", id));
    return annotate(handleExit(id, l, sandbox::unknownExit(id)),
                    absl::StrCat("stop container ", id));
  };
  auto task_or = taskContext(rec->sandbox_id);
  if (absl::IsUnavailable(task_or.status())) return without_shim(task_or.status());
  BERTH_ASSIGN_OR_RETURN(sandbox::TaskContext task, std::move(task_or));
  if (timeout > absl::ZeroDuration()) {
    auto sig = parseSignal(rec->stop_signal.empty() ? "SIGTERM" : rec->stop_signal);
    absl::Status st = task.shim->kill(id, sig.ok() ? *sig : SIGTERM, /*all=*/false);
    if (absl::IsUnavailable(st)) return without_shim(st);
    if (!st.ok() && !absl::IsNotFound(st)) {
      return annotate(st, absl::StrCat("stop container ", id));
    }
    crashPoint("container.stop.after_signal");
    if (exited(timeout)) return absl::OkStatus();
    log()->info("container {}: still running {} after the stop signal; killing it", id,
                absl::FormatDuration(timeout));
  }
  absl::Status st = task.shim->kill(id, SIGKILL, /*all=*/true);
  if (absl::IsUnavailable(st)) return without_shim(st);
  if (!st.ok() && !absl::IsNotFound(st)) return annotate(st, absl::StrCat("kill container ", id));
  if (!exited(options_.kill_timeout)) {
    return absl::DeadlineExceededError(absl::StrCat(
        "container ", id, " did not exit within ", absl::FormatDuration(options_.kill_timeout),
        " of SIGKILL"));
  }
  return absl::OkStatus();
}

absl::Status ContainerManager::remove(const std::string& id) {
  return flights_.run("remove/" + id, [&] { return removeOnce(id); });
}

absl::Status ContainerManager::removeOnce(const std::string& id) {
  auto l = live(id);
  // A create, start or update in progress ends first; a stop is taken over. (A removal found
  // pending here was cut off by a crash: removals of one container join in remove().)
  auto took = beginOp(id, l, store::Pending::kRemoving,
                      [](const store::ContainerRecord& r) -> absl::StatusOr<Claim> {
                        switch (r.pending) {
                          case store::Pending::kNone:
                          case store::Pending::kStopping:
                          case store::Pending::kRemoving:
                            return Claim::kTake;
                          default:
                            return Claim::kWait;
                        }
                      });
  if (absl::IsNotFound(took.status())) {
    dropLive(id);
    return absl::OkStatus();
  }
  BERTH_RETURN_IF_ERROR(took.status());
  BERTH_ASSIGN_OR_RETURN(auto rec, store_.getContainer(id));
  crashPoint("container.remove.after_intent");
  // A failed step leaves the container as it was, for a later RemoveContainer.
  auto fail = [&](const absl::Status& st) {
    endOp(id, l, store::Pending::kRemoving);
    return annotate(st, absl::StrCat("remove container ", id));
  };
  if (absl::Status st = stopNow(id, l, absl::ZeroDuration()); !st.ok()) return fail(st);
  crashPoint("container.remove.after_stop");
  // The exit is recorded; its clean-up may still run (or be retried): it is done here too
  // (serialised with it), as for a container that never started.
  if (auto c = controllerOf(rec->sandbox_id); c.ok()) (*c)->unwatchTask(rec->sandbox_id, id);
  monitor_.cancel("watch/" + id);
  bool deleted = false;
  {
    absl::MutexLock lock(&l->mu);
    deleted = l->task_deleted;
  }
  if (!deleted) {
    if (absl::Status st = cleanUp(id, l); !st.ok()) return fail(st);
  }
  monitor_.cancel("container/" + id);
  crashPoint("container.remove.after_cleanup");
  BERTH_RETURN_IF_ERROR(removeImageVolumes(snapshots_, id, options_.containers_dir + "/" + id));
  BERTH_RETURN_IF_ERROR(snapshots_.remove(id));
  crashPoint("container.remove.after_snapshot");
  BERTH_RETURN_IF_ERROR(removeAll(options_.containers_dir + "/" + id));
  crashPoint("container.remove.after_dir");
  BERTH_RETURN_IF_ERROR(store_.deleteContainer(id));
  dropLive(id);
  settled(l);
  notify(id, rec->sandbox_id, ContainerEvent::kDeleted);
  return absl::OkStatus();
}

}  // namespace berth::container
