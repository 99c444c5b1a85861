// Mounts and devices of an application container's spec: the pod's files, the termination
// log, the CRI mounts (validated, with propagation), and device nodes.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "oci/container_config.h"

namespace berth::oci {

// Replaces spec["mounts"] (the default mounts) with containerd's order: the default mounts not
// overridden by a pod file or CRI mount (none under /dev when /dev itself is mounted), the
// cgroup mount, then the pod files and CRI mounts sorted by depth so parents come first. Sets
// linux.rootfsPropagation for HOST_TO_CONTAINER (rslave) and BIDIRECTIONAL (rshared) mounts.
// InvalidArgument names a bad container_path or host_path; FailedPrecondition a host path whose
// mount cannot propagate as asked.
[[nodiscard]] absl::Status setContainerMounts(const ContainerSpecInput& in, nlohmann::json& spec);

// Adds the config's devices to linux.devices with a linux.resources.devices allow rule each.
// A directory host_path adds every device node below it. InvalidArgument names a device that
// does not exist, is not a device, or has bad permissions.
[[nodiscard]] absl::Status addContainerDevices(const ContainerSpecInput& in, nlohmann::json& spec);

// Privileged containers: every device node under `dev_dir` (as containerd's HostDevices: not
// pts, shm, fd, mqueue, console, FIFOs or symlinks), and all devices allowed.
[[nodiscard]] absl::Status addHostDevices(const std::string& dev_dir, nlohmann::json& spec);

// The OCI linux.devices entry for the device node at `host_path`, placed at `container_path`.
// NotFound when it does not exist; FailedPrecondition when it is not a device node.
[[nodiscard]] absl::StatusOr<nlohmann::json> deviceFromPath(const std::string& host_path,
                                                            const std::string& container_path);

}  // namespace berth::oci
