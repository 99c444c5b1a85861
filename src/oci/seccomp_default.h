// berth's RuntimeDefault seccomp profile (an allowlist in the shape of Docker's and
// containerd's default) and loading a Localhost profile file.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace berth::oci {

// The OCI linux.seccomp object: defaultAction SCMP_ACT_ERRNO (errno 1, EPERM), this machine's
// architectures (x86_64, x86, x32 on amd64), the allowlist, and the syscalls that the bounding
// capabilities `caps` ("CAP_SYS_ADMIN", …) unlock: without CAP_SYS_ADMIN, clone may not create
// namespaces and clone3 fails with ENOSYS so that libc falls back to clone.
nlohmann::json defaultSeccompProfile(const std::vector<std::string>& caps);

// Reads a Localhost profile: `path` must be absolute (InvalidArgument) and exist (NotFound),
// and hold a JSON object with a defaultAction (InvalidArgument). Messages name the file.
[[nodiscard]] absl::StatusOr<nlohmann::json> loadSeccompProfile(const std::string& path);

}  // namespace berth::oci
