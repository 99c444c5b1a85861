// The built-in read-only root filesystem for pause processes: berth-pause and the empty
// directories the runtime mounts onto. Pods need no image pull with it.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace berth::sandbox {

// Creates (or refreshes) `dir` holding /pause copied from `pause_binary`, and /dev, /proc,
// /sys, /etc, /tmp as mount points. Written to a temp dir and renamed, so a sandbox never
// sees a half-made rootfs.
[[nodiscard]] absl::Status preparePauseRootfs(const std::string& dir,
                                              const std::string& pause_binary);

}  // namespace berth::sandbox
