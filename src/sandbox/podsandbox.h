// The `podsandbox` controller: a pod is a pause process in its own namespaces, run as an
// OCI container by the pod's berth-shim. Exits come as events from the shim (TaskEvents, one
// subscription per pod on berthd's event loop); as in containerd's podsandbox, the pause's exit
// is recorded, its task deleted, and a failed clean-up handed to the back-off monitor.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/flights.h"
#include "events/backoff_monitor.h"
#include "events/event_loop.h"
#include "image/image_manager.h"
#include "oci/container_config.h"
#include "sandbox/controller.h"
#include "sandbox/task_events.h"
#include "shim/shim_client.h"
#include "store/store.h"

namespace berth::sandbox {

// The OCI runtime behind a runtime handler.
struct RuntimeBinding {
  std::string runtime_path;  // e.g. "runc"
  std::string runtime_root;  // --root of the runtime
  std::string runtime_type;  // reported in verbose info
  bool exec_in_monitor = false;  // berth-shim starts execs itself (ShimConfig)
  std::vector<oci::Rlimit> rlimits;  // process rlimits of the handler's containers
  bool recursive_read_only = false;  // the runtime and kernel can make mounts rro
};

// `runtime --root R delete --force id`, bounded (10 s): kills what still runs of the container
// and removes the runtime's state of it. OK once the runtime keeps no state of `id`.
[[nodiscard]] absl::Status runtimeDelete(const RuntimeBinding& rt, const std::string& id);

struct PodSandboxOptions {
  std::string pods_dir;      // <state>/pods: one folder per pod
  std::string shim_binary;   // berth-shim
  std::string pause_rootfs;  // built-in rootfs (used when sandbox_image is empty)
  std::string sandbox_image;
  std::string cgroup_parent = "/berth";  // for pods that name none
  std::map<std::string, RuntimeBinding> runtimes;  // by handler name
  std::string default_handler;
  std::string log_level = "info";
  oci::HostFacts host;  // what the kernel can do (seccomp, AppArmor) for the pause's profiles
  // How pods' shims are started and reached; berth-shim processes when null.
  std::shared_ptr<shim::ShimLauncher> shims;
};

// Thread-safe.
class PodSandboxController final : public Controller {
 public:
  // A runtime handler added while berthd runs (SIGHUP).
  void addRuntime(const std::string& name, RuntimeBinding binding);
  PodSandboxController(store::Store& store, image::ImageManager& images,
                       image::OverlaySnapshotter& snapshots, events::EventLoop& loop,
                       events::BackoffMonitor& monitor, PodSandboxOptions options);
  ~PodSandboxController() override;

  // At start-up: reconnects and subscribes to the shims of the sandboxes (exits that happened
  // while berthd was down are replayed), and ends what ran under shims that died.
  [[nodiscard]] absl::Status recover();

  absl::Status create(const std::string& id, const CreateOptions& opts) override;
  absl::StatusOr<ControllerInstance> start(const std::string& id) override;
  absl::StatusOr<Platform> platform(const std::string& id) override;
  absl::Status stop(const std::string& id, std::optional<absl::Duration> timeout) override;
  absl::StatusOr<ExitStatus> wait(const std::string& id) override;
  absl::StatusOr<ControllerStatus> status(const std::string& id, bool verbose) override;
  absl::Status shutdown(const std::string& id) override;
  absl::Status update(const std::string& id, const SandboxConfig& config) override;
  absl::StatusOr<TaskContext> taskContext(const std::string& id) override;
  absl::StatusOr<bool> monitorGone(const std::string& id) override;
  absl::Status watchTask(const std::string& id, const std::string& task_id, ExitHandler exited,
                         OomHandler oom) override;
  void unwatchTask(const std::string& id, const std::string& task_id) override;
  absl::StatusOr<std::map<std::string, uint64_t>> metrics(const std::string& id) override;

  // Pids of the shims this controller is connected to (one per pod until it is removed).
  // Answered from memory.
  std::vector<int> shimPids() const;

  // Told when a READY sandbox's pause has exited and the pod is recorded NOTREADY (it died on
  // its own, or a stop ended it), once per pod, after the store has the change; from a
  // worker of the event loop. Set before recover(); must be cheap and must not call back into this
  // controller for the same pod synchronously with a lock held.
  using ExitObserver = std::function<void(const std::string& id)>;
  void setExitObserver(ExitObserver observer) { exit_observer_ = std::move(observer); }

 private:
  mutable absl::Mutex runtimes_mu_;  // guards options_.runtimes (handlers are added, never removed)
  // In-memory state of one sandbox. `mu` guards the fields below it.
  struct Live {
    absl::Mutex mu;
    // Shared so that a call in progress (exit handler, back-off retry) keeps the client alive
    // while shutdown() drops it.
    std::shared_ptr<shim::PodShim> shim ABSL_GUARDED_BY(mu);
    shim::ProcessStatus process_status ABSL_GUARDED_BY(mu) = shim::ProcessStatus::kCreated;
    bool exited ABSL_GUARDED_BY(mu) = false;
    ExitStatus exit ABSL_GUARDED_BY(mu);
    bool closing ABSL_GUARDED_BY(mu) = false;  // shutdown() or the destructor dropped the shim
    // Set once the shim was found dead and berthd ended what it ran (takeOver).
    bool taken_over ABSL_GUARDED_BY(mu) = false;
  };

  std::shared_ptr<Live> live(const std::string& id) const;
  std::shared_ptr<Live> liveOrCreate(const std::string& id);
  std::string podDir(const std::string& id) const { return options_.pods_dir + "/" + id; }
  [[nodiscard]] absl::StatusOr<RuntimeBinding> binding(const std::string& handler) const;
  // The sandbox image (null for berth's built-in pause, pulled if missing); sets
  // made.pause_args from it.
  [[nodiscard]] absl::StatusOr<store::ImagePtr> sandboxImage(store::SandboxRecord& made);
  // Mounts the sandbox image's rootfs (snapshot made.snapshot_key) on `rootfs`, idmapped
  // through the pod's own user namespace when it has one (`userns_path`).
  [[nodiscard]] absl::Status mountRootfs(const store::ImageRecord& image,
                                         const store::SandboxRecord& made,
                                         const std::string& rootfs, const std::string& userns_path,
                                         const SandboxConfig& cfg);
  // Subscribes to the pod's shim; what the events need of it.
  [[nodiscard]] absl::Status subscribe(const std::string& id,
                                       const std::shared_ptr<shim::PodShim>& shim);
  // Watches the pause's exit (subscribing first if needed); idempotent.
  [[nodiscard]] absl::Status watchPause(const std::string& id, const std::shared_ptr<Live>& l);
  // The exit path (seed 003): record exit, delete the task, retry with back-off on failure.
  // An error: the exit is not persisted.
  [[nodiscard]] absl::Status handleExit(const std::string& id, const std::shared_ptr<Live>& l,
                                        const shim::ExitInfo& e);
  [[nodiscard]] absl::Status deleteTask(const std::string& id, const std::shared_ptr<Live>& l);
  // The pod's shim is dead: kills every process of the pod through its cgroups, deletes the
  // runtime's state of the pause and of each container, removes their cgroups. Idempotent.
  [[nodiscard]] absl::Status takeOver(const std::string& id, const std::shared_ptr<Live>& l);
  [[nodiscard]] absl::Status takeOverOnce(const std::string& id, const std::shared_ptr<Live>& l);

  store::Store& store_;
  image::ImageManager& images_;
  image::OverlaySnapshotter& snapshots_;
  events::BackoffMonitor& monitor_;
  PodSandboxOptions options_;
  TaskEvents events_;
  Flights flights_;  // joined calls: "takeover/<id>"
  ExitObserver exit_observer_;

  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<Live>> live_ ABSL_GUARDED_BY(mu_);
};

}  // namespace berth::sandbox
