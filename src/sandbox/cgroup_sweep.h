// Ending what is left in a cgroup when its monitor is gone: every process in it (and in the
// cgroups below) gets SIGKILL until none is left, then the cgroup dirs are removed, in every
// hierarchy (the v1 controllers and the unified one of a hybrid host, or the one v2 tree).
#pragma once

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace berth::sandbox {

// `cgroup_path` is a cgroupfs path ("/berth/<id>"); one without a leading '/' (a systemd
// "slice:prefix:name") or with ".." is InvalidArgument. Returns once no process is left and
// the dirs are gone (a cgroup that does not exist is fine); DeadlineExceeded naming the
// cgroup when processes are still there after `bound`.
// `killed`, when given, is increased by the number of processes that were sent SIGKILL.
[[nodiscard]] absl::Status killCgroup(const std::string& cgroup_path, absl::Duration bound,
                                      const std::string& cgroup_root = "/sys/fs/cgroup",
                                      size_t* killed = nullptr);

}  // namespace berth::sandbox
