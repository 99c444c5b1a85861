// Reading one target's stats, in two parts with different costs: the cgroup part (CPU, memory,
// process count: a few small cgroup files, cheap) and the slow part (network counters and the
// writable layer's disk usage, a directory walk).
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>

#include "stats/cgroup_reader.h"
#include "stats/sample.h"

namespace berth::stats {

// What to measure for one container or pod.
struct Target {
  // The OCI linux.cgroupsPath in cgroupfs style ("/berth/<id>"), looked up under every v1
  // controller mount and under the v2 unified mount.
  std::string cgroup_path;
  // A process in the target (the pause process for pods); network stats come from
  // /proc/<pid>/net/dev, i.e. its network namespace. 0 = no network stats.
  int pid = 0;
  // A directory whose disk usage is the writable layer (an overlay upperdir); "" = none.
  std::string writable_dir;

  friend bool operator==(const Target&, const Target&) = default;
};

// One reading of a target's cgroup files, all stamped `at`. Every part is empty when the cgroup
// does not exist (not created yet, or gone).
struct CgroupReading {
  int64_t at = 0;
  std::optional<CpuSample> cpu;  // usage_nano_cores left 0: it needs the previous reading
  std::optional<MemorySample> memory;
  std::optional<uint64_t> process_count;

  bool empty() const { return !cpu && !memory && !process_count; }
};

// Reads `t`'s cgroup files from the hierarchies of `layout`, through `files`. Never waits on
// anything but the cgroup filesystem (no shim, no runtime, no disk walk).
CgroupReading readCgroupPart(const CgroupLayout& layout, const Target& t, int64_t now_ns,
                             FileSource& files = plainFiles());

// Network counters (from /proc/<pid>/net/dev) and the writable layer's usage (a directory walk,
// given up as soon as `cancel`, which may be null, becomes true). Missing parts stay empty.
struct SlowReading {
  std::optional<NetworkSample> network;
  std::optional<FsSample> writable_layer;
};
SlowReading readSlowPart(const std::string& proc_root, const Target& t, int64_t now_ns,
                         const std::atomic<bool>* cancel);

// Cores used between two CPU readings, in billionths of a core; 0 when `cur` is not later or the
// counter went back (a new cgroup under the same path).
uint64_t nanoCores(const CpuSample& prev, const CpuSample& cur);

struct SamplingPaths {
  std::string cgroup_root = "/sys/fs/cgroup";
  std::string proc_root = "/proc";
};

// Reads every part of `t` now, as one Sample stamped `now_ns` (tests and tools; the collector
// reads the parts on their own schedules). `previous` (may be null) gives the CPU rate.
Sample sampleTarget(const SamplingPaths& paths, const Target& t, const Sample* previous,
                    int64_t now_ns);

}  // namespace berth::stats
