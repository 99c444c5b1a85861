// What the OCI layer needs to build an application container's spec, in berth's own terms: the
// CRI ContainerConfig mirrored as plain structs (cri/ converts into them), plus the facts about
// the pod, the image and the host that the spec depends on.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "nlohmann/json.hpp"
#include "oci/rlimits.h"
#include "sandbox/sandbox_config.h"

namespace berth::oci {

// CRI MountPropagation, same numbering.
enum class MountPropagation { kPrivate = 0, kHostToContainer = 1, kBidirectional = 2 };

struct ContainerMount {
  std::string container_path;
  std::string host_path;
  bool readonly = false;
  bool selinux_relabel = false;  // ignored: SELinux is not supported (logged once)
  MountPropagation propagation = MountPropagation::kPrivate;
  // Read-only all the way down: submounts too ("rro"); needs readonly and private propagation.
  bool recursive_read_only = false;
  // An image volume: this image's root filesystem (or image_sub_path in it), read-only; the
  // container manager mounts it and sets host_path (container/image_volumes.h).
  std::string image;
  std::string image_sub_path;
  // Id mappings of an idmapped mount (kubelet gives every mount of a pod with its own user
  // namespace the pod's): files owned by host id X show as the id X maps to inside.
  IdMappings uid_mappings, gid_mappings;
};

struct ContainerDevice {
  std::string container_path;  // empty = host_path
  std::string host_path;       // a device node, or a directory of them
  std::string permissions;     // letters of "rwm"; empty = "rwm"
};

struct HugepageLimit {
  std::string page_size;  // "2MB", "1GB", "64KB"
  uint64_t limit = 0;     // bytes
};

// CRI LinuxContainerResources; zero / empty means "not set".
struct ContainerResources {
  int64_t cpu_period = 0;
  int64_t cpu_quota = 0;
  int64_t cpu_shares = 0;
  int64_t memory_limit_in_bytes = 0;
  int64_t oom_score_adj = 0;
  std::string cpuset_cpus;
  std::string cpuset_mems;
  std::vector<HugepageLimit> hugepage_limits;
  std::map<std::string, std::string> unified;
  int64_t memory_swap_limit_in_bytes = 0;
};

// CRI SecurityProfile.
using SecurityProfileType = sandbox::SecurityProfileType;
using SecurityProfile = sandbox::SecurityProfile;

// CRI LinuxContainerSecurityContext.
struct ContainerSecurityContext {
  // Names with or without "CAP_", any case; "ALL" means every capability.
  std::vector<std::string> add_capabilities;
  std::vector<std::string> drop_capabilities;
  bool privileged = false;
  // NamespaceOption.
  sandbox::NamespaceMode network = sandbox::NamespaceMode::kPod;
  sandbox::NamespaceMode pid = sandbox::NamespaceMode::kPod;
  sandbox::NamespaceMode ipc = sandbox::NamespaceMode::kPod;
  std::string target_id;  // pid kTarget: the target container (its pid is in the spec input)
  // userns_options: POD (the pod's own, with these mappings, which must be the pod's), or the
  // host's explicitly (NODE); neither given: the pod's, whichever it is.
  std::optional<sandbox::SandboxConfig::UserNamespace> userns;
  bool userns_node = false;
  std::optional<int64_t> run_as_user;
  std::string run_as_username;
  std::optional<int64_t> run_as_group;
  bool readonly_rootfs = false;
  std::vector<int64_t> supplemental_groups;
  bool strict_supplemental_groups = false;  // supplemental_groups_policy Strict
  bool no_new_privs = false;
  // Non-empty replaces containerd's defaults; empty keeps them.
  std::vector<std::string> masked_paths;
  std::vector<std::string> readonly_paths;
  // Unset = unconfined for seccomp; for AppArmor unset means RuntimeDefault when the host has
  // AppArmor (kubernetes#51746), as in containerd.
  std::optional<SecurityProfile> seccomp;
  std::optional<SecurityProfile> apparmor;
};

// CRI ContainerConfig (Linux parts).
struct ContainerConfig {
  std::string name;  // metadata
  uint32_t attempt = 0;
  std::string image;  // image reference as given
  std::vector<std::string> command;
  std::vector<std::string> args;
  std::string working_dir;
  std::vector<std::pair<std::string, std::string>> envs;
  std::vector<ContainerMount> mounts;
  std::vector<ContainerDevice> devices;
  // CDI devices ("vendor/class=name"): CDI_devices, then the cdi.k8s.io/ annotations.
  std::vector<std::string> cdi_devices;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  std::string log_path;
  bool stdin = false;
  bool stdin_once = false;
  bool tty = false;
  ContainerResources resources;
  ContainerSecurityContext security;
};

// Facts about the host that change the spec. detectHostFacts() reads them; tests set them.
struct HostFacts {
  bool cgroup_unified = false;  // pure cgroup v2: a cgroup namespace for each container
  bool swap_limit = false;      // memory+swap can be limited (v1 memsw / v2 memory.swap.max)
  bool hugetlb = true;          // the hugetlb controller exists (else limits are skipped)
  bool seccomp = true;          // the kernel supports seccomp filters
  bool apparmor = false;        // /sys/kernel/security/apparmor exists
};

// Everything buildContainerSpec() needs. Pointers are borrowed for the call.
struct ContainerSpecInput {
  std::string id;          // container id (cgroup leaf)
  std::string sandbox_id;  // pod sandbox id
  const ContainerConfig* config = nullptr;
  const sandbox::SandboxConfig* sandbox = nullptr;
  // The image's config blob (the JSON whose "config" holds Env, Entrypoint, Cmd, WorkingDir,
  // User, StopSignal); null = an image without one.
  const nlohmann::json* image_config = nullptr;
  std::string image_name;  // for the image-name annotation; empty = config->image
  std::string rootfs;      // absolute path of the mounted rootfs (its /etc/passwd, /etc/group)

  // Namespaces to join: the pause process, the pod's pinned netns (empty = the pause's), and
  // for pid kTarget the target container's pid.
  uint32_t sandbox_pid = 0;
  std::string netns_path;
  // The pod's own user namespace, pinned (sandbox->userns says so); empty: the host's.
  std::string userns_path;
  uint32_t target_pid = 0;

  // The pod's files (skipped when empty). shm_path is the pod's /dev/shm for IPC POD; with
  // IPC NODE the host's /dev/shm is bound instead.
  std::string hosts_path, resolv_conf_path, hostname_path, shm_path;
  // A host file bind-mounted read-write at termination_message_path (kubelet's
  // /dev/termination-log); skipped when the host path is empty or a CRI mount covers it.
  std::string termination_log_host_path;
  std::string termination_message_path = "/dev/termination-log";
  // The HOSTNAME environment variable; empty = the pod's hostname, else this host's name.
  std::string hostname;

  std::string cgroup_parent_default = "/berth";
  // linux.resources.pids.limit when the CRI config sets none (no "pids.max" in `unified`):
  // a fork bomb in one container cannot take every pid of the node. 0: no limit.
  int64_t default_pids_limit = 0;
  // RuntimeDefault AppArmor profile name (the daemon loads it); empty = skip RuntimeDefault.
  std::string apparmor_default_profile;
  // process.rlimits: the runtime handler's default_ulimits (none: the runtime's own).
  std::vector<Rlimit> rlimits;
  // The pod's runtime handler, and whether it can make a mount recursively read-only.
  std::string runtime_handler;
  bool recursive_read_only_supported = false;
  // containerd creates a missing host_path (0755); berth rejects it unless this is set.
  bool create_missing_host_paths = false;

  HostFacts host;
  std::string host_dev_dir = "/dev";                    // privileged: every device in it
  std::string mountinfo_path = "/proc/self/mountinfo";  // propagation checks
};

}  // namespace berth::oci
