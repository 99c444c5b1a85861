// ContainerStatus, ListContainers, StreamContainers: answered from memory (seed 002).
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/json_text.h"
#include "common/status.h"
#include "cri/container_handlers.h"
#include "cri/pod_handlers.h"
#include "cri/stream_batches.h"
#include "google/protobuf/util/json_util.h"

namespace berth::cri {
namespace {

// As containerd, a container is neither listed nor given a status until CreateContainer has
// made it (its record exists from the start: the intent).
bool beingMade(const store::ContainerRecord& r) { return r.pending == store::Pending::kCreating; }

v1::ContainerState toCriState(store::ContainerState s) {
  switch (s) {
    case store::ContainerState::kCreated:
      return v1::CONTAINER_CREATED;
    case store::ContainerState::kRunning:
      return v1::CONTAINER_RUNNING;
    case store::ContainerState::kExited:
      return v1::CONTAINER_EXITED;
    case store::ContainerState::kUnknown:
      return v1::CONTAINER_UNKNOWN;
  }
  return v1::CONTAINER_UNKNOWN;
}

void toCriContainer(const store::ContainerRecord& r, v1::Container* out) {
  out->set_id(r.id);
  out->set_pod_sandbox_id(r.sandbox_id);
  out->mutable_metadata()->set_name(r.metadata.name);
  out->mutable_metadata()->set_attempt(r.metadata.attempt);
  out->mutable_image()->set_image(r.image_ref);
  out->set_image_ref(r.image_id);
  out->set_image_id(r.image_id);
  out->set_state(toCriState(r.state));
  out->set_created_at(r.created_at_ns);
  out->mutable_labels()->insert(r.labels.begin(), r.labels.end());
  out->mutable_annotations()->insert(r.annotations.begin(), r.annotations.end());
}

}  // namespace

void ContainerHandlers::toCriStatus(const store::ContainerRecord& r,
                                    v1::ContainerStatus* out) const {
  v1::ContainerConfig config;
  (void)config.ParseFromString(r.config_bytes);
  out->set_id(r.id);
  out->mutable_metadata()->set_name(r.metadata.name);
  out->mutable_metadata()->set_attempt(r.metadata.attempt);
  const v1::ContainerState state = toCriState(r.state);
  out->set_state(state);
  // CRI does not allow a zero created_at; the record always has one.
  out->set_created_at(r.created_at_ns);
  if (state == v1::CONTAINER_RUNNING || state == v1::CONTAINER_EXITED ||
      state == v1::CONTAINER_UNKNOWN) {
    out->set_started_at(r.started_at_ns);
  }
  if (state == v1::CONTAINER_EXITED || state == v1::CONTAINER_UNKNOWN) {
    out->set_finished_at(r.finished_at_ns);
  }
  out->set_exit_code(r.exit_code);
  // The image by tag and by repo digest when the image still has them (seed 002).
  std::string image = r.image_ref;
  std::string image_ref = r.image_id;
  bool have_tag = false, have_digest = false;
  for (const auto& ref : images_.references(r.image_id)) {
    bool digest = ref.find('@') != std::string::npos;
    if (digest && !have_digest) {
      image_ref = ref;
      have_digest = true;
    } else if (!digest && !have_tag) {
      image = ref;
      have_tag = true;
    }
  }
  // The config's image spec (its runtime handler and annotations too), named by tag.
  *out->mutable_image() = config.image();
  out->mutable_image()->set_image(image);
  out->set_image_ref(image_ref);
  out->set_image_id(r.image_id);
  std::string reason = r.reason;
  if (state == v1::CONTAINER_EXITED && reason.empty()) {
    reason = r.exit_code == 0 ? container::kReasonCompleted : container::kReasonError;
  }
  out->set_reason(reason);
  out->set_message(r.message);
  out->mutable_labels()->insert(r.labels.begin(), r.labels.end());
  out->mutable_annotations()->insert(r.annotations.begin(), r.annotations.end());
  *out->mutable_mounts() = config.mounts();
  out->set_log_path(r.log_path);
  if (config.linux().has_resources()) {
    *out->mutable_resources()->mutable_linux() = config.linux().resources();
  }
  // The user the process runs as, from the spec.
  nlohmann::json spec = parseJsonObject(r.spec_json);
  if (auto u = spec.find("process"); u != spec.end() && u->contains("user")) {
    const nlohmann::json& user = (*u)["user"];
    auto* lu = out->mutable_user()->mutable_linux();
    lu->set_uid(user.value("uid", int64_t{0}));
    lu->set_gid(user.value("gid", int64_t{0}));
    if (auto g = user.find("additionalGids"); g != user.end() && g->is_array()) {
      for (const auto& gid : *g) lu->add_supplemental_groups(gid.get<int64_t>());
    }
  }
  // The signal a stop sends: the config's, else the image's, else SIGTERM (stored at create).
  out->set_stop_signal(criSignal(r.stop_signal.empty() ? "SIGTERM" : r.stop_signal));
}

absl::Status ContainerHandlers::status(const v1::ContainerStatusRequest& req,
                                       v1::ContainerStatusResponse* resp) const {
  BERTH_ASSIGN_OR_RETURN(std::string id, resolve("ContainerStatus", req.container_id()));
  BERTH_ASSIGN_OR_RETURN(auto r, store_.getContainer(id));
  if (beingMade(*r)) {
    return absl::NotFoundError(absl::StrCat("container \"", id, "\" is still being created"));
  }
  toCriStatus(*r, resp->mutable_status());
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

std::vector<store::ContainerPtr> ContainerHandlers::filtered(const v1::ContainerFilter* f) const {
  std::vector<store::ContainerPtr> out;
  if (f != nullptr && !f->id().empty()) {
    auto id = store_.resolveContainerId(f->id());
    if (!id.ok()) return out;
    auto r = store_.getContainer(*id);
    if (!r.ok()) return out;
    out.push_back(*r);
  } else if (f != nullptr && !f->pod_sandbox_id().empty()) {
    auto pod = store_.resolveSandboxId(f->pod_sandbox_id());
    if (!pod.ok()) return out;
    out = store_.listContainers(*pod);
  } else {
    out = store_.listContainers();
  }
  if (f == nullptr) {
    std::erase_if(out, [](const store::ContainerPtr& r) { return beingMade(*r); });
    return out;
  }
  std::string pod;
  if (!f->pod_sandbox_id().empty()) {
    auto p = store_.resolveSandboxId(f->pod_sandbox_id());
    if (!p.ok()) return {};
    pod = *p;
  }
  std::vector<store::ContainerPtr> kept;
  for (auto& r : out) {
    if (beingMade(*r)) continue;
    if (!pod.empty() && r->sandbox_id != pod) continue;
    if (f->has_state() && toCriState(r->state) != f->state().state()) continue;
    if (!matchLabels(f->label_selector(), r->labels)) continue;
    kept.push_back(std::move(r));
  }
  return kept;
}

absl::Status ContainerHandlers::list(const v1::ListContainersRequest& req,
                                     v1::ListContainersResponse* resp) const {
  for (const auto& r : filtered(req.has_filter() ? &req.filter() : nullptr)) {
    toCriContainer(*r, resp->add_containers());
  }
  return absl::OkStatus();
}

absl::Status ContainerHandlers::stream(const v1::StreamContainersRequest& req,
                                       grpc::ServerWriter<v1::StreamContainersResponse>* w) const {
  return writeInBatches("StreamContainers", filtered(req.has_filter() ? &req.filter() : nullptr),
                        w, [](const store::ContainerPtr& r, v1::StreamContainersResponse& batch) {
                          toCriContainer(*r, batch.add_containers());
                        });
}

void ContainerHandlers::podContainerStatuses(
    const std::string& sandbox_id,
    google::protobuf::RepeatedPtrField<v1::ContainerStatus>* out) const {
  for (const auto& r : store_.listContainers(sandbox_id)) {
    if (!beingMade(*r)) toCriStatus(*r, out->Add());
  }
}

}  // namespace berth::cri
