// Process rlimits of containers: CRI-O's `default_ulimits` (Docker's --ulimit syntax) per
// runtime handler, as OCI `process.rlimits`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace berth::oci {

struct Rlimit {
  std::string type;  // "RLIMIT_NOFILE"
  uint64_t soft = 0;
  uint64_t hard = 0;  // RLIM_INFINITY for unlimited
};

// "name=soft:hard" or "name=value" (both limits), as CRI-O and Docker read them. The name is
// one of core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio,
// rttime, sigpending, stack, as; a value is a non-negative integer or -1 (unlimited); the soft
// limit may not exceed the hard one. InvalidArgument names what is wrong.
[[nodiscard]] absl::StatusOr<Rlimit> parseUlimit(const std::string& text);

// All of `texts`, each type at most once.
[[nodiscard]] absl::StatusOr<std::vector<Rlimit>> parseUlimits(
    const std::vector<std::string>& texts);

// The OCI `process.rlimits` array.
nlohmann::json rlimitsJson(const std::vector<Rlimit>& limits);

}  // namespace berth::oci
