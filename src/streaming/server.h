// berth's streaming server: the HTTP endpoint behind the URLs that Exec, Attach and
// PortForward return. A URL carries a one-time token bound to its request; the client
// upgrades the connection to SPDY/3.1 or WebSocket and the session runs on a thread of its own.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/unique_fd.h"
#include "shim/shim_client.h"
#include "streaming/conn.h"
#include "streaming/request_cache.h"
#include "streaming/tls.h"

namespace berth::streaming {

struct ServerOptions {
  std::string address = "127.0.0.1";  // IPv4 or IPv6 literal
  int port = 0;                        // 0: an ephemeral port
  absl::Duration token_ttl = absl::Minutes(1);
  size_t max_in_flight = 1000;
  // How long a SPDY client may take to open the streams of a command.
  absl::Duration stream_creation_timeout = absl::Seconds(30);
  // A client must send its request within this time.
  absl::Duration request_timeout = absl::Seconds(30);
  // Sessions served at once; more connections are refused with 503.
  int max_sessions = 256;
  // Both set: HTTPS (PEM files). Neither: plain HTTP.
  std::string tls_cert_file, tls_key_file;
};

// What the sessions need from the rest of berthd.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual absl::StatusOr<std::unique_ptr<shim::StreamedProcess>> exec(const ExecParams& p) = 0;
  virtual absl::StatusOr<std::unique_ptr<shim::Attachment>> attach(const AttachParams& p) = 0;
  // The attached client ended its stdin (the container's stdin closes if it is stdin_once).
  virtual void attachStdinEnded(const AttachParams& p) = 0;
  // A connected TCP socket to `port` inside the pod's network namespace.
  virtual absl::StatusOr<UniqueFd> dialPort(const std::string& sandbox_id, int32_t port) = 0;
};

class Server {
 public:
  Server(ServerOptions opts, Backend& backend);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and starts accepting.
  [[nodiscard]] absl::Status start();
  // Stops accepting, ends every session and waits for them.
  void stop();

  // Stores `req` and returns the URL that serves it once.
  [[nodiscard]] absl::StatusOr<std::string> urlFor(StreamRequest req);
  // "http://host:port".
  const std::string& baseUrl() const { return base_url_; }
  RequestCache& cache() { return cache_; }

 private:
  void acceptLoop();
  void serveConnection(UniqueFd fd);
  void track(ByteStream* c);
  void untrack(ByteStream* c);

  ServerOptions opts_;
  Backend& backend_;
  RequestCache cache_;
  UniqueFd listen_fd_;
  std::string base_url_;
  std::thread acceptor_;
  std::unique_ptr<TlsContext> tls_;
  UniqueFd stop_r_, stop_w_;  // a pipe: readable once stop() began
  std::atomic<bool> stopping_{false};

  absl::Mutex mu_;
  std::set<ByteStream*> conns_ ABSL_GUARDED_BY(mu_);
  int sessions_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace berth::streaming
