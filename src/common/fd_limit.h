// berthd's limit on open files (RLIMIT_NOFILE): raised at start-up, as containerd does, so that
// CRI connections, shims and pipes fit; put back in every program berthd starts, so that
// shims, runtimes, plugins and containers get the limit berthd itself was given.
#pragma once

#include <sys/resource.h>

#include "absl/status/statusor.h"

namespace berth {

struct FdLimit {
  rlim_t original_soft = 0;  // what berthd was started with
  rlim_t soft = 0;           // in force now
  rlim_t hard = 0;
};

// Raises the soft limit to the hard limit and remembers the original soft limit for
// restoreFdLimitForChild(). Call once from main(), before any thread exists.
[[nodiscard]] absl::StatusOr<FdLimit> raiseFdLimit();

// For a child between fork and exec: lowers its soft limit back to the one berthd was started
// with (nothing happens when raiseFdLimit() was not called). Async-signal-safe.
void restoreFdLimitForChild() noexcept;

}  // namespace berth
