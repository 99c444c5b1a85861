// Joined calls: while an operation runs for a key (e.g. "stop/<id>"), a second call with the
// same key does not run it again but waits for the first and returns its result. No lock is
// held across the work; a joiner only waits for its end.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace berth {

// Thread-safe.
class Flights {
 public:
  [[nodiscard]] absl::Status run(const std::string& key, const std::function<absl::Status()>& work);
  bool inFlight(const std::string& key) const;

 private:
  struct Flight {
    absl::Mutex mu;
    bool done ABSL_GUARDED_BY(mu) = false;
    absl::Status result ABSL_GUARDED_BY(mu);
  };
  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<Flight>> flights_ ABSL_GUARDED_BY(mu_);
};

}  // namespace berth
