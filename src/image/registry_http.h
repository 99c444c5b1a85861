// A small libcurl wrapper for the registry client: one request at a time per call, streamed
// or buffered bodies, and a pool of easy handles so connections are reused. Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace berth::image {

// Receives body bytes; a non-OK status aborts the transfer with that status.
using BodySink = std::function<absl::Status(const char* data, size_t len)>;

struct HttpRequest {
  std::string method = "GET";  // GET, HEAD or POST
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;                  // POST body
  bool follow_redirects = false;     // Authorization is dropped on a redirect to another host
  bool skip_verify = false;
  std::string ca_file;
  std::string client_cert, client_key;  // TLS client certificate and key (PEM); empty: none
  int connect_timeout_s = 30;
  int64_t timeout_ms = 0;       // 0: no limit on the whole transfer
  int low_speed_time_s = 60;    // abort when under low_speed_bps for this long; 0: never
  int64_t low_speed_bps = 1;
  uint64_t resume_from = 0;   // ask for "Range: bytes=N-" and skip N bytes of a 200 answer
  size_t max_body = 4 << 20;  // limit of a buffered 2xx body (no sink)
};

struct HttpResult {
  // OK when an HTTP response arrived, whatever its code. Otherwise a transport error
  // (Unavailable or DeadlineExceeded, naming the URL's host), or the sink's own status.
  absl::Status status;
  bool retryable = false;    // a transport error worth another attempt (timeout, reset)
  bool sink_failed = false;  // `status` came from the sink
  long code = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // final response; names lowercase
  // The body when there is no sink, or of a non-2xx answer: of that only the first 64 KiB are
  // read, then the transfer is cut (an endless error body ends there).
  std::string body;
  uint64_t delivered = 0;  // bytes handed to the sink by this request

  // The first header named `name` (lowercase), or "".
  std::string header(absl::string_view name) const;
  std::vector<std::string> headerValues(absl::string_view name) const;
};

class HttpClient {
 public:
  explicit HttpClient(std::string user_agent);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Runs one request. A 2xx body goes to `sink` when it is given, else into result.body.
  HttpResult perform(const HttpRequest& request, const BodySink* sink) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void* acquire() ABSL_LOCKS_EXCLUDED(mu_);
  void release(void* handle) ABSL_LOCKS_EXCLUDED(mu_);

  static constexpr size_t kMaxIdleHandles = 8;
  const std::string user_agent_;
  absl::Mutex mu_;
  std::vector<void*> idle_ ABSL_GUARDED_BY(mu_);  // CURL* easy handles, kept for reuse
};

// The host[:port] part of an http(s) URL, for messages.
std::string urlHost(absl::string_view url);

}  // namespace berth::image
