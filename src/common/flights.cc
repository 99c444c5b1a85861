// Flights: the first caller of a key runs the work; the others wait for its result.
#include "common/flights.h"

namespace berth {

absl::Status Flights::run(const std::string& key, const std::function<absl::Status()>& work) {
  std::shared_ptr<Flight> flight;
  bool leader = false;
  {
    absl::MutexLock lock(&mu_);
    auto& f = flights_[key];
    if (f == nullptr) {
      f = std::make_shared<Flight>();
      leader = true;
    }
    flight = f;
  }
  if (!leader) {
    absl::MutexLock lock(&flight->mu);
    flight->mu.Await(absl::Condition(&flight->done));
    return flight->result;
  }
  absl::Status result = work();
  {
    absl::MutexLock lock(&mu_);
    flights_.erase(key);
  }
  absl::MutexLock lock(&flight->mu);
  flight->result = result;
  flight->done = true;
  return result;
}

bool Flights::inFlight(const std::string& key) const {
  absl::MutexLock lock(&mu_);
  return flights_.contains(key);
}

}  // namespace berth
