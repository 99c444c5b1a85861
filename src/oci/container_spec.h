// The OCI runtime spec (config.json) of an application container, built from its CRI config
// (as plain structs, container_config.h) and its image config the way containerd does.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "oci/container_config.h"

namespace berth::oci {

inline constexpr char kAnnotationContainerName[] = "io.kubernetes.cri.container-name";
inline constexpr char kAnnotationImageName[] = "io.kubernetes.cri.image-name";
inline constexpr char kContainerTypeContainer[] = "container";

// The container's spec:
//  - process: Docker's command rules (command replaces the image Entrypoint and drops its Cmd,
//    args replace Cmd), env = PATH default, HOSTNAME, image Env, config envs (later wins),
//    cwd = working_dir / image WorkingDir / "/", terminal = tty, user from resolveUser();
//  - mounts: setContainerMounts(); devices: addContainerDevices();
//  - security: privileged (needs a privileged pod) = all capabilities, nothing masked,
//    host devices, rw /sys; else default capabilities with add/drop ("ALL" as containerd),
//    masked/readonly paths (given, or containerd's defaults); noNewPrivileges; seccomp
//    RuntimeDefault / Localhost / unconfined; AppArmor;
//  - linux.resources (cpu, memory, hugepages, unified), oomScoreAdj clamped, cgroupsPath
//    <pod cgroup parent>/<id>;
//  - namespaces joined from the pause process per the container's NamespaceOption;
//  - CRI annotations over the config's.
// InvalidArgument names the container and the offending field; NotFound an unknown user or
// group or a missing seccomp profile.
[[nodiscard]] absl::StatusOr<nlohmann::json> buildContainerSpec(const ContainerSpecInput& in);

// InvalidArgument unless the container's user namespace options and its mounts' id mappings
// fit its pod: a pod's own user namespace is shared by all its containers (POD with the pod's
// mappings, or nothing said), and a mount's mappings are the pod's (kubelet sends them for
// every volume) in such a pod only. Callers check before they make anything for the
// container; buildContainerSpec() takes the result as given.
[[nodiscard]] absl::Status checkUserNamespace(const ContainerConfig& c,
                                              const sandbox::SandboxConfig& pod);

// A seccomp or AppArmor profile as containerd applies it to a container or a pod's pause:
// privileged and unset seccomp run unconfined; RuntimeDefault seccomp is the default profile
// for the spec's bounding set; Localhost loads the file (seccomp) or names the profile
// (AppArmor, which must be enabled on the host; RuntimeDefault is skipped without it).
[[nodiscard]] absl::Status applySeccompProfile(const std::optional<SecurityProfile>& profile,
                                               bool privileged, const HostFacts& host,
                                               nlohmann::json& spec);
[[nodiscard]] absl::Status applyAppArmorProfile(const std::optional<SecurityProfile>& profile,
                                                bool privileged, const HostFacts& host,
                                                const std::string& default_profile,
                                                nlohmann::json& spec);

// linux.resources of the spec for `r` (also what `runc update` takes). InvalidArgument for a
// negative value, an oom_score_adj outside [-1000, 1000] or a bad hugepage size.
[[nodiscard]] absl::StatusOr<nlohmann::json> linuxResources(const ContainerResources& r,
                                                            const HostFacts& host);

// The host's facts for ContainerSpecInput::host (cgroup mode, swap and hugetlb controllers,
// seccomp, AppArmor). Reads /sys and /proc; cheap enough to call once at start-up.
HostFacts detectHostFacts();

// The image config's StopSignal ("SIGTERM" when unset), for the container's stop.
std::string imageStopSignal(const nlohmann::json* image_config);

// Capability names after CRI add/drop: start from `base`, then add ALL (`all`), drop ALL, add
// the named ones, drop the named ones (containerd's order). Names are normalised to "CAP_X";
// unknown names are InvalidArgument naming them.
[[nodiscard]] absl::StatusOr<std::vector<std::string>> applyCapabilityChanges(
    const std::vector<std::string>& base, const std::vector<std::string>& all,
    const std::vector<std::string>& add, const std::vector<std::string>& drop);

}  // namespace berth::oci
