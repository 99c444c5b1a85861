// StopPodSandbox and RemovePodSandbox: both idempotent, both recorded as the pod's pending
// operation before they act, and finished by recovery when a crash cuts them off.
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "common/crash_point.h"
#include "common/json_text.h"
#include "common/logging.h"
#include "cri/container_handlers.h"
#include "cri/pod_handlers.h"
#include "network/netns.h"
#include "nlohmann/json.hpp"

namespace berth::cri {

absl::StatusOr<sandbox::Controller*> PodHandlers::controllerFor(
    const store::SandboxRecord& record) const {
  return controllers_.get(record.sandboxer.empty() ? "podsandbox" : record.sandboxer);
}

absl::Status PodHandlers::teardownNetwork(const store::SandboxRecord& record) {
  if (record.netns_path.empty() || record.network_torn_down) return absl::OkStatus();
  if (options_.cni == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("pod sandbox ", record.id, ": no pod network is configured to tear it down"));
  }
  v1::PodSandboxConfig config;
  (void)config.ParseFromString(record.config_bytes);
  BERTH_ASSIGN_OR_RETURN(sandbox::SandboxConfig c, toSandboxConfig(config, record.runtime_handler));
  // Also when the namespace is gone already: DEL releases IP leases and port mappings. A path
  // that is no namespace any more (a crash between pinning it and using it, or between
  // unmounting and unlinking it) is not passed on, as containerd does: the plugins then release
  // what they keep outside it, and the kernel removed what was inside.
  nlohmann::json result = parseJsonOr(record.cni_result_json, nullptr);
  const std::string netns = network::netnsClosed(record.netns_path) ? "" : record.netns_path;
  BERTH_RETURN_IF_ERROR(
      annotate(options_.cni->del(cniAttachment(record.id, netns, c), result),
               absl::StrCat("pod sandbox ", record.id, ": tear down pod network")));
  return store_
      .updateSandbox(record.id,
                     [](store::SandboxRecord& r) {
                       r.network_torn_down = true;
                       return absl::OkStatus();
                     })
      .status();
}

absl::Status PodHandlers::stopSandbox(const std::string& id) {
  return flights_.run("stop/" + id, [this, &id] { return stopSandboxOnce(id); });
}

absl::Status PodHandlers::setPending(const std::string& id, store::Pending from,
                                     store::Pending to) {
  auto st = store_.updateSandbox(id, [&](store::SandboxRecord& r) {
    if (r.pending == from) r.pending = to;
    return absl::OkStatus();
  });
  return absl::IsNotFound(st.status()) ? absl::OkStatus() : st.status();
}

absl::Status PodHandlers::stopSandboxOnce(const std::string& id) {
  // The intent first, so that recovery finishes a stop a crash cut off. Inside a removal the
  // pending operation is the removal's.
  // A creation that a crash cut off is undone by this stop; its pod, listed from now on, is
  // not READY even if its pause started: RunPodSandbox never said it was made.
  auto intent = store_.updateSandbox(id, [](store::SandboxRecord& r) {
    if (r.pending == store::Pending::kCreating && r.state == store::SandboxState::kReady) {
      r.state = store::SandboxState::kNotReady;
    }
    if (r.pending == store::Pending::kNone || r.pending == store::Pending::kCreating) {
      r.pending = store::Pending::kStopping;
    }
    return absl::OkStatus();
  });
  BERTH_RETURN_IF_ERROR(intent.status());
  absl::Cleanup end = [&] {
    if (absl::Status st = setPending(id, store::Pending::kStopping, store::Pending::kNone);
        !st.ok()) {
      logging::get("cri")->error("pod sandbox {}: end stop: {}", id, st.message());
    }
  };
  crashPoint("pod.stop.after_intent");
  BERTH_ASSIGN_OR_RETURN(auto record, store_.getSandbox(id));
  BERTH_ASSIGN_OR_RETURN(sandbox::Controller * controller, controllerFor(*record));
  // CNI DEL (mostly the kernel deleting the veth) runs while the processes are stopped: it
  // needs none of them gone, kubelet has stopped the containers before it stops the pod, and
  // the namespace stays pinned until both are done.
  absl::Status network_st;
  std::thread network;
  if (!record->netns_path.empty() && !record->network_torn_down) {
    network = std::thread([&] {
      network_st = teardownNetwork(*record);
      if (network_st.ok()) crashPoint("pod.stop.after_cni_del");
    });
  }
  absl::Status st = [&]() -> absl::Status {
    // The pod's containers first, at once (as containerd: no grace period left for them).
    if (containers_ != nullptr) {
      BERTH_RETURN_IF_ERROR(
          annotate(containers_->stopAll(id), absl::StrCat("stop pod sandbox ", id)));
    }
    crashPoint("pod.stop.after_containers");
    BERTH_RETURN_IF_ERROR(controller->stop(id, std::nullopt));
    crashPoint("pod.stop.after_sandbox");
    return absl::OkStatus();
  }();
  if (network.joinable()) network.join();
  BERTH_RETURN_IF_ERROR(st);
  BERTH_RETURN_IF_ERROR(network_st);
  if (!record->netns_path.empty()) {
    BERTH_RETURN_IF_ERROR(annotate(network::removeNetns(record->netns_path),
                                   absl::StrCat("pod sandbox ", id, ": remove network namespace")));
    if (!record->userns_path.empty()) {
      BERTH_RETURN_IF_ERROR(annotate(network::removeNetns(record->userns_path),
                                     absl::StrCat("pod sandbox ", id, ": remove user namespace")));
    }
    crashPoint("pod.stop.after_netns");
    // Shown as netNamespaceClosed in verbose status.
    bool was_ready = false;
    auto st = store_.updateSandbox(id, [&](store::SandboxRecord& r) {
      r.netns_closed = true;
      if (r.pending == store::Pending::kStopping) r.pending = store::Pending::kNone;
      was_ready = r.state == store::SandboxState::kReady;
      if (was_ready) r.state = store::SandboxState::kNotReady;
      return absl::OkStatus();
    });
    if (!st.ok()) return st.status();
    // Normally the controller reports the pause's exit (the pod's STOPPED event); here the pod
    // was still READY without a pause to exit, so the event is ours.
    if (was_ready) publish(id, v1::CONTAINER_STOPPED_EVENT);
  }
  return absl::OkStatus();
}

absl::Status PodHandlers::stop(const v1::StopPodSandboxRequest& req,
                               v1::StopPodSandboxResponse* /*resp*/) {
  if (req.pod_sandbox_id().empty()) {
    return absl::InvalidArgumentError("StopPodSandbox: pod_sandbox_id is required");
  }
  BERTH_ASSIGN_OR_RETURN(std::string id, store_.resolveSandboxId(req.pod_sandbox_id()));
  // The pod's STOPPED event comes from whoever records it NOTREADY: the controller when the
  // pause exits, or stopSandbox.
  return stopSandbox(id);
}

absl::Status PodHandlers::remove(const v1::RemovePodSandboxRequest& req,
                                 v1::RemovePodSandboxResponse* /*resp*/) {
  if (req.pod_sandbox_id().empty()) {
    return absl::InvalidArgumentError("RemovePodSandbox: pod_sandbox_id is required");
  }
  auto id = store_.resolveSandboxId(req.pod_sandbox_id());
  if (absl::IsNotFound(id.status())) return absl::OkStatus();  // already gone
  if (!id.ok()) return id.status();
  return flights_.run("remove/" + *id, [this, &id] { return removeSandbox(*id); });
}

absl::Status PodHandlers::removeSandbox(const std::string& id) {
  // The intent first (taking over from a stop), so that recovery finishes a removal a crash cut
  // off. A failed step leaves the pod as it is, for kubelet's next RemovePodSandbox.
  auto intent = store_.updateSandbox(id, [](store::SandboxRecord& r) {
    r.pending = store::Pending::kRemoving;
    return absl::OkStatus();
  });
  if (absl::IsNotFound(intent.status())) return absl::OkStatus();  // removed meanwhile
  BERTH_RETURN_IF_ERROR(intent.status());
  bool removed = false;
  absl::Cleanup end = [&] {
    if (removed) return;
    if (absl::Status st = setPending(id, store::Pending::kRemoving, store::Pending::kNone);
        !st.ok()) {
      logging::get("cri")->error("pod sandbox {}: end removal: {}", id, st.message());
    }
  };
  crashPoint("pod.remove.after_intent");
  BERTH_RETURN_IF_ERROR(stopSandbox(id));
  crashPoint("pod.remove.after_stop");
  if (containers_ != nullptr) {
    BERTH_RETURN_IF_ERROR(
        annotate(containers_->removeAll(id), absl::StrCat("remove pod sandbox ", id)));
  }
  crashPoint("pod.remove.after_containers");
  BERTH_ASSIGN_OR_RETURN(auto record, store_.getSandbox(id));
  BERTH_ASSIGN_OR_RETURN(sandbox::Controller * controller, controllerFor(*record));
  BERTH_RETURN_IF_ERROR(controller->shutdown(id));
  crashPoint("pod.remove.after_shutdown");
  // The DELETED event carries the pod's last status, taken while it still has one.
  v1::PodSandboxStatusResponse last;
  bool have_last = false;
  if (options_.events != nullptr && options_.events->listening()) {
    v1::PodSandboxStatusRequest sreq;
    sreq.set_pod_sandbox_id(id);
    have_last = status(sreq, &last).ok();
  }
  BERTH_RETURN_IF_ERROR(store_.deleteSandbox(id));
  removed = true;
  crashPoint("pod.remove.after_record");
  if (have_last) {
    options_.events->publish(id, v1::CONTAINER_DELETED_EVENT, last);
  } else {
    publish(id, v1::CONTAINER_DELETED_EVENT);
  }
  return absl::OkStatus();
}

absl::Status PodHandlers::updateResources(const v1::UpdatePodSandboxResourcesRequest& req,
                                          v1::UpdatePodSandboxResourcesResponse* /*resp*/) {
  if (req.pod_sandbox_id().empty()) {
    return absl::InvalidArgumentError("UpdatePodSandboxResources: pod_sandbox_id is required");
  }
  BERTH_ASSIGN_OR_RETURN(std::string id, store_.resolveSandboxId(req.pod_sandbox_id()));
  BERTH_ASSIGN_OR_RETURN(auto record, store_.getSandbox(id));
  BERTH_ASSIGN_OR_RETURN(sandbox::Controller * controller, controllerFor(*record));
  v1::PodSandboxConfig config;
  config.ParseFromString(record->config_bytes);
  BERTH_ASSIGN_OR_RETURN(sandbox::SandboxConfig c, toSandboxConfig(config, record->runtime_handler));
  return controller->update(id, c);
}

}  // namespace berth::cri
