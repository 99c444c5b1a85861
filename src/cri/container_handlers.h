// Container RPC handlers: validation and CRI conversion around container::ContainerManager;
// status and lists are answered from the store's memory.
#pragma once

#include <grpcpp/support/sync_stream.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "container/container_manager.h"
#include "cri/ready_answers.h"
#include "image/image_manager.h"
#include "oci/container_config.h"
#include "runtime/v1/api.h"
#include "store/store.h"

namespace berth::cri {

namespace v1 = ::runtime::v1;

// Thread-safe.
class ContainerHandlers {
 public:
  // Status and lists are copies of `answers`.
  ContainerHandlers(store::Store& store, image::ImageManager& images,
                    container::ContainerManager& containers, const ReadyAnswers& answers)
      : store_(store), images_(images), containers_(containers), answers_(answers) {}

  [[nodiscard]] absl::Status create(const v1::CreateContainerRequest& req,
                                    v1::CreateContainerResponse* resp);
  [[nodiscard]] absl::Status start(const v1::StartContainerRequest& req,
                                   v1::StartContainerResponse* resp);
  [[nodiscard]] absl::Status stop(const v1::StopContainerRequest& req,
                                  v1::StopContainerResponse* resp);
  [[nodiscard]] absl::Status remove(const v1::RemoveContainerRequest& req,
                                    v1::RemoveContainerResponse* resp);
  [[nodiscard]] absl::Status status(const v1::ContainerStatusRequest& req,
                                    v1::ContainerStatusResponse* resp) const;
  // ListContainersResponse, serialised: the made bytes of each container `req` selects.
  [[nodiscard]] absl::Status list(const v1::ListContainersRequest& req, std::string* out) const;
  [[nodiscard]] absl::Status stream(const v1::StreamContainersRequest& req,
                                    grpc::ServerWriter<v1::StreamContainersResponse>* w) const;
  [[nodiscard]] absl::Status updateResources(const v1::UpdateContainerResourcesRequest& req,
                                             v1::UpdateContainerResourcesResponse* resp);
  [[nodiscard]] absl::Status checkpoint(const v1::CheckpointContainerRequest& req,
                                        v1::CheckpointContainerResponse* resp);
  [[nodiscard]] absl::Status reopenLog(const v1::ReopenContainerLogRequest& req,
                                       v1::ReopenContainerLogResponse* resp);
  [[nodiscard]] absl::Status execSync(const v1::ExecSyncRequest& req, v1::ExecSyncResponse* resp);

  // The statuses of a pod's containers (PodSandboxStatus.containers_statuses).
  void podContainerStatuses(const std::string& sandbox_id,
                            google::protobuf::RepeatedPtrField<v1::ContainerStatus>* out) const;
  // Stops every container of the pod at once (StopPodSandbox), or removes them all.
  [[nodiscard]] absl::Status stopAll(const std::string& sandbox_id);
  [[nodiscard]] absl::Status removeAll(const std::string& sandbox_id);

 private:
  // The full id for an id or unique prefix; InvalidArgument when `id` is empty.
  [[nodiscard]] absl::StatusOr<std::string> resolve(const std::string& rpc,
                                                    const std::string& id) const;
  std::vector<ContainerAnswerPtr> filtered(const v1::ContainerFilter* filter) const;

  store::Store& store_;
  image::ImageManager& images_;
  container::ContainerManager& containers_;
  const ReadyAnswers& answers_;
};

// ContainerConfig → berth's plain config. InvalidArgument names the field for a missing name
// or image and for features berth does not support (id mappings, a user namespace, ambient
// capabilities), and for an image volume with a host path or that is not read-only.
[[nodiscard]] absl::StatusOr<oci::ContainerConfig> toContainerConfig(const v1::ContainerConfig& c);

// A seccomp or AppArmor profile: the CRI SecurityProfile when given, else the deprecated string
// form in `legacy` ("runtime/default", "docker/default", "unconfined", "localhost/<ref>"; "" =
// unset), which InvalidArgument names by `legacy_field`.
[[nodiscard]] absl::StatusOr<std::optional<oci::SecurityProfile>> profileOf(
    bool has_profile, const v1::SecurityProfile& profile, const std::string& legacy,
    const char* legacy_field);

// SELinux options are not applied (berth has no SELinux support, and containerd and CRI-O
// ignore them too on hosts without SELinux): logged once when a request sets any.
void noteSelinuxOptions(const v1::SELinuxOption& o);

// CRI IDMappings → berth's, checked (validateIdMappings) with `what` naming them.
[[nodiscard]] absl::StatusOr<IdMappings> toIdMappings(
    const google::protobuf::RepeatedPtrField<v1::IDMapping>& maps, std::string_view what);

// The user namespace a pod or container asks for: nullopt for the host's (NODE, or no
// options), the mappings for POD (a pod's own); InvalidArgument for anything else.
[[nodiscard]] absl::StatusOr<std::optional<sandbox::SandboxConfig::UserNamespace>> toUserNamespace(
    const v1::NamespaceOption& ns, const std::string& who);
oci::ContainerResources toResources(const v1::LinuxContainerResources& r);

// A CRI signal as the runtime names it: "SIGTERM", and "SIGRTMIN+3" for SIGRTMINPLUS3.
std::string signalName(v1::Signal signal);
// The CRI signal of a runtime's signal ("SIGUSR1", "USR1", "10", "SIGRTMIN+3");
// RUNTIME_DEFAULT when it names none.
v1::Signal criSignal(const std::string& name);

// "<name>_<pod name>_<namespace>_<uid>_<attempt>", the name a container reserves.
std::string containerName(const v1::ContainerMetadata& m, const store::SandboxRecord& pod);

// The log file: the pod's log directory joined with the container's relative log path; ""
// when the container has none. InvalidArgument for an absolute path or one leaving the
// directory, or a log path without a log directory.
[[nodiscard]] absl::StatusOr<std::string> containerLogPath(const std::string& log_directory,
                                                           const std::string& log_path);

}  // namespace berth::cri
