// Bounds how fast one peer may guess streaming tokens: a peer with `limit` failed lookups
// within `window` is refused (HTTP 429, no lookup) until the oldest of them is `window` old,
// so no peer gets more than `limit` guesses per `window`. Other peers are unaffected.
// Thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace berth::streaming {

class FailureLimiter {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  // `max_peers`: peers remembered at once (the failures of the rest are not counted; each
  // peer is bounded by the server's pending limits anyway).
  FailureLimiter(int limit, absl::Duration window, Clock clock = &std::chrono::steady_clock::now,
                 size_t max_peers = 16384);

  // Whether `peer` has used up its failures for now.
  bool blocked(const std::string& peer);
  void recordFailure(const std::string& peer);
  // Peers with failures in the window (for tests).
  size_t peersTracked();

 private:
  using TimePoint = std::chrono::steady_clock::time_point;
  void forgetOld(std::vector<TimePoint>& times, TimePoint now) const;
  void pruneIdlePeers(TimePoint now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t limit_;
  const std::chrono::steady_clock::duration window_;
  const Clock clock_;
  const size_t max_peers_;
  absl::Mutex mu_;
  // Per peer, the times of its failures within the window, oldest first (at most limit_).
  std::map<std::string, std::vector<TimePoint>> failures_ ABSL_GUARDED_BY(mu_);
  // Peers whose failures all left the window are dropped when the map reaches this size.
  size_t next_prune_ ABSL_GUARDED_BY(mu_) = 1024;
};

}  // namespace berth::streaming
