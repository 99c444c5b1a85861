// One-time tokens for the streaming server: Exec, Attach and PortForward store their request
// here and hand out a URL naming the token; the first connection that presents it takes the
// request, and a token that nobody used expires (containerd: one minute, at most 1000 in flight).
#pragma once

#include <atomic>
#include <cstdint>
#include <list>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace berth::streaming {

struct ExecParams {
  std::string container_id;
  std::vector<std::string> cmd;
  bool tty = false, stdin = false, stdout = false, stderr = false;
};
struct AttachParams {
  std::string container_id;
  bool tty = false, stdin = false, stdout = false, stderr = false;
};
struct PortForwardParams {
  std::string sandbox_id;
  std::vector<int32_t> ports;  // may be empty: the client names them (WebSocket ?ports=)
};
using StreamRequest = std::variant<ExecParams, AttachParams, PortForwardParams>;

// The URL path word of each kind: "exec", "attach", "portforward".
const char* kindOf(const StreamRequest& req);

class RequestCache {
 public:
  RequestCache(absl::Duration ttl, size_t max_in_flight)
      : ttl_ns_(absl::ToInt64Nanoseconds(ttl)), max_(max_in_flight) {}

  // Tokens issued from now on live `ttl` (a reload); those issued keep their expiry.
  void setTtl(absl::Duration ttl) { ttl_ns_.store(absl::ToInt64Nanoseconds(ttl)); }

  // Stores `req` and returns its token (see newToken()).
  // ResourceExhausted when max_in_flight unexpired tokens are waiting.
  [[nodiscard]] absl::StatusOr<std::string> insert(StreamRequest req);
  // Takes the request of `token` (it can be used once). Nothing when unknown or expired.
  std::optional<StreamRequest> consume(const std::string& token);

  size_t size();
  // For tests: the clock the cache reads.
  void setClockForTest(absl::Time (*now)()) { now_ = now; }

 private:
  struct Entry {
    StreamRequest req;
    absl::Time expires;
  };
  void evictExpired(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::atomic<int64_t> ttl_ns_;
  const size_t max_;
  absl::Time (*now_)() = &absl::Now;
  absl::Mutex mu_;
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::list<std::string> order_ ABSL_GUARDED_BY(mu_);  // insertion order, for expiry
};

// 12 random bytes as unpadded base64url: 16 characters. 96 bits, so that guessing one of the
// (at most max_in_flight) live tokens is hopeless even without the server's rate limit.
[[nodiscard]] absl::StatusOr<std::string> newToken();

}  // namespace berth::streaming
