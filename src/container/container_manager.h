// Application containers: their lifecycle on the pod's berth-shim (create, start, stop,
// remove), the exit path (record the exit durably, delete the task, retry a failed clean-up
// with back-off), exec, log reopening, resource updates and recovery after a restart.
// CRI conversion lives in cri/; this module speaks berth's own types.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/flights.h"
#include "events/backoff_monitor.h"
#include "image/image_manager.h"
#include "image/snapshot.h"
#include "oci/container_config.h"
#include "sandbox/controller.h"
#include "sandbox/task_events.h"
#include "shim/shim_client.h"
#include "store/store.h"

namespace berth::container {

struct ContainerOptions {
  std::string containers_dir;  // <state>/containers: one folder per container (rootfs, bundle)
  std::string cgroup_parent = "/berth";  // for pods that name none
  int max_log_line = 0;                  // 0: the shim's default (16 KiB)
  int64_t pids_limit = 0;                // default pids limit of a container; 0: none
  std::vector<std::string> cdi_spec_dirs;  // CDI spec files, later ones first in priority
  oci::HostFacts host;
  absl::Duration kill_timeout = absl::Seconds(30);  // after SIGKILL, until the exit is seen
  std::string criu = "criu";  // CRIU, for CheckpointContainer (looked up in PATH)
};

// What CreateContainer asks for, converted from CRI by the caller.
struct CreateRequest {
  std::string sandbox_id;  // full id of a READY pod
  oci::ContainerConfig config;
  sandbox::SandboxConfig sandbox_config;  // of the pod
  std::string name;                       // the name to reserve
  std::string config_bytes;               // serialized CRI ContainerConfig, kept as is
  std::string log_path;                   // absolute CRI log path, or empty for none
  std::string stop_signal;                // from the config ("SIGUSR1"); empty: the image's
};

// Reasons of an exited container (as containerd and kubelet know them).
inline constexpr char kReasonCompleted[] = "Completed";
inline constexpr char kReasonError[] = "Error";
inline constexpr char kReasonOomKilled[] = "OOMKilled";
inline constexpr char kReasonStartError[] = "StartError";
inline constexpr char kReasonUnknown[] = "Unknown";

// Exit code recorded when the real one cannot be read (containerd's value).
using sandbox::kUnknownExitCode;

// Lifecycle events, reported after the change is persisted.
enum class ContainerEvent { kCreated, kStarted, kStopped, kDeleted };
using ContainerObserver =
    std::function<void(const std::string& id, const std::string& sandbox_id, ContainerEvent)>;

// Thread-safe. Operations on one container are serialised by its Op state and joined calls;
// different containers proceed in parallel. No lock is held across a shim or runtime call.
class ContainerManager {
 public:
  ContainerManager(store::Store& store, image::ImageManager& images,
                   image::OverlaySnapshotter& snapshots, sandbox::ControllerRegistry& controllers,
                   events::BackoffMonitor& monitor, ContainerOptions options);
  ~ContainerManager();

  // At start-up, after the sandbox controllers recovered: watches the exits of running
  // containers again (exits while berthd was down are reported with their real code and
  // time) and finishes clean-ups that were pending.
  [[nodiscard]] absl::Status recover();
  // berthd is stopping: a failed clean-up is left for recovery after the restart.
  void beginShutdown();
  // Set once at start-up, before recover().
  void setObserver(ContainerObserver observer) { observer_ = std::move(observer); }

  // Returns the new container's id. NotFound for a missing image (naming it), AlreadyExists
  // for a name in use, FailedPrecondition when the pod is not ready.
  [[nodiscard]] absl::StatusOr<std::string> create(const CreateRequest& req);
  // FailedPrecondition unless the container is CREATED.
  [[nodiscard]] absl::Status start(const std::string& id);
  // Sends the stop signal, then SIGKILL after `timeout`; returns once the process is gone.
  // A container that is not running is left as it is.
  [[nodiscard]] absl::Status stop(const std::string& id, absl::Duration timeout);
  // Force-stops, deletes the task, the rootfs and the snapshot, then the record. The log file
  // is kept (it is kubelet's). NotFound is not an error here: it is already gone.
  [[nodiscard]] absl::Status remove(const std::string& id);
  [[nodiscard]] absl::StatusOr<shim::ExecResult> execSync(const std::string& id,
                                                          const std::vector<std::string>& cmd,
                                                          absl::Duration timeout);
  // Starts `cmd` in a running container with its stdio handed to the caller (CRI Exec): a
  // terminal with `tty`, else pipes (stdin only with `want_stdin`).
  [[nodiscard]] absl::StatusOr<std::unique_ptr<shim::StreamedProcess>> execStreamed(
      const std::string& id, const std::vector<std::string>& cmd, bool tty, bool want_stdin);
  // Attaches to a running container's output and, if it was created with stdin, its stdin
  // (CRI Attach).
  [[nodiscard]] absl::StatusOr<std::unique_ptr<shim::Attachment>> attach(const std::string& id,
                                                                         bool want_stdin,
                                                                         bool want_stdout,
                                                                         bool want_stderr);
  // An attached client ended its stdin (a stdin_once container's stdin closes).
  [[nodiscard]] absl::Status attachStdinEnded(const std::string& id);
  [[nodiscard]] absl::Status reopenLog(const std::string& id);
  // Applies new limits through the runtime, then records them with `config_bytes` (the CRI
  // config carrying them).
  [[nodiscard]] absl::Status updateResources(const std::string& id,
                                             const oci::ContainerResources& resources,
                                             const std::string& config_bytes);
  // CheckpointContainer (container/checkpoint.h): a running container's CRIU images, config,
  // spec and writable-layer changes written as a tar at `location` (absolute; its folder must
  // exist); the container keeps running. FailedPrecondition when CRIU is missing or cannot
  // work on this host, naming why.
  [[nodiscard]] absl::Status checkpoint(const std::string& id, const std::string& location,
                                        absl::Duration timeout);

 private:
  // Undoes what a checkpoint cut off by a crash left (recover()): resumes a container it
  // paused, removes the archive it was writing and its work folder.
  void finishCutOffCheckpoints(const store::ContainerRecord& rec);
  // What is being done to a container is its record's pending operation (store/state.h),
  // checked and set by the operation's first store update and cleared by its last, so that
  // recovery sees what a crash cut off. Live holds what only this process needs: a counter
  // that wakes operations waiting for another one to end, and what the exit path did.
  struct Live {
    absl::Mutex mu;
    uint64_t settled ABSL_GUARDED_BY(mu) = 0;  // bumped whenever a pending operation ends
    bool exited ABSL_GUARDED_BY(mu) = false;
    bool task_deleted ABSL_GUARDED_BY(mu) = false;
  };
  // What an operation does about the record as it finds it: kTake sets its own pending
  // operation, kShare goes ahead beside the one under way (a kill beside a graceful stop), kWait
  // waits (bounded) until that one ends. An error refuses the operation.
  enum class Claim { kTake, kShare, kWait };
  using ClaimFn = std::function<absl::StatusOr<Claim>(const store::ContainerRecord&)>;

  // Start-up: names reserved and rootfs folders left by a create that never finished.
  void removeOrphans();
  std::shared_ptr<Live> live(const std::string& id);
  void dropLive(const std::string& id);
  [[nodiscard]] absl::StatusOr<sandbox::TaskContext> taskContext(const std::string& sandbox_id);
  // The pod's controller decides whether its shim is gone and, if so, ends what ran under it.
  [[nodiscard]] absl::StatusOr<bool> monitorGone(const std::string& sandbox_id);
  // Recovery of a CREATED container whose task the shim reports started.
  void adoptStarted(const store::ContainerRecord& rec, const std::shared_ptr<Live>& l);
  // For an exec in running container `id`: its pod's context, and `opts` with id and command.
  [[nodiscard]] absl::StatusOr<sandbox::TaskContext> execTarget(const std::string& id,
                                                                const std::vector<std::string>& cmd,
                                                                shim::ExecOptions* opts);
  [[nodiscard]] absl::StatusOr<std::string> createTask(const CreateRequest& req,
                                                       const std::string& id);
  [[nodiscard]] absl::StatusOr<sandbox::Controller*> controllerOf(const std::string& sandbox_id);
  // Has the pod's controller report the container's exit to handleExit().
  void watchExit(const std::string& id, const std::string& sandbox_id,
                 const std::shared_ptr<Live>& l);
  // Records the exit (once) and cleans up. An error: the exit is not persisted.
  [[nodiscard]] absl::Status handleExit(const std::string& id, const std::shared_ptr<Live>& l,
                                        const shim::ExitInfo& e);
  // Records an OOM kill in the running container (reason OOMKilled, as containerd); OK once
  // persisted, or when the container is gone or has exited.
  [[nodiscard]] absl::Status recordOom(const std::string& id, const shim::ExitInfo& e);
  // Deletes the task in the shim and unmounts the rootfs; idempotent.
  [[nodiscard]] absl::Status cleanUp(const std::string& id, const std::shared_ptr<Live>& l);
  [[nodiscard]] absl::Status cleanUpOnce(const std::string& id, const std::shared_ptr<Live>& l);
  void cleanUpOrRetry(const std::string& id, const std::shared_ptr<Live>& l);
  [[nodiscard]] absl::Status removeOnce(const std::string& id);
  [[nodiscard]] absl::Status stopNow(const std::string& id, const std::shared_ptr<Live>& l,
                                     absl::Duration timeout);
  // Claims container `id` for operation `op` as `decide` says, in one store update. Returns
  // whether it took it (then endOp must follow); NotFound if the record is gone.
  [[nodiscard]] absl::StatusOr<bool> beginOp(const std::string& id, const std::shared_ptr<Live>& l,
                                             store::Pending op, const ClaimFn& decide);
  // What a start or an update asks of the record: no other operation under way.
  [[nodiscard]] static absl::Status idle(const store::ContainerRecord& r, absl::string_view what);
  // Clears `op` if it is still the record's pending operation, and wakes waiters.
  void endOp(const std::string& id, const std::shared_ptr<Live>& l, store::Pending op);
  void settled(const std::shared_ptr<Live>& l);
  // Recovery: finishes a stop or removal that a crash cut off, at once on the event loop's
  // workers, retried with back-off.
  void finishStop(const std::string& id, const std::shared_ptr<Live>& l);
  void finishRemoval(const std::string& id);
  // Records the exit (ending a pending start or stop with it).
  [[nodiscard]] absl::Status recordExit(const std::string& id, const shim::ExitInfo& e,
                                        const std::string& reason, const std::string& message);

  store::Store& store_;
  image::ImageManager& images_;
  image::OverlaySnapshotter& snapshots_;
  sandbox::ControllerRegistry& controllers_;
  events::BackoffMonitor& monitor_;
  ContainerOptions options_;
  std::atomic<bool> closing_{false};
  ContainerObserver observer_;
  void notify(const std::string& id, const std::string& sandbox_id, ContainerEvent e) const {
    if (observer_) observer_(id, sandbox_id, e);
  }

  absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<Live>> live_ ABSL_GUARDED_BY(mu_);
  // Joined calls: "stop/<id>" (a graceful stop), "remove/<id>", "cleanup/<id>".
  Flights flights_;
};

// A signal number from a name ("SIGTERM", "TERM", "SIGRTMIN+3") or a number ("15").
[[nodiscard]] absl::StatusOr<int> parseSignal(const std::string& name);

}  // namespace berth::container
