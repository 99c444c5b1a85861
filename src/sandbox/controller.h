// The sandbox Controller API (containerd 2.x shape): how a pod sandbox is created, started,
// stopped, waited for, inspected and torn down, whatever technology runs it. Controllers
// are registered by name; a runtime handler names its controller ("sandboxer").
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "oci/rlimits.h"
#include "sandbox/sandbox_config.h"
#include "shim/shim_client.h"

namespace berth::sandbox {

// What Start returns.
struct ControllerInstance {
  std::string sandbox_id;
  int pid = 0;
  int64_t created_at_ns = 0;
  std::map<std::string, std::string> labels;
};

// What Wait returns: how the sandbox ended.
struct ExitStatus {
  uint32_t exit_status = 0;
  int64_t exited_at_ns = 0;
};

// What Status returns. `info` is {"info": <JSON>} when verbose (containerd's keys).
struct ControllerStatus {
  std::string sandbox_id;
  int pid = 0;
  bool ready = false;  // the sandbox runs and can take containers
  int64_t created_at_ns = 0;
  int64_t exited_at_ns = 0;
  std::map<std::string, std::string> info;
  std::string extra;
};

struct Platform {
  std::string os = "linux";
  std::string architecture = "amd64";
  std::string variant;
};

// Everything the CRI layer prepared for the sandbox before Create.
struct CreateOptions {
  SandboxConfig config;
  std::string netns_path;  // pinned network namespace for NamespaceMode::kPod; else empty
  std::string userns_path;  // the pod's own user namespace (config.userns), pinned; else empty
  std::string runtime_handler;
};

// What an application container of a sandbox needs from it: the monitor that runs the
// container's processes, the namespaces to join and the pod's files.
struct TaskContext {
  std::shared_ptr<shim::TaskApi> shim;
  int pid = 0;  // the sandbox's init (pause) process
  std::string netns_path;
  std::string userns_path;  // the pod's own user namespace, pinned; empty: the host's
  std::string hosts_path, resolv_conf_path, hostname_path;
  std::string shm_path;  // empty when the pod shares the host's IPC namespace
  std::string runtime_type;
  std::string runtime_path, runtime_root;  // the OCI runtime, for `update`
  std::vector<oci::Rlimit> rlimits;        // the handler's default_ulimits, for every container
  std::string runtime_handler;
  bool recursive_read_only = false;  // the handler can make mounts recursively read-only
};

// Implementations are thread-safe; calls for different sandboxes run concurrently.
class Controller {
 public:
  virtual ~Controller() = default;

  // Prepares the sandbox (files, rootfs, bundle, monitor) without starting it.
  [[nodiscard]] virtual absl::Status create(const std::string& id, const CreateOptions& opts) = 0;
  [[nodiscard]] virtual absl::StatusOr<ControllerInstance> start(const std::string& id) = 0;
  [[nodiscard]] virtual absl::StatusOr<Platform> platform(const std::string& id) = 0;
  // Stops the sandbox's process; with a timeout it is first asked to stop, then killed.
  // Stopping a stopped sandbox succeeds.
  [[nodiscard]] virtual absl::Status stop(const std::string& id,
                                          std::optional<absl::Duration> timeout) = 0;
  // Blocks until the sandbox has exited.
  [[nodiscard]] virtual absl::StatusOr<ExitStatus> wait(const std::string& id) = 0;
  // Answered from memory.
  [[nodiscard]] virtual absl::StatusOr<ControllerStatus> status(const std::string& id,
                                                                bool verbose) = 0;
  // Removes everything the controller made for the sandbox; idempotent.
  [[nodiscard]] virtual absl::Status shutdown(const std::string& id) = 0;
  [[nodiscard]] virtual absl::Status update(const std::string& id,
                                            const SandboxConfig& config) = 0;
  // The sandbox's task context. Unavailable when its monitor is gone or not connected.
  [[nodiscard]] virtual absl::StatusOr<TaskContext> taskContext(const std::string& id) = 0;
  // Called when a call to the sandbox's monitor failed. False when the monitor is alive. When
  // it is gone, ends everything that ran under it (the sandbox's process and its containers)
  // without it, once, and returns true only when none of it is left running: an exit may be
  // reported then, never before.
  [[nodiscard]] virtual absl::StatusOr<bool> monitorGone(const std::string& id) = 0;
  // Records a task's exit; OK once it is persisted.
  using ExitHandler = std::function<absl::Status(const shim::ExitInfo&)>;
  // Records that a process of a running task was OOM-killed; OK once it is persisted.
  using OomHandler = std::function<absl::Status(const shim::ExitInfo&)>;
  // Calls `exited` once, off the caller's thread, when task `task_id` run by the sandbox's
  // monitor has exited: with its real exit, or, when the monitor died, with an unknown code
  // once nothing of the sandbox runs any more. With `oom`, calls it (off the caller's thread)
  // when the monitor reports an OOM kill in the task's cgroup while it runs. Unavailable when
  // the sandbox has no monitor.
  [[nodiscard]] virtual absl::Status watchTask(const std::string& id, const std::string& task_id,
                                               ExitHandler exited, OomHandler oom) = 0;
  virtual void unwatchTask(const std::string& id, const std::string& task_id) = 0;
  // Resource usage of the sandbox (CRI stats come with the stats collector).
  [[nodiscard]] virtual absl::StatusOr<std::map<std::string, uint64_t>> metrics(
      const std::string& id) = 0;
};

// Controllers by name. Thread-safe.
class ControllerRegistry {
 public:
  void add(const std::string& name, std::unique_ptr<Controller> controller);
  // InvalidArgument naming the controller when none is registered under `name`.
  [[nodiscard]] absl::StatusOr<Controller*> get(const std::string& name) const;

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<Controller>> controllers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace berth::sandbox
