// OCI runtime-spec (config.json) building for berth: containerd's default Linux spec, the pod
// sandbox (pause container) spec built from a SandboxConfig, and writing a bundle.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "oci/container_config.h"
#include "sandbox/sandbox_config.h"

namespace berth::oci {

// Annotation keys containerd's CRI sets on the pause container (and that shims and runtimes
// such as kata read).
inline constexpr char kAnnotationContainerType[] = "io.kubernetes.cri.container-type";
inline constexpr char kAnnotationSandboxId[] = "io.kubernetes.cri.sandbox-id";
inline constexpr char kAnnotationSandboxName[] = "io.kubernetes.cri.sandbox-name";
inline constexpr char kAnnotationSandboxNamespace[] = "io.kubernetes.cri.sandbox-namespace";
inline constexpr char kAnnotationSandboxUid[] = "io.kubernetes.cri.sandbox-uid";
inline constexpr char kAnnotationSandboxLogDir[] = "io.kubernetes.cri.sandbox-log-directory";
inline constexpr char kContainerTypeSandbox[] = "sandbox";

// containerd's default Linux spec: ociVersion 1.0.2-dev, process (uid/gid 0, cwd "/", PATH,
// default capabilities, noNewPrivileges), root "rootfs" read-only, mounts /proc, /dev,
// /dev/pts, /dev/shm, /dev/mqueue, /sys (ro), devices deny-all, new pid/ipc/uts/mount/network
// namespaces, containerd's masked and read-only paths.
nlohmann::json defaultSpec();

struct SandboxSpecInput {
  std::string id;
  const sandbox::SandboxConfig* config = nullptr;
  std::string rootfs;  // absolute path, mounted read-only; empty = "rootfs" in the bundle
  // For NamespaceMode::kPod network: the pinned netns (network::createNetns); empty = a new
  // namespace made by the runtime.
  std::string netns_path;
  // The pod's own user namespace (config->userns), pinned by network::createNetns; it owns
  // netns_path.
  std::string userns_path;
  // The pod's hostname (sandbox::podHostname); empty = config->hostname. Unused with host
  // network, where the host's UTS namespace is shared.
  std::string hostname;
  // Host files bind-mounted read-only into the pause container (skipped when empty).
  std::string resolv_conf, hosts, hostname_file;
  // tmpfs bound at /dev/shm for IPC POD (sandbox::mountPodShm); empty keeps the spec's own
  // /dev/shm tmpfs. For IPC NODE the host's /dev/shm is bound instead.
  std::string shm_path;
  std::vector<std::string> args = {"/pause"};
  std::string cgroup_parent_default = "/berth";
  int oom_score_adj = -998;  // clamped with clampOomScoreAdj()
  HostFacts host;            // for the pod's seccomp and AppArmor profiles
};

// The pause container's spec (see spec.cc for the rules). InvalidArgument names the offending
// field: a TARGET namespace mode, a sysctl the pod may not set, a bad cgroup parent, ids out of
// range.
[[nodiscard]] absl::StatusOr<nlohmann::json> buildSandboxSpec(const SandboxSpecInput& in);

// Joins the user namespace pinned at `path` and states its mappings (runc 1.1 wants them even
// when it joins a namespace by path, and checks ids against them).
void setUserNamespace(const sandbox::SandboxConfig::UserNamespace& userns, const std::string& path,
                      nlohmann::json& spec);

// Validates a cgroupfs-style parent (absolute, no "." or ".." components) and returns
// "<parent>/<id>" with duplicate and trailing slashes removed.
[[nodiscard]] absl::StatusOr<std::string> cgroupsPath(const std::string& parent,
                                                      const std::string& id);

// linux.cgroupsPath of a stored spec (JSON text); "" when it has none.
std::string cgroupsPathOf(const std::string& spec_json);

// Writes `bundle_dir`/config.json atomically with mode 0600, creating `bundle_dir` (0700) if
// it is missing.
[[nodiscard]] absl::Status writeBundle(const std::string& bundle_dir, const nlohmann::json& spec);

}  // namespace berth::oci
