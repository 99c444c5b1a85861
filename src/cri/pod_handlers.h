// Pod sandbox RPC handlers: validation, name reservation, network namespace, undo, and the
// CRI view of pods. The sandbox itself is run by the controller its runtime handler names.
#pragma once

#include <grpcpp/support/sync_stream.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/flights.h"
#include "common/status.h"
#include "cri/event_hub.h"
#include "cri/ready_answers.h"
#include "events/backoff_monitor.h"
#include "network/cni.h"
#include "runtime/v1/api.h"
#include "sandbox/controller.h"
#include "sandbox/podsandbox.h"
#include "store/store.h"

namespace berth::cri {

namespace v1 = ::runtime::v1;

class ContainerHandlers;

struct PodHandlerOptions {
  std::map<std::string, std::string> sandboxers;  // runtime handler → controller name
  std::string default_handler;
  std::string netns_dir;  // where POD network namespaces are pinned
  std::string userns_dir;  // where pods' own user namespaces are pinned
  // Why a runtime handler cannot give pods user namespaces of their own; handlers that can
  // are absent.
  std::map<std::string, std::string> no_user_namespaces;
  network::CniManager* cni = nullptr;  // pod networking for POD network namespaces
  EventHub* events = nullptr;          // sandbox lifecycle events (GetContainerEvents)
};

// Thread-safe.
class PodHandlers {
 public:
  // A runtime handler added while berthd runs (SIGHUP): its controller, and why it cannot
  // give pods user namespaces (nullopt: it can).
  void addHandler(const std::string& name, const std::string& sandboxer,
                  std::optional<std::string> no_user_namespaces);
  // Status and lists are copies of `answers`. `containers` (may be null: a pod without
  // container support) stops and removes a pod's containers with it and reports their statuses
  // in PodSandboxStatus.
  PodHandlers(store::Store& store, sandbox::ControllerRegistry& controllers,
              PodHandlerOptions options, const ReadyAnswers& answers,
              ContainerHandlers* containers = nullptr)
      : store_(store),
        controllers_(controllers),
        options_(std::move(options)),
        answers_(answers),
        containers_(containers) {}

  [[nodiscard]] absl::Status run(const v1::RunPodSandboxRequest& req,
                                 v1::RunPodSandboxResponse* resp);
  [[nodiscard]] absl::Status stop(const v1::StopPodSandboxRequest& req,
                                  v1::StopPodSandboxResponse* resp);
  [[nodiscard]] absl::Status remove(const v1::RemovePodSandboxRequest& req,
                                    v1::RemovePodSandboxResponse* resp);
  [[nodiscard]] absl::Status status(const v1::PodSandboxStatusRequest& req,
                                    v1::PodSandboxStatusResponse* resp) const;
  // ListPodSandboxResponse, serialised: the made bytes of each pod `req` selects.
  [[nodiscard]] absl::Status list(const v1::ListPodSandboxRequest& req, std::string* out) const;
  [[nodiscard]] absl::Status stream(const v1::StreamPodSandboxesRequest& req,
                                    grpc::ServerWriter<v1::StreamPodSandboxesResponse>* w) const;
  [[nodiscard]] absl::Status updateResources(const v1::UpdatePodSandboxResourcesRequest& req,
                                             v1::UpdatePodSandboxResourcesResponse* resp);

  struct ReconcileOptions {
    std::string pods_dir;
    std::map<std::string, sandbox::RuntimeBinding> runtimes;  // by handler
    std::string cgroup_parent;  // berth's own, for pods that name none
    std::string cgroup_root = "/sys/fs/cgroup";
  };
  // At start-up, after the controllers and the container manager recovered and before serving:
  // tears down pod dirs, pinned network namespaces (with CNI DEL), runtime state and cgroups
  // that no pod or container record names. Returns how many it removed; failures are logged.
  size_t reconcile(const ReconcileOptions& options);
  // At start-up, after reconcile(): finishes on `monitor` (at once, retried with back-off)
  // what a crash cut off: a Stop or Remove under way, and a RunPodSandbox that never answered
  // (its pod is stopped, releasing what it holds, and listed NOTREADY for kubelet to remove).
  // Returns how many it started.
  size_t finishCutOff(events::BackoffMonitor& monitor);

 private:
  // Guards options_.sandboxers and options_.no_user_namespaces (handlers are only added).
  mutable absl::Mutex handlers_mu_;
  [[nodiscard]] absl::StatusOr<sandbox::Controller*> controllerFor(
      const store::SandboxRecord& record) const;
  [[nodiscard]] absl::Status stopSandbox(const std::string& id);
  [[nodiscard]] absl::Status stopSandboxOnce(const std::string& id);
  // Sets the record's pending operation to `to` if it is `from`; OK if the pod is gone.
  [[nodiscard]] absl::Status setPending(const std::string& id, store::Pending from,
                                        store::Pending to);
  [[nodiscard]] absl::Status removeSandbox(const std::string& id);
  // CNI DEL with the stored result, once; recorded so a retry (next Stop or Remove) only
  // happens when it failed.
  [[nodiscard]] absl::Status teardownNetwork(const store::SandboxRecord& record);
  // RunPodSandbox's CNI ADD and the write recording it (pod_run.cc).
  [[nodiscard]] absl::Status setUpNetwork(const std::string& id, const network::CniAttachment& a,
                                          std::optional<nlohmann::json>* added);
  std::vector<PodAnswerPtr> filtered(const v1::PodSandboxFilter* filter) const;
  void publish(const std::string& id, v1::ContainerEventType type) const {
    if (options_.events != nullptr) options_.events->publish(id, id, type);
  }

  store::Store& store_;
  sandbox::ControllerRegistry& controllers_;
  PodHandlerOptions options_;
  const ReadyAnswers& answers_;
  ContainerHandlers* containers_;

  // One Stop (or the stop inside Remove) and one Remove of a pod run at a time: a second call
  // joins the one in flight and gets its answer, so that CNI DEL, the controller's stop and
  // the shutdown run once. No lock is held across the work; a joiner only waits for its end.
  Flights flights_;
};

// PodSandboxConfig → berth's SandboxConfig (validated: metadata name, namespace and uid).
[[nodiscard]] absl::StatusOr<sandbox::SandboxConfig> toSandboxConfig(
    const v1::PodSandboxConfig& config, const std::string& runtime_handler);

// What CNI needs to attach the pod `id` whose namespace is pinned at `netns_path`.
network::CniAttachment cniAttachment(const std::string& id, const std::string& netns_path,
                                     const sandbox::SandboxConfig& config);

// "<name>_<namespace>_<uid>_<attempt>", the name a pod reserves.
std::string podSandboxName(const v1::PodSandboxMetadata& m);

// True when every selector pair is in `labels`.
bool matchLabels(const google::protobuf::Map<std::string, std::string>& selector,
                 const std::map<std::string, std::string>& labels);

}  // namespace berth::cri
