// PodSandboxStatus, ListPodSandbox, StreamPodSandboxes: answered from memory.
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/json_text.h"
#include "cri/container_handlers.h"
#include "cri/pod_handlers.h"
#include "cri/stream_batches.h"

namespace berth::cri {
namespace {

v1::PodSandboxState toCriState(store::SandboxState s) {
  return s == store::SandboxState::kReady ? v1::SANDBOX_READY : v1::SANDBOX_NOTREADY;
}

void fillMetadata(const store::SandboxRecord& r, v1::PodSandboxMetadata* m) {
  m->set_name(r.metadata.name);
  m->set_uid(r.metadata.uid);
  m->set_namespace_(r.metadata.ns);
  m->set_attempt(r.metadata.attempt);
}

void toCriSandbox(const store::SandboxRecord& r, v1::PodSandbox* out) {
  out->set_id(r.id);
  fillMetadata(r, out->mutable_metadata());
  out->set_state(toCriState(r.state));
  out->set_created_at(r.created_at_ns);
  out->mutable_labels()->insert(r.labels.begin(), r.labels.end());
  out->mutable_annotations()->insert(r.annotations.begin(), r.annotations.end());
  out->set_runtime_handler(r.runtime_handler);
}

}  // namespace

absl::Status PodHandlers::status(const v1::PodSandboxStatusRequest& req,
                                 v1::PodSandboxStatusResponse* resp) const {
  if (req.pod_sandbox_id().empty()) {
    return absl::InvalidArgumentError("PodSandboxStatus: pod_sandbox_id is required");
  }
  // When the statuses were recorded: before anything is read (kubelet's cache time).
  const int64_t now_ns = absl::ToUnixNanos(absl::Now());
  BERTH_ASSIGN_OR_RETURN(std::string id, store_.resolveSandboxId(req.pod_sandbox_id()));
  BERTH_ASSIGN_OR_RETURN(auto r, store_.getSandbox(id));
  if (beingMade(*r)) {
    return absl::NotFoundError(absl::StrCat("pod sandbox \"", id, "\" is still being made"));
  }
  BERTH_ASSIGN_OR_RETURN(sandbox::Controller * controller, controllerFor(*r));
  BERTH_ASSIGN_OR_RETURN(sandbox::ControllerStatus cs, controller->status(id, req.verbose()));
  auto* st = resp->mutable_status();
  st->set_id(id);
  fillMetadata(*r, st->mutable_metadata());
  st->set_state(cs.ready ? v1::SANDBOX_READY : v1::SANDBOX_NOTREADY);
  st->set_created_at(r->created_at_ns);
  v1::PodSandboxConfig config;
  bool have_config = config.ParseFromString(r->config_bytes);
  // Always set, as containerd does (kubelet logs every status without it); empty for a
  // host-network pod and once the pod's network namespace is closed.
  auto* network = st->mutable_network();
  bool host_network = have_config && config.linux().security_context().namespace_options()
                                             .network() == v1::NODE;
  if (!r->ips.empty() && !host_network && !r->netns_closed) {
    network->set_ip(r->ips[0]);
    for (size_t i = 1; i < r->ips.size(); ++i) network->add_additional_ips()->set_ip(r->ips[i]);
  }
  if (have_config) {
    const auto& ns = config.linux().security_context().namespace_options();
    auto* opts = st->mutable_linux()->mutable_namespaces()->mutable_options();
    opts->set_network(ns.network());
    opts->set_pid(ns.pid());
    opts->set_ipc(ns.ipc());
    opts->set_target_id(ns.target_id());
  }
  st->mutable_labels()->insert(r->labels.begin(), r->labels.end());
  st->mutable_annotations()->insert(r->annotations.begin(), r->annotations.end());
  st->set_runtime_handler(r->runtime_handler);
  resp->set_timestamp(now_ns);
  if (containers_ != nullptr) containers_->podContainerStatuses(id, resp->mutable_containers_statuses());
  if (req.verbose()) resp->mutable_info()->insert(cs.info.begin(), cs.info.end());
  return absl::OkStatus();
}

bool PodHandlers::beingMade(const store::SandboxRecord& r) {
  return r.pending == store::Pending::kCreating;
}

std::vector<store::SandboxPtr> PodHandlers::filtered(const v1::PodSandboxFilter* f) const {
  std::vector<store::SandboxPtr> out;
  if (f != nullptr && !f->id().empty()) {
    // Exact id or unique prefix; anything else matches nothing.
    auto id = store_.resolveSandboxId(f->id());
    if (!id.ok()) return out;
    auto r = store_.getSandbox(*id);
    if (!r.ok()) return out;
    out.push_back(*r);
  } else {
    out = store_.listSandboxes();
  }
  std::vector<store::SandboxPtr> kept;
  for (auto& r : out) {
    if (beingMade(*r)) continue;
    if (f == nullptr) {
      kept.push_back(std::move(r));
      continue;
    }
    if (f->has_state() && toCriState(r->state) != f->state().state()) continue;
    if (!matchLabels(f->label_selector(), r->labels)) continue;
    kept.push_back(std::move(r));
  }
  return kept;
}

absl::Status PodHandlers::list(const v1::ListPodSandboxRequest& req,
                               v1::ListPodSandboxResponse* resp) const {
  for (const auto& r : filtered(req.has_filter() ? &req.filter() : nullptr)) {
    toCriSandbox(*r, resp->add_items());
  }
  return absl::OkStatus();
}

absl::Status PodHandlers::stream(const v1::StreamPodSandboxesRequest& req,
                                 grpc::ServerWriter<v1::StreamPodSandboxesResponse>* w) const {
  return writeInBatches("StreamPodSandboxes", filtered(req.has_filter() ? &req.filter() : nullptr),
                        w, [](const store::SandboxPtr& r, v1::StreamPodSandboxesResponse& batch) {
                          toCriSandbox(*r, batch.add_pod_sandboxes());
                        });
}

}  // namespace berth::cri
