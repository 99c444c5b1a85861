// Network counters of a process's network namespace, from /proc/<pid>/net/dev.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "stats/sample.h"

namespace berth::stats {

// Parses the text of /proc/<pid>/net/dev: every interface but "lo", in file order except that
// "eth0" (the interface CNI gives a pod) comes first. Malformed lines are skipped.
std::vector<InterfaceSample> parseNetDev(std::string_view text);

// Reads <proc_root>/<pid>/net/dev; nullopt when pid is not positive or the file cannot be read
// (the process is gone).
std::optional<NetworkSample> readNetwork(const std::string& proc_root, int pid, int64_t now_ns);

}  // namespace berth::stats
