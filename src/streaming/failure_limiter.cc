#include "streaming/failure_limiter.h"

#include <algorithm>
#include <iterator>
#include <utility>

namespace berth::streaming {

FailureLimiter::FailureLimiter(int limit, absl::Duration window, Clock clock, size_t max_peers)
    : limit_(static_cast<size_t>(std::max(limit, 1))),
      window_(absl::ToChronoNanoseconds(window)),
      clock_(std::move(clock)),
      max_peers_(max_peers) {}

void FailureLimiter::forgetOld(std::vector<TimePoint>& times, TimePoint now) const {
  auto fresh =
      std::find_if(times.begin(), times.end(), [&](TimePoint t) { return now - t < window_; });
  times.erase(times.begin(), fresh);
}

void FailureLimiter::pruneIdlePeers(TimePoint now) {
  for (auto it = failures_.begin(); it != failures_.end();) {
    forgetOld(it->second, now);
    it = it->second.empty() ? failures_.erase(it) : std::next(it);
  }
}

bool FailureLimiter::blocked(const std::string& peer) {
  TimePoint now = clock_();
  absl::MutexLock lock(&mu_);
  auto it = failures_.find(peer);
  if (it == failures_.end()) return false;
  forgetOld(it->second, now);
  if (it->second.empty()) {
    failures_.erase(it);
    return false;
  }
  return it->second.size() >= limit_;
}

void FailureLimiter::recordFailure(const std::string& peer) {
  TimePoint now = clock_();
  absl::MutexLock lock(&mu_);
  auto it = failures_.find(peer);
  if (it == failures_.end()) {
    if (failures_.size() >= std::min(next_prune_, max_peers_)) {
      pruneIdlePeers(now);
      next_prune_ = std::max<size_t>(1024, 2 * failures_.size());
    }
    if (failures_.size() >= max_peers_) return;
    it = failures_.emplace(peer, std::vector<TimePoint>()).first;
    it->second.reserve(limit_);
  }
  forgetOld(it->second, now);
  if (it->second.size() >= limit_) it->second.erase(it->second.begin());
  it->second.push_back(now);
}

size_t FailureLimiter::peersTracked() {
  TimePoint now = clock_();
  absl::MutexLock lock(&mu_);
  pruneIdlePeers(now);
  return failures_.size();
}

}  // namespace berth::streaming
