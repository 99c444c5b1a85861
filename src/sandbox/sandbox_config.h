// What a sandbox controller needs to know about a pod, in berth's own terms (the CRI layer
// converts PodSandboxConfig into this; lower layers never see generated CRI types).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/idmap.h"

namespace berth::sandbox {

// CRI NamespaceMode, same numbering.
enum class NamespaceMode { kPod = 0, kContainer = 1, kNode = 2, kTarget = 3 };

struct PortMapping {
  std::string protocol = "tcp";  // tcp, udp, sctp
  int32_t container_port = 0;
  int32_t host_port = 0;
  std::string host_ip;
};

// CRI SecurityProfile (seccomp, AppArmor), same numbering.
enum class SecurityProfileType { kRuntimeDefault = 0, kUnconfined = 1, kLocalhost = 2 };
struct SecurityProfile {
  SecurityProfileType type = SecurityProfileType::kRuntimeDefault;
  std::string localhost_ref;  // Localhost: seccomp = an absolute JSON file; apparmor = a name
};

struct SandboxConfig {
  // Metadata.
  std::string name;
  std::string ns;  // Kubernetes namespace
  std::string uid;
  uint32_t attempt = 0;

  std::string hostname;
  std::string log_directory;

  // DNS (resolv.conf); empty servers mean "copy the host's resolv.conf".
  std::vector<std::string> dns_servers;
  std::vector<std::string> dns_searches;
  std::vector<std::string> dns_options;

  // Linux namespaces (NamespaceOption). kTarget is only meaningful for containers.
  NamespaceMode network = NamespaceMode::kPod;
  NamespaceMode pid = NamespaceMode::kPod;
  NamespaceMode ipc = NamespaceMode::kPod;
  // The pod's own user namespace (userns_options mode POD, hostUsers: false) with these
  // mappings, shared by its pause and containers; nullopt: the host's.
  struct UserNamespace {
    IdMappings uids, gids;
    bool operator==(const UserNamespace&) const = default;
  };
  std::optional<UserNamespace> userns;

  std::map<std::string, std::string> sysctls;
  std::string cgroup_parent;
  bool privileged = false;
  bool readonly_rootfs = false;
  int64_t run_as_user = -1;   // -1: unset
  int64_t run_as_group = -1;  // -1: unset
  std::vector<int64_t> supplemental_groups;
  // The pause's seccomp and AppArmor profiles (containerd applies the pod's to it).
  std::optional<SecurityProfile> seccomp;
  std::optional<SecurityProfile> apparmor;

  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  std::vector<PortMapping> port_mappings;

  std::string runtime_handler;
  // The PodSandboxConfig in protobuf JSON form, shown as "config" in verbose info.
  std::string config_json;
};

}  // namespace berth::sandbox
