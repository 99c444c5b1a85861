// podsandbox controller: create/start/stop/shutdown of the pause container through the
// pod's berth-shim, and the exit path.
#include "sandbox/podsandbox.h"

#include <signal.h>
#include <sys/mount.h>

#include <cerrno>
#include <filesystem>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/crash_point.h"
#include "common/fs.h"
#include "common/json_text.h"
#include "common/logging.h"
#include "common/status.h"
#include "image/snapshot_mount.h"
#include "oci/spec.h"
#include "sandbox/pod_files.h"

namespace berth::sandbox {
namespace {

std::shared_ptr<spdlog::logger> log() { return logging::get("podsandbox"); }

}  // namespace

PodSandboxController::PodSandboxController(store::Store& store, image::ImageManager& images,
                                           image::OverlaySnapshotter& snapshots,
                                           events::EventLoop& loop, events::BackoffMonitor& monitor,
                                           PodSandboxOptions options)
    : store_(store),
      images_(images),
      snapshots_(snapshots),
      monitor_(monitor),
      options_(std::move(options)),
      events_(loop, monitor) {
  if (!options_.shims) options_.shims = shim::processShims();
}

PodSandboxController::~PodSandboxController() {
  // The event loop stopped first: no exit is handled any more. Shims and pause processes keep
  // running: berthd reconnects after a restart.
  std::map<std::string, std::shared_ptr<Live>> all;
  {
    absl::MutexLock lock(&mu_);
    all.swap(live_);
  }
  for (auto& [id, l] : all) {
    std::shared_ptr<shim::PodShim> shim;
    {
      absl::MutexLock lock(&l->mu);
      l->closing = true;
      shim = std::move(l->shim);
    }
    if (shim) shim->close();
  }
}

std::shared_ptr<PodSandboxController::Live> PodSandboxController::live(const std::string& id) const {
  absl::MutexLock lock(&mu_);
  auto it = live_.find(id);
  return it == live_.end() ? nullptr : it->second;
}

std::vector<int> PodSandboxController::shimPids() const {
  std::vector<std::shared_ptr<Live>> all;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, l] : live_) all.push_back(l);
  }
  std::vector<int> pids;
  for (const auto& l : all) {
    absl::MutexLock lock(&l->mu);
    if (l->shim != nullptr && l->shim->pid() > 0) pids.push_back(l->shim->pid());
  }
  return pids;
}

std::shared_ptr<PodSandboxController::Live> PodSandboxController::liveOrCreate(
    const std::string& id) {
  absl::MutexLock lock(&mu_);
  auto& l = live_[id];
  if (!l) l = std::make_shared<Live>();
  return l;
}

void PodSandboxController::addRuntime(const std::string& name, RuntimeBinding binding) {
  absl::MutexLock lock(&runtimes_mu_);
  options_.runtimes.emplace(name, std::move(binding));
}

absl::StatusOr<RuntimeBinding> PodSandboxController::binding(const std::string& handler) const {
  const std::string& name = handler.empty() ? options_.default_handler : handler;
  absl::MutexLock lock(&runtimes_mu_);
  auto it = options_.runtimes.find(name);
  if (it == options_.runtimes.end()) {
    return absl::InvalidArgumentError(absl::StrCat("runtime handler \"", name, "\" is not configured"));
  }
  return it->second;
}

absl::StatusOr<store::ImagePtr> PodSandboxController::sandboxImage(store::SandboxRecord& made) {
  if (options_.sandbox_image.empty()) {
    made.pause_args = {"/pause"};
    return store::ImagePtr();
  }
  auto image = images_.resolve(options_.sandbox_image);
  if (absl::IsNotFound(image.status())) image = images_.pull(options_.sandbox_image, {});
  if (!image.ok())
    return annotate(image.status(), absl::StrCat("sandbox image \"", options_.sandbox_image, "\""));
  // The image's entrypoint and command start the pause process.
  made.pause_args.clear();
  nlohmann::json config = parseJsonOr((*image)->config_json, nlohmann::json::object());
  if (auto c = config.find("config"); c != config.end() && c->is_object()) {
    for (const char* k : {"Entrypoint", "Cmd"}) {
      if (auto v = c->find(k); v != c->end() && v->is_array()) {
        for (const auto& a : *v) {
          if (a.is_string()) made.pause_args.push_back(a.get<std::string>());
        }
      }
    }
  }
  if (made.pause_args.empty()) made.pause_args.push_back("/pause");
  return image;
}

absl::Status PodSandboxController::mountRootfs(const store::ImageRecord& image,
                                               const store::SandboxRecord& made,
                                               const std::string& rootfs,
                                               const std::string& userns_path,
                                               const SandboxConfig& cfg) {
  BERTH_ASSIGN_OR_RETURN(auto in_use, images_.useImage(image));
  BERTH_ASSIGN_OR_RETURN(auto mounts, snapshots_.prepare(made.snapshot_key, image.chain_id));
  BERTH_RETURN_IF_ERROR(makeDirs(rootfs, 0755));
  // RunPodSandbox pins the user namespace of every pod that has one (userns_path).
  if (!cfg.userns.has_value()) return image::mountAll(mounts, rootfs);
  BERTH_ASSIGN_OR_RETURN(auto idmap,
                         image::Idmap::open(userns_path, cfg.userns->uids, cfg.userns->gids));
  return image::mountAllIdmapped(mounts, rootfs, idmap);
}

absl::Status PodSandboxController::create(const std::string& id, const CreateOptions& opts) {
  BERTH_ASSIGN_OR_RETURN(auto record, store_.getSandbox(id));
  BERTH_ASSIGN_OR_RETURN(RuntimeBinding rt, binding(opts.runtime_handler));
  std::string dir = podDir(id);
  // What this controller makes for the pod.
  store::SandboxRecord made;
  made.runtime_type = rt.runtime_type;
  made.shim_dir = dir + "/shim";
  made.bundle_dir = dir + "/bundle";
  made.config_json = opts.config.config_json;
  if (!options_.sandbox_image.empty()) {
    made.image = options_.sandbox_image;
    made.snapshot_key = "sandbox-" + id;
    made.snapshotter = "overlayfs";
  }
  BERTH_ASSIGN_OR_RETURN(store::ImagePtr image, sandboxImage(made));
  const std::string rootfs = image ? dir + "/rootfs" : options_.pause_rootfs;
  const SandboxConfig& cfg = opts.config;
  const std::string hostname = podHostname(cfg);
  const std::string shm = cfg.ipc != NamespaceMode::kNode ? dir + "/shm" : "";
  oci::SandboxSpecInput in;
  in.id = id;
  in.config = &cfg;
  in.rootfs = rootfs;
  in.netns_path = opts.netns_path;
  in.userns_path = opts.userns_path;
  in.hostname = hostname;
  in.cgroup_parent_default = options_.cgroup_parent;
  in.resolv_conf = dir + "/resolv.conf";
  in.hosts = dir + "/hosts";
  in.hostname_file = dir + "/hostname";
  in.shm_path = shm;
  in.args = made.pause_args;
  in.host = options_.host;
  BERTH_ASSIGN_OR_RETURN(nlohmann::json spec, oci::buildSandboxSpec(in));
  // Intent first, in one write: the record names the pod dir's mounts, the rootfs snapshot, the
  // shim dir and the pause's cgroup (its spec) before any of them is made, so that shutdown()
  // and a takeover find them after a crash at any instant.
  BERTH_RETURN_IF_ERROR(store_
                            .updateSandbox(id,
                                           [&](store::SandboxRecord& r) {
                                             r.netns_path = opts.netns_path;
                                             r.runtime_type = made.runtime_type;
                                             r.shim_dir = made.shim_dir;
                                             r.bundle_dir = made.bundle_dir;
                                             r.config_json = made.config_json;
                                             r.image = made.image;
                                             r.snapshot_key = made.snapshot_key;
                                             r.snapshotter = made.snapshotter;
                                             r.pause_args = made.pause_args;
                                             r.spec_json = spec.dump();
                                             return absl::OkStatus();
                                           })
                            .status());
  // The pod's shm (1777), resolv.conf, hosts and shim socket are below: root's alone, but for
  // the root of a pod's own user namespace, which passes through to its rootfs.
  BERTH_RETURN_IF_ERROR(makeDirWithMode(dir, 0700));
  if (cfg.userns.has_value()) BERTH_RETURN_IF_ERROR(letMappedRootThrough(dir, cfg.userns->gids));
  // The shim starts while the pod's files and bundle are written: it needs none of them
  // before the pause is created.
  absl::StatusOr<std::unique_ptr<shim::PodShim>> launched = absl::UnknownError("shim not launched");
  std::thread launcher([&] {
    launched = options_.shims->launch({.id = id,
                                       .dir = dir + "/shim",
                                       .runtime_path = rt.runtime_path,
                                       .runtime_root = rt.runtime_root,
                                       .shim_binary = options_.shim_binary,
                                       .log_level = options_.log_level,
                                       .exec_in_monitor = rt.exec_in_monitor});
  });
  absl::Status made_files = [&]() -> absl::Status {
    BERTH_RETURN_IF_ERROR(writeResolvConf(dir + "/resolv.conf", cfg));
    BERTH_RETURN_IF_ERROR(writeHostname(dir + "/hostname", hostname));
    if (cfg.network == NamespaceMode::kNode) {
      BERTH_RETURN_IF_ERROR(copyHostHosts(dir + "/hosts"));
    } else {
      BERTH_RETURN_IF_ERROR(writeHosts(dir + "/hosts", hostname, ""));
    }
    if (!shm.empty()) BERTH_RETURN_IF_ERROR(mountPodShm(shm));
    crashPoint("sandbox.create.after_pod_files");
    if (image) BERTH_RETURN_IF_ERROR(mountRootfs(*image, made, rootfs, opts.userns_path, cfg));
    BERTH_RETURN_IF_ERROR(makeDirs(dir + "/bundle", 0700));
    return oci::writeBundle(dir + "/bundle", spec);
  }();
  launcher.join();
  // A launched shim is kept (shutdown() ends it) also when the files failed.
  if (launched.ok()) {
    crashPoint("sandbox.create.after_shim");
    std::shared_ptr<shim::PodShim> client = *std::move(launched);
    auto l = liveOrCreate(id);
    {
      absl::MutexLock lock(&l->mu);
      l->shim = client;
      l->process_status = shim::ProcessStatus::kCreated;
    }
    BERTH_RETURN_IF_ERROR(made_files);
    return subscribe(id, client);
  }
  BERTH_RETURN_IF_ERROR(made_files);
  return annotate(launched.status(), absl::StrCat("start shim for pod sandbox ", id));
}

absl::StatusOr<ControllerInstance> PodSandboxController::start(const std::string& id) {
  auto l = live(id);
  if (!l) return absl::FailedPreconditionError(absl::StrCat("pod sandbox ", id, " was not created"));
  std::shared_ptr<shim::PodShim> shim;
  {
    absl::MutexLock lock(&l->mu);
    shim = l->shim;
  }
  if (shim == nullptr) return absl::FailedPreconditionError(absl::StrCat("pod sandbox ", id, " has no shim"));
  // Created and started by one runtime process: nothing needs the pause created first.
  BERTH_ASSIGN_OR_RETURN(
      int pid, shim->create({.container_id = id, .bundle = podDir(id) + "/bundle", .start = true}));
  crashPoint("sandbox.start.after_start");
  {
    absl::MutexLock lock(&l->mu);
    l->process_status = shim::ProcessStatus::kRunning;
  }
  int64_t created = 0;
  auto updated = store_.updateSandbox(id, [&](store::SandboxRecord& r) {
    r.state = store::SandboxState::kReady;
    r.pid = pid;
    // The pod is made once its network is too: RunPodSandbox's creation ends with this write
    // or with the one recording the network, whichever comes last (no extra one).
    if (r.pending == store::Pending::kCreating && store::networkMade(r))
      r.pending = store::Pending::kNone;
    created = r.created_at_ns;
    return absl::OkStatus();
  });
  if (!updated.ok()) return updated.status();
  BERTH_RETURN_IF_ERROR(watchPause(id, l));
  return ControllerInstance{.sandbox_id = id, .pid = pid, .created_at_ns = created};
}

absl::Status PodSandboxController::subscribe(const std::string& id,
                                             const std::shared_ptr<shim::PodShim>& shim) {
  return annotate(
      events_.open(id, {.subscribe = [shim] { return shim->subscribe(); },
                        .ack = [shim](const std::string& task,
                                      uint64_t seq) { return shim->ackExit(task, seq); },
                        .ack_oom = [shim](const std::string& task,
                                          uint64_t seq) { return shim->ackOom(task, seq); },
                        .gone = [this, id] { return monitorGone(id); }}),
      absl::StrCat("pod sandbox ", id, ": subscribe to its shim's events"));
}

absl::Status PodSandboxController::watchPause(const std::string& id,
                                              const std::shared_ptr<Live>& l) {
  return watchTask(
      id, id, [this, id, l](const shim::ExitInfo& e) { return handleExit(id, l, e); }, nullptr);
}

absl::Status PodSandboxController::watchTask(const std::string& id, const std::string& task_id,
                                             ExitHandler exited, OomHandler oom) {
  absl::Status st = events_.watch(id, task_id, exited, oom);
  if (!absl::IsFailedPrecondition(st)) return st;
  // Not subscribed (a subscription that failed at start-up): once more, with the shim there is.
  std::shared_ptr<shim::PodShim> shim;
  if (auto l = live(id)) {
    absl::MutexLock lock(&l->mu);
    shim = l->shim;
  }
  if (shim == nullptr) {
    return absl::UnavailableError(absl::StrCat("pod sandbox ", id, " has no running shim"));
  }
  BERTH_RETURN_IF_ERROR(subscribe(id, shim));
  return events_.watch(id, task_id, std::move(exited), std::move(oom));
}

void PodSandboxController::unwatchTask(const std::string& id, const std::string& task_id) {
  events_.unwatch(id, task_id);
}

absl::Status PodSandboxController::handleExit(const std::string& id, const std::shared_ptr<Live>& l,
                                              const shim::ExitInfo& e) {
  {
    absl::MutexLock lock(&l->mu);
    if (l->exited) return absl::OkStatus();  // reported already
  }
  log()->info("pod sandbox {}: pause exited with status {}", id, e.exit_code);
  bool was_ready = false;
  auto updated = store_.updateSandbox(id, [&](store::SandboxRecord& r) {
    was_ready = r.state == store::SandboxState::kReady;
    r.state = store::SandboxState::kNotReady;
    r.exit_code = e.exit_code;
    r.exited_at_ns = e.exited_at_ns;
    return absl::OkStatus();
  });
  // A pod removed meanwhile has nothing left to record.
  if (!updated.ok() && !absl::IsNotFound(updated.status())) {
    return annotate(updated.status(), absl::StrCat("pod sandbox ", id, ": record its exit"));
  }
  if (updated.ok() && was_ready && exit_observer_) exit_observer_(id);
  {
    absl::MutexLock lock(&l->mu);
    l->exited = true;
    l->exit = {.exit_status = static_cast<uint32_t>(e.exit_code), .exited_at_ns = e.exited_at_ns};
    if (l->process_status != shim::ProcessStatus::kDeleted)
      l->process_status = shim::ProcessStatus::kStopped;
  }
  if (absl::Status st = deleteTask(id, l); !st.ok()) {
    bool closing = false;  // the sandbox is being shut down: its shim deletes everything
    {
      absl::MutexLock lock(&l->mu);
      closing = l->closing || l->shim == nullptr;
    }
    if (closing) return absl::OkStatus();
    log()->error("pod sandbox {}: clean-up failed, retrying with back-off: {}", id, st.message());
    monitor_.backoff("sandbox/" + id, [this, id, l] { return deleteTask(id, l); });
  }
  return absl::OkStatus();
}

absl::Status PodSandboxController::deleteTask(const std::string& id,
                                              const std::shared_ptr<Live>& l) {
  std::shared_ptr<shim::PodShim> shim;
  {
    absl::MutexLock lock(&l->mu);
    if (l->process_status == shim::ProcessStatus::kDeleted) return absl::OkStatus();
    shim = l->shim;
  }
  if (shim == nullptr) return absl::UnavailableError(absl::StrCat("pod sandbox ", id, ": no shim"));
  // NotFound: the shim never created it, or deleted it already.
  if (absl::Status st = shim->remove(id, /*force=*/true); !st.ok() && !absl::IsNotFound(st))
    return st;
  // The exit is in the store: the shim may forget it now.
  (void)shim->ackExit(id);
  absl::MutexLock lock(&l->mu);
  l->process_status = shim::ProcessStatus::kDeleted;
  return absl::OkStatus();
}

absl::StatusOr<Platform> PodSandboxController::platform(const std::string& /*id*/) {
  return Platform{};
}

absl::Status PodSandboxController::stop(const std::string& id,
                                        std::optional<absl::Duration> timeout) {
  auto l = live(id);
  if (!l) return absl::OkStatus();  // nothing running here
  std::shared_ptr<shim::PodShim> shim;
  bool exited = false;
  {
    absl::MutexLock lock(&l->mu);
    shim = l->shim;
    exited = l->exited || l->process_status == shim::ProcessStatus::kCreated;
  }
  if (!exited && shim != nullptr) {
    // Only the exit event records the exit this stop waits for. A pod recovered half made
    // (berthd died between launching its shim and starting the pause) is not watched yet.
    if (absl::Status st = watchPause(id, l); !st.ok())
      return annotate(st, absl::StrCat("stop pod sandbox ", id));
    if (timeout.has_value() && *timeout > absl::ZeroDuration()) {
      (void)shim->kill(id, SIGTERM, false);
      absl::MutexLock lock(&l->mu);
      auto done = [&l]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(l->mu) { return l->exited; };
      l->mu.AwaitWithTimeout(absl::Condition(&done), *timeout);
      exited = l->exited;
    }
    if (!exited) {
      absl::Status st = shim->kill(id, SIGKILL, true);
      if (absl::IsNotFound(st)) {
        // The shim never ran the pause (berthd died before it was created): no exit will come.
        BERTH_RETURN_IF_ERROR(handleExit(id, l, unknownExit(id)));
      } else if (!st.ok()) {
        // The shim may have died under the call: then berthd ends the pod itself, and the
        // exit comes once nothing of it runs (TaskEvents, after the takeover).
        auto gone = monitorGone(id);
        if (!gone.ok() || !*gone) return annotate(st, absl::StrCat("stop pod sandbox ", id));
      }
      absl::MutexLock lock(&l->mu);
      auto done = [&l]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(l->mu) { return l->exited; };
      if (!l->mu.AwaitWithTimeout(absl::Condition(&done), absl::Seconds(10))) {
        return absl::DeadlineExceededError(absl::StrCat("pod sandbox ", id, " did not exit after SIGKILL"));
      }
    }
  }
  if (shim == nullptr) return absl::OkStatus();
  // Also deletes the task of a sandbox that never started. A failure is retried.
  if (absl::Status st = deleteTask(id, l); !st.ok()) {
    monitor_.backoff("sandbox/" + id, [this, id, l] { return deleteTask(id, l); });
  }
  return absl::OkStatus();
}

absl::StatusOr<ExitStatus> PodSandboxController::wait(const std::string& id) {
  auto l = live(id);
  if (!l) {
    BERTH_ASSIGN_OR_RETURN(auto r, store_.getSandbox(id));
    return ExitStatus{.exit_status = static_cast<uint32_t>(r->exit_code), .exited_at_ns = r->exited_at_ns};
  }
  absl::MutexLock lock(&l->mu);
  auto done = [&l]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(l->mu) { return l->exited; };
  l->mu.Await(absl::Condition(&done));
  return l->exit;
}

absl::StatusOr<ControllerStatus> PodSandboxController::status(const std::string& id, bool verbose) {
  BERTH_ASSIGN_OR_RETURN(auto r, store_.getSandbox(id));
  ControllerStatus cs;
  cs.sandbox_id = id;
  cs.pid = r->pid;
  cs.ready = r->state == store::SandboxState::kReady;
  cs.created_at_ns = r->created_at_ns;
  cs.exited_at_ns = r->exited_at_ns;
  if (!verbose) return cs;
  shim::ProcessStatus process_status = shim::ProcessStatus::kDeleted;
  if (auto l = live(id)) {
    absl::MutexLock lock(&l->mu);
    process_status = l->process_status;
  }
  nlohmann::json cni = parseJsonOr(r->cni_result_json, nullptr);
  nlohmann::json config = parseJsonOr(r->config_json, nlohmann::json::object());
  nlohmann::json info = {
      {"pid", r->pid},
      {"processStatus", shim::toString(process_status)},
      {"netNamespaceClosed", r->netns_closed},
      {"image", r->image},
      {"snapshotKey", r->snapshot_key},
      {"snapshotter", r->snapshotter},
      {"runtimeHandler", r->runtime_handler},
      {"runtimeType", r->runtime_type},
      {"runtimeOptions", nlohmann::json::object()},
      {"config", config},
      {"runtimeSpec", parseJsonOr(r->spec_json, nullptr)},
      {"cniResult", cni},
      {"sandboxMetadata",
       {{"ID", id},
        {"Name", r->name},
        {"Config", config},
        {"NetNSPath", r->netns_path},
        {"IP", r->ips.empty() ? "" : r->ips[0]},
        {"AdditionalIPs", r->ips.size() > 1 ? nlohmann::json(std::vector<std::string>(
                                                  r->ips.begin() + 1, r->ips.end()))
                                            : nlohmann::json(nullptr)},
        {"RuntimeHandler", r->runtime_handler},
        {"CNIResult", cni},
        {"ProcessLabel", ""}}},
  };
  cs.info["info"] = info.dump();
  return cs;
}

absl::Status PodSandboxController::shutdown(const std::string& id) {
  bool shim_ended = false;
  if (auto l = live(id)) {
    bool exited = false;
    {
      absl::MutexLock lock(&l->mu);
      exited = l->exited || l->process_status == shim::ProcessStatus::kCreated;
    }
    // Through the normal exit path first, so the exit is recorded and the task deleted.
    if (!exited) {
      if (absl::Status st = stop(id, std::nullopt); !st.ok()) {
        log()->warn("pod sandbox {}: stop before shutdown: {}", id, st.message());
      }
    }
    std::shared_ptr<shim::PodShim> shim;
    {
      absl::MutexLock lock(&l->mu);
      l->closing = true;
      shim = std::move(l->shim);
    }
    if (shim) {
      // The shim kills what still runs, reports those exits, and exits: the end of its
      // subscription is then no dead shim.
      events_.ending(id);
      BERTH_RETURN_IF_ERROR(annotate(shim->shutdown(), absl::StrCat("shut down shim of pod sandbox ", id)));
      shim->close();
      shim_ended = true;
    }
    events_.close(id);
    monitor_.cancel("sandbox/" + id);
    absl::MutexLock lock(&mu_);
    live_.erase(id);
  }
  std::string dir = podDir(id);
  std::string shim_dir, snapshot_key;
  if (auto r = store_.getSandbox(id); r.ok()) {
    shim_dir = (*r)->shim_dir;
    snapshot_key = (*r)->snapshot_key;
  }
  if (!shim_ended) {
    // A shim this berthd holds no connection to: one launched just before a crash, or one of a
    // pod stopped before a restart. It ends what it runs and exits.
    if (auto shim = options_.shims->connect(shim_dir.empty() ? dir + "/shim" : shim_dir);
        shim.ok()) {
      BERTH_RETURN_IF_ERROR(
          annotate((*shim)->shutdown(), absl::StrCat("shut down shim of pod sandbox ", id)));
    }
  }
  crashPoint("sandbox.shutdown.after_shim");
  // The rootfs mounts are looked up, not taken from a flag: one made just before a crash has
  // no flag yet. A failed unmount stops here, before anything below it is removed.
  for (const std::string& m : mountsUnder(dir + "/rootfs")) {
    if (::umount2(m.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
      return lastErrnoStatus(absl::StrCat("pod sandbox ", id, ": unmount ", m));
    }
  }
  if (!snapshot_key.empty()) BERTH_RETURN_IF_ERROR(snapshots_.remove(snapshot_key));
  BERTH_RETURN_IF_ERROR(unmountPodShm(dir + "/shm"));
  crashPoint("sandbox.shutdown.after_unmount");
  return removeAll(dir);
}

absl::Status PodSandboxController::update(const std::string& /*id*/, const SandboxConfig& /*config*/) {
  return absl::OkStatus();  // as containerd's podsandbox: nothing to change in a running pause
}

absl::StatusOr<TaskContext> PodSandboxController::taskContext(const std::string& id) {
  BERTH_ASSIGN_OR_RETURN(auto r, store_.getSandbox(id));
  TaskContext ctx;
  if (auto l = live(id)) {
    absl::MutexLock lock(&l->mu);
    ctx.shim = l->shim;
  }
  if (ctx.shim == nullptr) {
    return absl::UnavailableError(absl::StrCat("pod sandbox ", id, " has no running shim"));
  }
  BERTH_ASSIGN_OR_RETURN(RuntimeBinding rt, binding(r->runtime_handler));
  std::string dir = podDir(id);
  ctx.pid = r->pid;
  ctx.netns_path = r->netns_path;
  ctx.userns_path = r->userns_path;
  ctx.hosts_path = dir + "/hosts";
  ctx.resolv_conf_path = dir + "/resolv.conf";
  ctx.hostname_path = dir + "/hostname";
  std::error_code ec;
  if (std::filesystem::exists(dir + "/shm", ec)) ctx.shm_path = dir + "/shm";
  ctx.runtime_type = r->runtime_type;
  ctx.runtime_path = rt.runtime_path;
  ctx.runtime_root = rt.runtime_root;
  ctx.rlimits = rt.rlimits;
  ctx.runtime_handler = r->runtime_handler;
  ctx.recursive_read_only = rt.recursive_read_only;
  return ctx;
}

absl::StatusOr<std::map<std::string, uint64_t>> PodSandboxController::metrics(const std::string& id) {
  return absl::UnimplementedError(absl::StrCat("metrics of pod sandbox ", id, " come with the stats collector"));
}

}  // namespace berth::sandbox
