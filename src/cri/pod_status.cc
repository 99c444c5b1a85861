// PodSandboxStatus, ListPodSandbox, StreamPodSandboxes: answered from memory.
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/json_text.h"
#include "cri/container_handlers.h"
#include "cri/pod_handlers.h"
#include "cri/stream_batches.h"

namespace berth::cri {

absl::Status PodHandlers::status(const v1::PodSandboxStatusRequest& req,
                                 v1::PodSandboxStatusResponse* resp) const {
  if (req.pod_sandbox_id().empty()) {
    return absl::InvalidArgumentError("PodSandboxStatus: pod_sandbox_id is required");
  }
  // When the statuses were recorded: before anything is read (kubelet's cache time).
  const int64_t now_ns = absl::ToUnixNanos(absl::Now());
  BERTH_ASSIGN_OR_RETURN(std::string id, store_.resolveSandboxId(req.pod_sandbox_id()));
  PodAnswerPtr a = answers_.pod(id);
  if (a == nullptr) return absl::NotFoundError(absl::StrCat("pod sandbox \"", id, "\" not found"));
  if (a->hidden) {
    return absl::NotFoundError(absl::StrCat("pod sandbox \"", id, "\" is still being made"));
  }
  *resp->mutable_status() = a->status;
  resp->set_timestamp(now_ns);
  if (containers_ != nullptr) containers_->podContainerStatuses(id, resp->mutable_containers_statuses());
  if (req.verbose()) {
    BERTH_ASSIGN_OR_RETURN(sandbox::Controller * controller, controllerFor(*a->record));
    BERTH_ASSIGN_OR_RETURN(sandbox::ControllerStatus cs, controller->status(id, true));
    resp->mutable_info()->insert(cs.info.begin(), cs.info.end());
  }
  return absl::OkStatus();
}

std::vector<PodAnswerPtr> PodHandlers::filtered(const v1::PodSandboxFilter* f) const {
  std::vector<PodAnswerPtr> out;
  if (f != nullptr && !f->id().empty()) {
    // Exact id or unique prefix; anything else matches nothing.
    auto id = store_.resolveSandboxId(f->id());
    if (!id.ok()) return out;
    if (PodAnswerPtr a = answers_.pod(*id)) out.push_back(std::move(a));
  } else {
    out = answers_.pods();
  }
  std::erase_if(out, [&](const PodAnswerPtr& a) {
    if (a->hidden) return true;
    if (f == nullptr) return false;
    if (f->has_state() && a->listed.state() != f->state().state()) return true;
    return !matchLabels(f->label_selector(), a->record->labels);
  });
  return out;
}

absl::Status PodHandlers::list(const v1::ListPodSandboxRequest& req, std::string* out) const {
  joinListed(filtered(req.has_filter() ? &req.filter() : nullptr), out);
  return absl::OkStatus();
}

absl::Status PodHandlers::stream(const v1::StreamPodSandboxesRequest& req,
                                 grpc::ServerWriter<v1::StreamPodSandboxesResponse>* w) const {
  return writeInBatches("StreamPodSandboxes", filtered(req.has_filter() ? &req.filter() : nullptr),
                        w, [](const PodAnswerPtr& a, v1::StreamPodSandboxesResponse& batch) {
                          *batch.add_pod_sandboxes() = a->listed;
                        });
}

}  // namespace berth::cri
