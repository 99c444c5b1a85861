// Reading the cgroup part and the slow part of one target.
#include "stats/sampling.h"

#include "common/logging.h"
#include "stats/disk_usage.h"
#include "stats/net_dev.h"

namespace berth::stats {

uint64_t nanoCores(const CpuSample& prev, const CpuSample& cur) {
  if (cur.timestamp_ns <= prev.timestamp_ns) return 0;
  if (cur.usage_core_nano_seconds < prev.usage_core_nano_seconds) return 0;
  // double: the product of two nanosecond counts overflows 64 bits after a few seconds.
  auto used = static_cast<double>(cur.usage_core_nano_seconds - prev.usage_core_nano_seconds);
  auto elapsed = static_cast<double>(cur.timestamp_ns - prev.timestamp_ns);
  return static_cast<uint64_t>(used * 1e9 / elapsed);
}

CgroupReading readCgroupPart(const CgroupLayout& layout, const Target& t, int64_t now_ns,
                             FileSource& files) {
  CgroupReading r;
  r.at = now_ns;
  if (std::optional<std::string> path = cleanCgroupPath(t.cgroup_path)) {
    r.cpu = readCpu(layout, *path, now_ns, files);
    r.memory = readMemory(layout, *path, now_ns, files);
    r.process_count = readProcessCount(layout, *path, files);
  }
  return r;
}

SlowReading readSlowPart(const std::string& proc_root, const Target& t, int64_t now_ns,
                         const std::atomic<bool>* cancel) {
  SlowReading r;
  r.network = readNetwork(proc_root, t.pid, now_ns);
  if (!t.writable_dir.empty()) {
    absl::StatusOr<DiskUsage> du = diskUsage(t.writable_dir, cancel);
    if (du.ok()) {
      r.writable_layer =
          FsSample{.timestamp_ns = now_ns, .used_bytes = du->bytes, .inodes_used = du->inodes};
    } else if (!absl::IsNotFound(du.status()) && !absl::IsCancelled(du.status())) {
      logging::get("stats")->debug("writable layer {}: {}", t.writable_dir, du.status().message());
    }
  }
  return r;
}

Sample sampleTarget(const SamplingPaths& paths, const Target& t, const Sample* previous,
                    int64_t now_ns) {
  CgroupReading c = readCgroupPart(detectCgroupLayout(paths.cgroup_root), t, now_ns);
  SlowReading slow = readSlowPart(paths.proc_root, t, now_ns, nullptr);
  Sample s;
  s.timestamp_ns = now_ns;
  s.cpu = c.cpu;
  if (s.cpu && previous != nullptr && previous->cpu) {
    s.cpu->usage_nano_cores = nanoCores(*previous->cpu, *s.cpu);
  }
  s.memory = c.memory;
  s.process_count = c.process_count;
  s.network = std::move(slow.network);
  s.writable_layer = slow.writable_layer;
  return s;
}

}  // namespace berth::stats
