// CreateContainer, StartContainer, StopContainer, RemoveContainer, UpdateContainerResources,
// ReopenContainerLog, ExecSync.
#include <functional>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "cri/container_handlers.h"
#include "cri/pod_handlers.h"

namespace berth::cri {

absl::StatusOr<std::string> ContainerHandlers::resolve(const std::string& rpc,
                                                       const std::string& id) const {
  if (id.empty()) return absl::InvalidArgumentError(absl::StrCat(rpc, ": container_id is required"));
  return store_.resolveContainerId(id);
}

absl::Status ContainerHandlers::create(const v1::CreateContainerRequest& req,
                                       v1::CreateContainerResponse* resp) {
  if (req.pod_sandbox_id().empty()) {
    return absl::InvalidArgumentError("CreateContainer: pod_sandbox_id is required");
  }
  if (!req.has_config()) return absl::InvalidArgumentError("CreateContainer: config is required");
  BERTH_ASSIGN_OR_RETURN(oci::ContainerConfig config, toContainerConfig(req.config()));
  BERTH_ASSIGN_OR_RETURN(std::string sandbox_id, store_.resolveSandboxId(req.pod_sandbox_id()));
  BERTH_ASSIGN_OR_RETURN(auto pod, store_.getSandbox(sandbox_id));
  // The pod's config as it was run (kubelet sends it again; the stored one is authoritative).
  v1::PodSandboxConfig pod_config;
  if (!pod_config.ParseFromString(pod->config_bytes)) {
    return absl::InternalError(absl::StrCat("pod sandbox ", sandbox_id, ": stored config is unreadable"));
  }
  BERTH_ASSIGN_OR_RETURN(sandbox::SandboxConfig sandbox_config,
                         toSandboxConfig(pod_config, pod->runtime_handler));
  container::CreateRequest creq;
  creq.sandbox_id = sandbox_id;
  creq.name = containerName(req.config().metadata(), *pod);
  BERTH_ASSIGN_OR_RETURN(creq.log_path,
                         containerLogPath(pod_config.log_directory(), req.config().log_path()));
  if (req.config().stop_signal() != v1::RUNTIME_DEFAULT) {
    creq.stop_signal = signalName(req.config().stop_signal());
  }
  creq.config = std::move(config);
  creq.sandbox_config = std::move(sandbox_config);
  creq.config_bytes = req.config().SerializeAsString();
  BERTH_ASSIGN_OR_RETURN(std::string id, containers_.create(creq));
  resp->set_container_id(id);
  return absl::OkStatus();
}

absl::Status ContainerHandlers::start(const v1::StartContainerRequest& req,
                                      v1::StartContainerResponse* /*resp*/) {
  BERTH_ASSIGN_OR_RETURN(std::string id, resolve("StartContainer", req.container_id()));
  return containers_.start(id);
}

absl::Status ContainerHandlers::stop(const v1::StopContainerRequest& req,
                                     v1::StopContainerResponse* /*resp*/) {
  BERTH_ASSIGN_OR_RETURN(std::string id, resolve("StopContainer", req.container_id()));
  return containers_.stop(id, absl::Seconds(std::max<int64_t>(req.timeout(), 0)));
}

absl::Status ContainerHandlers::remove(const v1::RemoveContainerRequest& req,
                                       v1::RemoveContainerResponse* /*resp*/) {
  auto id = resolve("RemoveContainer", req.container_id());
  if (absl::IsNotFound(id.status())) return absl::OkStatus();  // already gone
  if (!id.ok()) return id.status();
  return containers_.remove(*id);
}

absl::Status ContainerHandlers::updateResources(const v1::UpdateContainerResourcesRequest& req,
                                                v1::UpdateContainerResourcesResponse* /*resp*/) {
  BERTH_ASSIGN_OR_RETURN(std::string id, resolve("UpdateContainerResources", req.container_id()));
  if (!req.has_linux()) {
    return absl::InvalidArgumentError(
        absl::StrCat("UpdateContainerResources ", id, ": linux resources are required"));
  }
  BERTH_ASSIGN_OR_RETURN(auto rec, store_.getContainer(id));
  v1::ContainerConfig config;
  if (!config.ParseFromString(rec->config_bytes)) {
    return absl::InternalError(absl::StrCat("container ", id, ": stored config is unreadable"));
  }
  *config.mutable_linux()->mutable_resources() = req.linux();
  return containers_.updateResources(id, toResources(req.linux()), config.SerializeAsString());
}

absl::Status ContainerHandlers::checkpoint(const v1::CheckpointContainerRequest& req,
                                           v1::CheckpointContainerResponse* /*resp*/) {
  BERTH_ASSIGN_OR_RETURN(std::string id, resolve("CheckpointContainer", req.container_id()));
  if (req.location().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("CheckpointContainer ", id, ": location is required"));
  }
  return containers_.checkpoint(id, req.location(), absl::Seconds(req.timeout()));
}

absl::Status ContainerHandlers::reopenLog(const v1::ReopenContainerLogRequest& req,
                                          v1::ReopenContainerLogResponse* /*resp*/) {
  BERTH_ASSIGN_OR_RETURN(std::string id, resolve("ReopenContainerLog", req.container_id()));
  return containers_.reopenLog(id);
}

absl::Status ContainerHandlers::execSync(const v1::ExecSyncRequest& req,
                                         v1::ExecSyncResponse* resp) {
  BERTH_ASSIGN_OR_RETURN(std::string id, resolve("ExecSync", req.container_id()));
  std::vector<std::string> cmd(req.cmd().begin(), req.cmd().end());
  if (req.timeout() < 0) {
    return absl::InvalidArgumentError(absl::StrCat("ExecSync ", id, ": timeout is negative"));
  }
  BERTH_ASSIGN_OR_RETURN(shim::ExecResult r,
                         containers_.execSync(id, cmd, absl::Seconds(req.timeout())));
  resp->set_stdout(std::move(r.stdout));
  resp->set_stderr(std::move(r.stderr));
  resp->set_exit_code(r.exit_code);
  return absl::OkStatus();
}

namespace {

// Runs `fn` for each container of the pod at once, one thread each (a pod has a handful), and
// returns the first error.
absl::Status forEachAtOnce(const std::vector<store::ContainerPtr>& containers,
                           const std::function<absl::Status(const std::string&)>& fn) {
  if (containers.size() == 1) return fn(containers[0]->id);
  std::vector<absl::Status> results(containers.size());
  std::vector<std::thread> threads;
  threads.reserve(containers.size());
  for (size_t i = 0; i < containers.size(); ++i) {
    threads.emplace_back([&, i] { results[i] = fn(containers[i]->id); });
  }
  for (std::thread& t : threads) t.join();
  for (const absl::Status& st : results) {
    if (!st.ok()) return st;
  }
  return absl::OkStatus();
}

}  // namespace

// StopPodSandbox kills its containers (timeout 0, as containerd) all at once: the pod's stop
// takes as long as its slowest container, not their sum.
absl::Status ContainerHandlers::stopAll(const std::string& sandbox_id) {
  return forEachAtOnce(store_.listContainers(sandbox_id), [this](const std::string& id) {
    return containers_.stop(id, absl::ZeroDuration());
  });
}

absl::Status ContainerHandlers::removeAll(const std::string& sandbox_id) {
  return forEachAtOnce(store_.listContainers(sandbox_id),
                       [this](const std::string& id) { return containers_.remove(id); });
}

}  // namespace berth::cri
