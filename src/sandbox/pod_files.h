// The per-pod files the podsandbox controller prepares before the pause container starts:
// resolv.conf, hosts, hostname, and the pod's /dev/shm tmpfs.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "sandbox/sandbox_config.h"

namespace berth::sandbox {

// Writes the pod's resolv.conf ("search …", "nameserver …" per server, "options …", in
// containerd's order, mode 0644). When the config has no DNS servers, searches or options, the
// host's resolv.conf (`host_resolv_conf`) is copied instead. InvalidArgument names an entry
// that is empty or holds whitespace/newlines.
[[nodiscard]] absl::Status writeResolvConf(
    const std::string& path, const SandboxConfig& config,
    const std::string& host_resolv_conf = "/etc/resolv.conf");

// Writes the hosts file of a pod with its own network: localhost entries for IPv4 and IPv6
// (kubelet's set) and "<ip>\t<hostname>" when `ip` is known. Mode 0644.
[[nodiscard]] absl::Status writeHosts(const std::string& path, const std::string& hostname,
                                      const std::string& ip);

// For host-network pods: a copy of the host's hosts file. Mode 0644.
[[nodiscard]] absl::Status copyHostHosts(const std::string& path,
                                         const std::string& host_hosts = "/etc/hosts");

// Writes "<hostname>\n". Mode 0644. InvalidArgument for an empty or multi-line name.
[[nodiscard]] absl::Status writeHostname(const std::string& path, const std::string& hostname);

// Creates directory `path` (and missing parents) and mounts a tmpfs on it (nosuid, nodev,
// noexec, mode=1777, size=`size_bytes`) for the pod's /dev/shm. Already mounted: OK.
[[nodiscard]] absl::Status mountPodShm(const std::string& path, uint64_t size_bytes = 64 << 20);

// Detaches the tmpfs (MNT_DETACH) and removes the directory. Idempotent.
[[nodiscard]] absl::Status unmountPodShm(const std::string& path);

// The pod's hostname: the config's; with host network the host's; otherwise the pod name made
// a valid hostname (lowercase [a-z0-9.-], at most 63 characters, no leading/trailing '-'/'.').
std::string podHostname(const SandboxConfig& config);

}  // namespace berth::sandbox
