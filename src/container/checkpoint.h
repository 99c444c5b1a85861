// CheckpointContainer (kubelet's forensic container checkpointing, KEP-2008): the archive
// CRI-O writes and kubelet and checkpointctl read. An uncompressed tar holding
//   checkpoint/      CRIU's images and runc's descriptors.json (`runc checkpoint`)
//   config.dump      who the container is (checkpointctl's ContainerConfig keys)
//   spec.dump        the OCI runtime spec it runs with
//   rootfs-diff.tar  the files its writable layer added or changed
//   deleted.files    JSON list of the image's paths it deleted
//   dump.log         CRIU's log
// The container keeps running (--leave-running). Needs CRIU; Debian 12's CRIU 3.17 cannot start
// on Linux 6.13 and later (docs/checkpoint.md).
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace berth::container {

// "" when the CRIU program `criu` (a name looked up in PATH, or a path) can checkpoint on this
// host, else why not: not installed, or `criu check` failing (its first error line).
std::string criuProblem(const std::string& criu);

// Writes the writable layer `upper` (an overlayfs upper directory) as CRI-O does: every
// directory, file and symlink below it into the tar `tar_path` (paths relative, owners, modes
// and times kept, an opaque directory marked by a ".wh..wh..opq" entry), and returns the paths
// overlayfs records as deleted there (its whiteouts), "/"-rooted and sorted.
[[nodiscard]] absl::StatusOr<std::vector<std::string>> writeRootfsDiff(const std::string& upper,
                                                                       const std::string& tar_path);

// Writes everything below `dir` into the uncompressed tar `tar_path` (relative paths, sorted).
[[nodiscard]] absl::Status writeTarOf(const std::string& dir, const std::string& tar_path);

}  // namespace berth::container
