// ContainerStatus, ListContainers, StreamContainers: answered from memory (seed 002).
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/json_text.h"
#include "common/status.h"
#include "cri/container_handlers.h"
#include "cri/pod_handlers.h"
#include "cri/ready_answers.h"
#include "cri/stream_batches.h"
#include "google/protobuf/util/json_util.h"

namespace berth::cri {

absl::Status ContainerHandlers::status(const v1::ContainerStatusRequest& req,
                                       v1::ContainerStatusResponse* resp) const {
  BERTH_ASSIGN_OR_RETURN(std::string id, resolve("ContainerStatus", req.container_id()));
  ContainerAnswerPtr a = answers_.container(id);
  if (a == nullptr) return absl::NotFoundError(absl::StrCat("container \"", id, "\" not found"));
  // As containerd, a container has no status until CreateContainer has made it (its record
  // exists from the start: the intent).
  if (a->hidden) {
    return absl::NotFoundError(absl::StrCat("container \"", id, "\" is still being created"));
  }
  const store::ContainerRecord* r = a->record.get();
  *resp->mutable_status() = a->status;
  withImageNames(images_.references(r->image_id), resp->mutable_status());
  if (!req.verbose()) return absl::OkStatus();
  v1::ContainerConfig config;
  (void)config.ParseFromString(r->config_bytes);
  std::string config_json;
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(config, &config_json, opts);
  nlohmann::json info = {
      {"sandboxID", r->sandbox_id},
      {"pid", r->pid},
      {"removing", r->pending == store::Pending::kRemoving},
      {"snapshotKey", r->snapshot_key},
      {"snapshotter", r->snapshotter},
      {"runtimeType", r->runtime_type},
      {"runtimeOptions", nlohmann::json::object()},
      {"config", parseJsonOr(config_json, nlohmann::json::object())},
      {"runtimeSpec", parseJsonOr(r->spec_json, nullptr)},
  };
  (*resp->mutable_info())["info"] = info.dump();
  return absl::OkStatus();
}

std::vector<ContainerAnswerPtr> ContainerHandlers::filtered(const v1::ContainerFilter* f) const {
  std::vector<ContainerAnswerPtr> out;
  std::string pod;
  if (f != nullptr && !f->pod_sandbox_id().empty()) {
    auto p = store_.resolveSandboxId(f->pod_sandbox_id());
    if (!p.ok()) return out;
    pod = *p;
  }
  if (f != nullptr && !f->id().empty()) {
    auto id = store_.resolveContainerId(f->id());
    if (!id.ok()) return out;
    if (ContainerAnswerPtr a = answers_.container(*id)) out.push_back(std::move(a));
  } else {
    out = answers_.containers(pod);
  }
  std::erase_if(out, [&](const ContainerAnswerPtr& a) {
    if (a->hidden) return true;
    if (f == nullptr) return false;
    if (!pod.empty() && a->record->sandbox_id != pod) return true;
    if (f->has_state() && a->listed.state() != f->state().state()) return true;
    return !matchLabels(f->label_selector(), a->record->labels);
  });
  return out;
}

absl::Status ContainerHandlers::list(const v1::ListContainersRequest& req, std::string* out) const {
  joinListed(filtered(req.has_filter() ? &req.filter() : nullptr), out);
  return absl::OkStatus();
}

absl::Status ContainerHandlers::stream(const v1::StreamContainersRequest& req,
                                       grpc::ServerWriter<v1::StreamContainersResponse>* w) const {
  return writeInBatches("StreamContainers", filtered(req.has_filter() ? &req.filter() : nullptr), w,
                        [](const ContainerAnswerPtr& a, v1::StreamContainersResponse& batch) {
                          *batch.add_containers() = a->listed;
                        });
}

void ContainerHandlers::podContainerStatuses(
    const std::string& sandbox_id,
    google::protobuf::RepeatedPtrField<v1::ContainerStatus>* out) const {
  for (const auto& a : answers_.containers(sandbox_id)) {
    if (a->hidden) continue;
    v1::ContainerStatus* s = out->Add();
    *s = a->status;
    withImageNames(images_.references(a->record->image_id), s);
  }
}

}  // namespace berth::cri
