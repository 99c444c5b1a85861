// berth's streaming server: the HTTP endpoint behind the URLs that Exec, Attach and
// PortForward return. A URL carries a one-time token bound to its request; the client
// upgrades the connection to SPDY/3.1 or WebSocket and the session runs on a thread of its own.
// A connection is pending until it presents a valid token, and only then takes a session slot;
// pending connections are bounded in time, in all and per peer, and so are failed lookups.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/unique_fd.h"
#include "shim/shim_client.h"
#include "streaming/conn.h"
#include "streaming/failure_limiter.h"
#include "streaming/peer.h"
#include "streaming/request_cache.h"
#include "streaming/tls.h"

namespace berth::streaming {

struct ServerOptions {
  std::string address = "127.0.0.1";  // IPv4 or IPv6 literal
  int port = 0;                       // 0: an ephemeral port
  absl::Duration token_ttl = absl::Minutes(1);
  size_t max_in_flight = 1000;
  // How long a SPDY client may take to open the streams of a command.
  absl::Duration stream_creation_timeout = absl::Seconds(30);
  // From accept until a valid token was presented (TLS handshake and HTTP request included);
  // a connection still pending then is closed.
  absl::Duration upgrade_timeout = absl::Seconds(10);
  // Sessions (connections that presented a valid token) served at once; more get 503.
  int max_sessions = 256;
  // Pending connections (accepted, no valid token yet): in all, and from one peer (peer.h).
  // Beyond them a connection is closed at once, after a 503 or 429 it need not read. Local
  // root peers (kubelet) count only against their own per-peer bound.
  int max_pending = 128;
  int max_pending_per_peer = 16;
  // A peer with this many unknown tokens within failure_window gets 429 (failure_limiter.h).
  int max_failed_lookups = 10;
  absl::Duration failure_window = absl::Seconds(10);
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

// start() and stop() from one thread (the daemon's); urlFor() from any thread. The server runs
// one accept thread and one thread per connection; stop() joins them all.
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
  // "http://host:port": where clients reach the server (127.0.0.1 for a 0.0.0.0 listener).
  const std::string& baseUrl() const { return base_url_; }
  // The bound address: "0.0.0.0:10250", "[::]:10250", "127.0.0.1:34567".
  const std::string& listenAddress() const { return listen_address_; }
  RequestCache& cache() { return cache_; }
  // Sessions being served now.
  int sessionCount() const {
    absl::MutexLock lock(&mu_);
    return sessions_;
  }

 private:
  // One accepted connection and the thread serving it:
  //
  //   accept ──► kPending ──(valid token, a free session slot)──► kSession ──► kDone
  //                 └──────(deadline, bad request, unknown token)──────────────┘
  //
  // Fields below are guarded by Server::mu_.
  struct Connection {
    Peer peer;
    enum class State { kPending, kSession, kDone } state = State::kPending;
    std::chrono::steady_clock::time_point deadline;  // of the upgrade, while pending
    bool expired = false;          // the deadline passed and the server shut it down
    ByteStream* stream = nullptr;  // while it exists: the server shuts it down on deadline/stop
    std::thread thread;            // joined once kDone (by the accept loop or stop())
  };
  using Clock = std::chrono::steady_clock;

  void acceptLoop();
  void acceptReady();
  // Starts serving `fd` unless a pending bound refuses it (then answers and closes it).
  void admit(UniqueFd fd, const sockaddr_storage& remote);
  // Shuts down pending connections past their deadline; returns the next deadline to watch.
  std::optional<Clock::time_point> expirePending(Clock::time_point now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Takes the threads of finished connections out of the list (to join without the lock).
  std::vector<std::thread> takeFinished() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void serveConnection(Connection& c, UniqueFd fd);
  // Serves an upgraded session of `kind` ("exec", "attach", "portforward").
  void serveSession(ByteStream& conn, const std::string& kind, const std::string& target,
                    const std::string& protocol, bool spdy, StreamRequest sreq);
  // kPending → kSession; false when the connection expired or max_sessions are served.
  bool beginSession(Connection& c);
  void finish(Connection& c);
  void track(Connection& c, ByteStream* s);
  void untrack(Connection& c);

  ServerOptions opts_;
  Backend& backend_;
  RequestCache cache_;
  FailureLimiter failures_;
  UniqueFd listen_fd_;
  std::string base_url_, listen_address_;
  std::thread acceptor_;
  std::unique_ptr<TlsContext> tls_;
  UniqueFd stop_r_, stop_w_;  // a pipe: readable once stop() began
  UniqueFd wake_r_, wake_w_;  // a pipe: a connection ended, the accept loop joins its thread
  std::atomic<bool> stopping_{false};

  mutable absl::Mutex mu_;
  std::list<std::unique_ptr<Connection>> conns_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> pending_by_peer_ ABSL_GUARDED_BY(mu_);
  int pending_ ABSL_GUARDED_BY(mu_) = 0;   // connections in kPending
  int sessions_ ABSL_GUARDED_BY(mu_) = 0;  // connections in kSession
  int running_ ABSL_GUARDED_BY(mu_) = 0;   // connections not yet kDone
};

}  // namespace berth::streaming
