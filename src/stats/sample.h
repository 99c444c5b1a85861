// Value types for one reading of a container's or pod's resource usage.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace berth::stats {

struct CpuSample {
  int64_t timestamp_ns = 0;
  uint64_t usage_core_nano_seconds = 0;
  // From the delta to the previous sample; 0 on the first one.
  uint64_t usage_nano_cores = 0;
};

struct MemorySample {
  int64_t timestamp_ns = 0;
  // usage - inactive_file, never below 0 (what kubelet and cadvisor call the working set).
  uint64_t working_set_bytes = 0;
  // limit - working set when a limit is set, else 0.
  uint64_t available_bytes = 0;
  uint64_t usage_bytes = 0;
  uint64_t rss_bytes = 0;
  uint64_t page_faults = 0;
  uint64_t major_page_faults = 0;
};

struct InterfaceSample {
  std::string name;
  uint64_t rx_bytes = 0;
  uint64_t rx_errors = 0;
  uint64_t tx_bytes = 0;
  uint64_t tx_errors = 0;
};

struct NetworkSample {
  int64_t timestamp_ns = 0;
  // Every interface but "lo"; the default one ("eth0" when present) first.
  std::vector<InterfaceSample> interfaces;
};

struct FsSample {
  int64_t timestamp_ns = 0;
  uint64_t used_bytes = 0;
  uint64_t inodes_used = 0;
};

// What the collector holds for one target. The parts are read at different times (CPU, memory and
// process count together from cgroup files, often; network and writable layer on the long
// period), so each carries its own timestamp.
struct Sample {
  // When cpu, memory and process_count were last read from the target's cgroup (0: never). A
  // cgroup that is gone leaves the last values and this time as they were.
  int64_t timestamp_ns = 0;
  std::optional<CpuSample> cpu;
  std::optional<MemorySample> memory;
  std::optional<uint64_t> process_count;  // pids.current
  std::optional<NetworkSample> network;
  std::optional<FsSample> writable_layer;

  // True when any part came from the target's cgroup (false once the cgroup is gone).
  bool hasCgroupData() const { return cpu || memory || process_count; }
};

}  // namespace berth::stats
