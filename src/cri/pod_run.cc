// RunPodSandbox: reserve the name and persist the pod, pin its network namespace, then let
// its controller create and start it; every step is undone if a later one fails. The record
// names what a step acquires before the step runs (the netns path, and with it the CNI
// attachment), so that after a crash at any instant Stop and Remove find and release it.
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/crash_point.h"
#include "common/logging.h"
#include "common/random_id.h"
#include "common/undo.h"
#include "cri/pod_handlers.h"
#include "network/netns.h"

namespace berth::cri {

absl::Status PodHandlers::run(const v1::RunPodSandboxRequest& req,
                              v1::RunPodSandboxResponse* resp) {
  if (!req.has_config()) return absl::InvalidArgumentError("RunPodSandbox: config is required");
  const std::string handler =
      req.runtime_handler().empty() ? options_.default_handler : req.runtime_handler();
  auto sandboxer = options_.sandboxers.find(handler);
  if (sandboxer == options_.sandboxers.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("runtime handler \"", req.runtime_handler(), "\" is not configured"));
  }
  BERTH_ASSIGN_OR_RETURN(sandbox::SandboxConfig config, toSandboxConfig(req.config(), handler));
  BERTH_ASSIGN_OR_RETURN(sandbox::Controller * controller, controllers_.get(sandboxer->second));

  store::SandboxRecord record;
  record.id = newObjectId();
  record.name = podSandboxName(req.config().metadata());
  record.metadata = {.name = config.name, .uid = config.uid, .ns = config.ns, .attempt = config.attempt};
  record.state = store::SandboxState::kCreated;
  record.runtime_handler = req.runtime_handler();
  record.sandboxer = sandboxer->second;
  record.created_at_ns = absl::ToUnixNanos(absl::Now());
  record.labels = config.labels;
  record.annotations = config.annotations;
  record.config_bytes = req.config().SerializeAsString();
  // Intent: the namespace (and the CNI attachment in it) this pod is about to get.
  if (config.network == sandbox::NamespaceMode::kPod) {
    record.netns_path = options_.netns_dir + "/" + record.id;
  }
  // Like containerd, berth neither lists a pod nor gives it a status until RunPodSandbox has
  // made it: a relist must not see a pod being made as NOTREADY, which kubelet takes for a pod
  // that died. Its controller ends the Creating when it records the pod ready. One whose
  // creation failed is listed afterwards, so that kubelet removes it; one cut off by a crash is
  // stopped by recovery (which ends the Creating).
  record.pending = store::Pending::kCreating;
  const std::string id = record.id;

  if (absl::Status st = store_.createSandbox(record); !st.ok()) {
    if (absl::IsAlreadyExists(st)) {
      return absl::AlreadyExistsError(absl::StrCat("pod sandbox name \"", record.name,
                                                   "\" is already in use: ", st.message()));
    }
    return st;
  }
  crashPoint("pod.run.after_record");
  Undo undo;
  bool keep_record = false;  // set when an undo fails: the pod stays, in state Unknown
  undo.arm("pod sandbox record", [&]() -> absl::Status {
    if (keep_record) {
      return store_
          .updateSandbox(id, [](store::SandboxRecord& r) {
            r.state = store::SandboxState::kUnknown;
            r.pending = store::Pending::kNone;  // listed, for kubelet to remove
            return absl::OkStatus();
          })
          .status();
    }
    return store_.deleteSandbox(id);
  });

  sandbox::CreateOptions opts{.config = config, .runtime_handler = req.runtime_handler()};
  if (config.network == sandbox::NamespaceMode::kPod) {
    opts.netns_path = record.netns_path;
    if (absl::Status st = network::createNetns(opts.netns_path); !st.ok()) {
      (void)undo.run();
      return annotate(st, absl::StrCat("pod sandbox ", id, ": create network namespace"));
    }
    undo.arm("network namespace", [&]() {
      absl::Status st = network::removeNetns(opts.netns_path);
      keep_record = keep_record || !st.ok();
      return st;
    });
    crashPoint("pod.run.after_netns");
    if (options_.cni == nullptr) {
      (void)undo.run();
      return absl::FailedPreconditionError(
          absl::StrCat("pod sandbox ", id, ": no pod network is configured"));
    }
    // The network first, as containerd does: the pause joins a namespace that is ready.
    network::CniAttachment attachment = cniAttachment(id, opts.netns_path, config);
    auto result = options_.cni->add(attachment);
    if (!result.ok()) {
      (void)undo.run();
      return annotate(result.status(), absl::StrCat("pod sandbox ", id, ": set up pod network"));
    }
    crashPoint("pod.run.after_cni_add");
    undo.arm("pod network", [&, attachment, result]() {
      absl::Status st = options_.cni->del(attachment, *result);
      keep_record = keep_record || !st.ok();
      return st;
    });
    auto stored = store_.updateSandbox(id, [&](store::SandboxRecord& r) {
      r.cni_result_json = result->dump();
      r.ips = network::resultIps(*result);
      return absl::OkStatus();
    });
    if (!stored.ok()) {
      (void)undo.run();
      return stored.status();
    }
    crashPoint("pod.run.after_cni_record");
  }
  undo.arm("sandbox", [&]() {
    absl::Status st = controller->shutdown(id);
    keep_record = keep_record || !st.ok();
    return st;
  });
  absl::Status st = controller->create(id, opts);
  if (st.ok()) st = controller->start(id).status();
  if (!st.ok()) {
    if (absl::Status u = undo.run(); !u.ok()) {
      logging::get("cri")->error("RunPodSandbox {}: {}; pod kept in state UNKNOWN", id, u.message());
    }
    return annotate(st, absl::StrCat("run pod sandbox ", id));
  }
  undo.disarm();
  crashPoint("pod.run.before_reply");
  publish(id, v1::CONTAINER_CREATED_EVENT);
  publish(id, v1::CONTAINER_STARTED_EVENT);
  resp->set_pod_sandbox_id(id);
  return absl::OkStatus();
}

}  // namespace berth::cri
