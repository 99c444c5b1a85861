// Starting an exec'd process from berth-shim itself, the way `runc exec` (1.1.5, as Debian 12
// ships it) starts one, without its Go start-ups: docs/exec-in-monitor.md has the steps and
// where each comes from. Only on the shim's single thread (it forks).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "shim/protocol.h"
#include "shim/seccomp_filter.h"

namespace berth::shim {

// What the exec joins: the container's init and its namespaces and cgroups, and the settings
// that come from the container rather than the exec's process spec.
struct MonitorExecTarget {
  std::string container_id;
  pid_t init_pid = 0;
  // Namespace types of the container ("ipc", "uts", "net", "pid", "mount", "cgroup", "user"),
  // as config.json lists them.
  std::vector<std::string> namespaces;
  bool has_oom_score_adj = false;
  int oom_score_adj = 0;
  // The filter runc would load (buildRuncSeccompProgram), or none. Not owned.
  const SeccompProgram* seccomp = nullptr;
};

// Why the monitor cannot start this exec exactly as `runc exec` would (an AppArmor or SELinux
// label, a user namespace), or "" when it can. A seccomp filter is the caller's to build. `config`
// is the container's config.json, `process` the exec's process spec.
std::string monitorExecUnsupported(const Json& config, const Json& process);

// The target's namespaces and settings from the container's config.json.
MonitorExecTarget monitorExecTarget(const std::string& container_id, pid_t init_pid,
                                    const Json& config);

// Starts `process` (an OCI process spec: args, env, cwd, user, capabilities, rlimits,
// noNewPrivileges, terminal) in the target, with `stdio` as its fds 0-2 (-1: /dev/null). With
// `terminal`, the process opens a pty in the container, makes it its controlling terminal and
// stdio, and sends the master over `console_fd` (one end of a socket pair). On success
// `*pid` is the process, a child of the shim that has reached execve. A failure before
// execve is an error in runc's words ("exec failed: …"); nothing is left running.
[[nodiscard]] Outcome startMonitorExec(const MonitorExecTarget& target, const Json& process,
                                       const int stdio[3], int console_fd, int64_t timeout_ms,
                                       pid_t* pid);

}  // namespace berth::shim
