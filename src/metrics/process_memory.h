// Resident memory of a process, for gauges computed at scrape time (the shims' memory).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace berth::metrics {

// Resident set size in bytes from <proc_root>/<pid>/statm (resident pages times the page
// size); nullopt when the process is gone or the file cannot be read.
std::optional<uint64_t> residentBytes(const std::string& proc_root, int pid);

}  // namespace berth::metrics
