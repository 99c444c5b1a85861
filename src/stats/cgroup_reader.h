// Finding the cgroup hierarchies (v1, v2 or both) and reading a cgroup's CPU, memory and pid
// counts from whichever of them holds the target.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "stats/sample.h"
#include "stats/text_files.h"

namespace berth::stats {

// Mount directories of the hierarchies stats are read from; "" when absent.
struct CgroupLayout {
  std::string cpuacct;  // v1 hierarchy holding cpuacct ("cpuacct", "cpu,cpuacct", ...)
  std::string memory;   // v1 memory hierarchy
  std::string pids;     // v1 pids hierarchy
  std::string unified;  // the cgroup2 mount
};

// Looks at what exists under `cgroup_root`: when it holds cgroup.controllers itself it is a pure
// v2 mount; otherwise its subdirectories are v1 hierarchies named after their controllers, and
// "unified" (when it holds cgroup.controllers) is the v2 mount of a hybrid host.
CgroupLayout detectCgroupLayout(const std::string& cgroup_root);

// A cgroupfs-style path with one leading slash and no trailing one ("berth/x/" → "/berth/x");
// nullopt for "", "/" (we never report the root cgroup) and paths with "." or ".." parts.
std::optional<std::string> cleanCgroupPath(std::string_view path);

// Each reader tries the v1 hierarchy first (when mounted and the target's file is there), then
// the v2 one, and returns nullopt when neither has the file. `cgroup_path` must be clean.
// usage_nano_cores is left 0: it needs the previous sample. Files come from `files`.
std::optional<CpuSample> readCpu(const CgroupLayout& layout, const std::string& cgroup_path,
                                 int64_t now_ns, FileSource& files = plainFiles());
std::optional<MemorySample> readMemory(const CgroupLayout& layout, const std::string& cgroup_path,
                                       int64_t now_ns, FileSource& files = plainFiles());
std::optional<uint64_t> readProcessCount(const CgroupLayout& layout, const std::string& cgroup_path,
                                         FileSource& files = plainFiles());

// v1 reports "no limit" as a huge page-aligned number; anything at or above this means none.
inline constexpr uint64_t kV1NoLimit = uint64_t{1} << 62;

}  // namespace berth::stats
