// Polling for a condition in tests of threaded code.
#pragma once

#include <functional>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace berth::testing {

// Polls `cond` every 2 ms until it holds or `limit` has passed; its last answer.
inline bool eventually(const std::function<bool()>& cond, absl::Duration limit = absl::Seconds(5)) {
  absl::Time end = absl::Now() + limit;
  while (absl::Now() < end) {
    if (cond()) return true;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return cond();
}

}  // namespace berth::testing
