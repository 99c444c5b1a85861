// Which kernel namespace a sysctl belongs to (Kubernetes' namespaced-sysctl rules), and the
// check that a pod only sets sysctls of namespaces it owns.
#pragma once

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace berth::oci {

enum class SysctlNamespace { kHost, kIpc, kNet, kUts };

// Kubernetes accepts "net/ipv4/ip_forward" as well as "net.ipv4.ip_forward": when the first
// separator is '/', '/' and '.' are swapped.
std::string normalizeSysctlName(absl::string_view name);

// kIpc: kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*; kNet: net.*; kUts: kernel.hostname,
// kernel.domainname; anything else is the host's (not namespaced).
SysctlNamespace sysctlNamespace(absl::string_view normalized_name);

// InvalidArgument naming the first sysctl that is not namespaced, or that belongs to a
// namespace the pod shares with the host (net/uts with host network, ipc with host IPC).
// Returns the sysctls with normalized names.
[[nodiscard]] absl::Status validatePodSysctls(const std::map<std::string, std::string>& sysctls,
                                              bool host_network, bool host_ipc,
                                              std::map<std::string, std::string>* normalized);

}  // namespace berth::oci
