// Ending a process together with everything it started, for berth-shim's exec timeouts: a
// timed-out exec must leave no process behind in the container.
#pragma once

#include <sys/types.h>

namespace berth::shim {

// Stops `root` and its descendants with SIGSTOP, rescanning /proc until no new descendant
// appears (a stopped process cannot fork), then sends SIGKILL to all of them. Descendants
// already reparented away from the tree (their parent exited) are not found. Returns how many
// processes were signalled.
int killProcessTree(pid_t root);

}  // namespace berth::shim
