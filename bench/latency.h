// Latency sampling and percentile printing shared by the benchmarks.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace berth::bench {

struct Summary {
  std::string name;
  size_t samples = 0;
  size_t failures = 0;
  absl::Duration p50, p90, p99, max, mean;
};

// Calls `op` `iterations` times (after `warmup` untimed calls); `op` returns false on failure.
// `before` (may be empty) runs untimed before each timed call, e.g. to space the calls out.
Summary measure(const std::string& name, int warmup, int iterations,
                const std::function<bool()>& op, const std::function<void()>& before = {});

// Prints a header once, then one aligned line per summary (microseconds).
void printSummary(const Summary& s);

}  // namespace berth::bench
