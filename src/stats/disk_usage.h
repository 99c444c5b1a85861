// Disk usage of a directory tree, counted as `du -x` does, for writable-layer stats.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace berth::stats {

struct DiskUsage {
  uint64_t bytes = 0;   // allocated blocks (st_blocks * 512), not apparent sizes
  uint64_t inodes = 0;  // every entry including `dir` itself; a hard-linked file once
};

// Walks `dir` with openat/fstatat: symlinks are counted but never followed, other filesystems
// mounted inside are not entered, entries that vanish meanwhile are skipped. Directories nested
// deeper than kMaxDepth are counted but not entered (one descriptor is open per level).
// NotFound when `dir` is missing; Cancelled as soon as `cancel` (may be null) becomes true.
[[nodiscard]] absl::StatusOr<DiskUsage> diskUsage(const std::string& dir,
                                                  const std::atomic<bool>* cancel = nullptr);

inline constexpr int kMaxDepth = 128;

}  // namespace berth::stats
