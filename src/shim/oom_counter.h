// OOM detection for berth-shim: the kernel's count of OOM kills in a container's memory cgroup
// (cgroup v1 memory.oom_control or cgroup v2 memory.events, both "oom_kill N"), read when the
// container is created, whenever the kernel signals a change while it runs (an OOM kill of any
// of its processes is an event at once), and again when its init exits, before `runtime
// delete` removes the cgroup.
#pragma once

#include <cstdint>
#include <string>

#include "common/unique_fd.h"

namespace berth::shim {

// The counter file of the memory cgroup `pid` is in, from /proc/<pid>/cgroup; when that is
// unreadable (the process is gone), from `cgroups_path` (the OCI linux.cgroupsPath, used only
// when it is an absolute cgroupfs path). Tries v1 /sys/fs/cgroup/memory/<path>, pure v2
// /sys/fs/cgroup/<path> and hybrid /sys/fs/cgroup/unified/<path>. "" if none exists.
std::string findOomCounter(int pid, const std::string& cgroups_path);

// The oom_kill count in `path`; -1 if it cannot be read.
int64_t readOomKills(const std::string& path);

// A descriptor that becomes readable when the count in `counter` (from findOomCounter) may have
// grown: for cgroup v1 memory.oom_control an eventfd registered through the cgroup's
// cgroup.event_control (it also fires when the cgroup is removed), for v2 memory.events an
// inotify watch. Non-blocking. Invalid, with the reason in *why, when it cannot be set up.
UniqueFd watchOomCounter(const std::string& counter, std::string* why);
// Reads and drops the notifications pending on a descriptor from watchOomCounter.
void drainOomWatch(int fd);

// linux.cgroupsPath from a bundle's config.json ("" if absent or unreadable).
std::string cgroupsPathOf(const std::string& bundle);

}  // namespace berth::shim
