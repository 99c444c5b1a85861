// oom_score_adj clamping (see oom.h for why).
#include "oci/oom.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/fs.h"
#include "common/logging.h"

namespace berth::oci {
namespace {

constexpr int kCapSysResource = 24;

// CAP_SYS_RESOURCE in the effective set, and the user namespace is the initial one (the kernel
// checks the capability against init_user_ns).
bool canLowerOomScoreAdj() {
  auto status = readFile("/proc/self/status");
  if (!status.ok()) return false;
  size_t pos = status->find("\nCapEff:");
  if (pos == std::string::npos) return false;
  uint64_t eff = std::strtoull(status->c_str() + pos + 8, nullptr, 16);
  if (((eff >> kCapSysResource) & 1U) == 0) return false;
  auto uid_map = readFile("/proc/self/uid_map");
  if (!uid_map.ok()) return false;
  // The initial user namespace maps the whole range: "0 0 4294967295".
  unsigned long inside = 1, outside = 1, count = 0;
  if (std::sscanf(uid_map->c_str(), "%lu %lu %lu", &inside, &outside, &count) != 3) return false;
  return inside == 0 && outside == 0 && count == 4294967295UL;
}

}  // namespace

int clampOomScoreAdj(int wanted, int own, bool can_lower) {
  if (can_lower) return wanted;
  return std::max(wanted, own);
}

int clampOomScoreAdj(int wanted) {
  auto text = readFile("/proc/self/oom_score_adj");
  // Unknown own value: 0 is what an unprivileged process starts with.
  int own = text.ok() ? std::atoi(text->c_str()) : 0;
  int got = clampOomScoreAdj(wanted, own, canLowerOomScoreAdj());
  static std::atomic<bool> logged{false};
  if (got != wanted && !logged.exchange(true)) {
    logging::get("oci")->warn(
        "oom_score_adj {} is below this process's own {} and CAP_SYS_RESOURCE is missing; "
        "containers get {} instead (logged once)",
        wanted, own, got);
  }
  return got;
}

}  // namespace berth::oci
