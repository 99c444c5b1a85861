#include "streaming/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/logging.h"
#include "common/status.h"
#include "streaming/session.h"

namespace berth::streaming {
namespace {

namespace http = boost::beast::http;
using Clock = std::chrono::steady_clock;

spdlog::logger& log() {
  static auto l = logging::get("streaming");
  return *l;
}

// Lets a message through at most once per `every`; an attacker must not fill the log.
class LogThrottle {
 public:
  explicit LogThrottle(Clock::duration every) : every_(every) {}
  // True when the caller should log now; `*left_out` is how many were held back since.
  bool allow(int* left_out) {
    absl::MutexLock lock(&mu_);
    Clock::time_point now = Clock::now();
    if (now < next_) {
      ++left_out_;
      return false;
    }
    next_ = now + every_;
    *left_out = std::exchange(left_out_, 0);
    return true;
  }

 private:
  const Clock::duration every_;
  absl::Mutex mu_;
  Clock::time_point next_ ABSL_GUARDED_BY(mu_);
  int left_out_ ABSL_GUARDED_BY(mu_) = 0;
};

LogThrottle& acceptErrorLog() {
  static LogThrottle t(std::chrono::seconds(10));
  return t;
}
LogThrottle& refusalLog() {
  static LogThrottle t(std::chrono::seconds(10));
  return t;
}

// A complete HTTP answer, written before a connection is closed unread.
std::string plainAnswer(int code, const std::string& reason, const std::string& text) {
  return absl::StrCat("HTTP/1.1 ", code, " ", reason,
                      "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ",
                      text.size() + 1, "\r\nConnection: close\r\n\r\n", text, "\n");
}

bool isLoopback(const std::string& address) {
  in_addr a4{};
  if (::inet_pton(AF_INET, address.c_str(), &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
  in6_addr a6{};
  if (::inet_pton(AF_INET6, address.c_str(), &a6) != 1) return false;
  if (IN6_IS_ADDR_LOOPBACK(&a6)) return true;
  return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
}

// "0.0.0.0:10250", "[::]:10250".
std::string hostPort(const sockaddr_storage& ss) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6&>(ss);
    ::inet_ntop(AF_INET6, &a.sin6_addr, buf, sizeof buf);
    return absl::StrCat("[", buf, "]:", ntohs(a.sin6_port));
  }
  const auto& a = reinterpret_cast<const sockaddr_in&>(ss);
  ::inet_ntop(AF_INET, &a.sin_addr, buf, sizeof buf);
  return absl::StrCat(buf, ":", ntohs(a.sin_port));
}

int millisUntil(Clock::time_point t, Clock::time_point now) {
  if (t <= now) return 0;
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(t - now).count();
  return static_cast<int>(std::min<int64_t>(ms, int64_t{60000}));
}

}  // namespace

Server::Server(ServerOptions opts, Backend& backend)
    : opts_(std::move(opts)),
      backend_(backend),
      cache_(opts_.token_ttl, opts_.max_in_flight),
      failures_(opts_.max_failed_lookups, opts_.failure_window) {}

Server::~Server() { stop(); }

absl::Status Server::start() {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return lastErrnoStatus("pipe");
  stop_r_.reset(p[0]);
  stop_w_.reset(p[1]);
  if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) return lastErrnoStatus("pipe");
  wake_r_.reset(p[0]);
  wake_w_.reset(p[1]);
  if (!opts_.tls_cert_file.empty() || !opts_.tls_key_file.empty()) {
    auto ctx = TlsContext::server(opts_.tls_cert_file, opts_.tls_key_file);
    if (!ctx.ok()) return ctx.status();
    tls_ = std::move(ctx).value();
  }
  sockaddr_storage ss{};
  socklen_t len = 0;
  bool v6 = opts_.address.find(':') != std::string::npos;
  auto notAnAddress = [&] {
    return absl::InvalidArgumentError(
        absl::StrCat("streaming address \"", opts_.address, "\" is not an IP address"));
  };
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(static_cast<uint16_t>(opts_.port));
    if (::inet_pton(AF_INET6, opts_.address.c_str(), &a->sin6_addr) != 1) return notAnAddress();
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(static_cast<uint16_t>(opts_.port));
    if (::inet_pton(AF_INET, opts_.address.c_str(), &a->sin_addr) != 1) return notAnAddress();
    len = sizeof *a;
  }
  // Non-blocking: the accept loop polls it with the deadlines of pending connections.
  listen_fd_.reset(
      ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!listen_fd_.valid()) return lastErrnoStatus("streaming server socket");
  int one = 1;
  ::setsockopt(listen_fd_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(listen_fd_.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    return lastErrnoStatus(
        absl::StrCat("bind the streaming server to ", opts_.address, ":", opts_.port));
  }
  if (::listen(listen_fd_.get(), 128) != 0) return lastErrnoStatus("listen (streaming server)");
  sockaddr_storage bound{};
  socklen_t blen = sizeof bound;
  ::getsockname(listen_fd_.get(), reinterpret_cast<sockaddr*>(&bound), &blen);
  listen_address_ = hostPort(bound);
  int port = v6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  // URLs name an address clients can reach: a wildcard listener serves loopback too.
  std::string host = opts_.address;
  if (host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  const char* scheme = tls_ ? "https://" : "http://";
  base_url_ =
      v6 ? absl::StrCat(scheme, "[", host, "]:", port) : absl::StrCat(scheme, host, ":", port);
  acceptor_ = std::thread([this] { acceptLoop(); });
  log().info("streaming server listening on {} ({}; URLs start with {})", listen_address_,
             tls_ ? "TLS" : "plain HTTP", base_url_);
  if (!tls_ && !isLoopback(opts_.address)) {
    log().warn(
        "streaming server: exec/attach/port-forward streams are unauthenticated and "
        "unencrypted on {}; set [streaming] tls_cert_file and tls_key_file, or bind a "
        "loopback address",
        listen_address_);
  }
  return absl::OkStatus();
}

void Server::stop() {
  if (stopping_.exchange(true)) return;
  if (stop_w_.valid()) {
    char c = 1;
    (void)!::write(stop_w_.get(), &c, 1);  // never drained: stays readable
  }
  if (listen_fd_.valid()) ::shutdown(listen_fd_.get(), SHUT_RDWR);
  if (acceptor_.joinable()) acceptor_.join();
  std::vector<std::thread> threads;
  {
    absl::MutexLock lock(&mu_);
    auto shutdownAll = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      for (auto& c : conns_) {
        if (c->stream != nullptr) c->stream->shutdownBoth();
      }
    };
    shutdownAll();
    // Sessions end once their connection is gone and the stop pipe is readable; their
    // processes are killed on the way out. They use this object, so it waits for all of them.
    auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return running_ == 0; };
    while (!mu_.AwaitWithTimeout(absl::Condition(&done), absl::Seconds(10))) {
      log().warn("streaming server: waiting for {} connections to end", running_);
      shutdownAll();
    }
    for (auto& c : conns_) threads.push_back(std::move(c->thread));
    conns_.clear();
  }
  for (auto& t : threads) {
    if (t.joinable()) t.join();
  }
}

absl::StatusOr<std::string> Server::urlFor(StreamRequest req) {
  const char* kind = kindOf(req);
  auto token = cache_.insert(std::move(req));
  if (!token.ok()) return token.status();
  return absl::StrCat(base_url_, "/", kind, "/", *token);
}

void Server::acceptLoop() {
  Clock::time_point backoff_until{};  // after an accept error (EMFILE…): no accept before
  while (!stopping_) {
    std::optional<Clock::time_point> next;
    std::vector<std::thread> finished;
    {
      absl::MutexLock lock(&mu_);
      next = expirePending(Clock::now());
      finished = takeFinished();
    }
    for (auto& t : finished) t.join();  // each has returned from its last step already

    Clock::time_point now = Clock::now();
    bool backing_off = now < backoff_until;
    if (backing_off) next = std::min(next.value_or(backoff_until), backoff_until);
    pollfd fds[3] = {{listen_fd_.get(), static_cast<short>(backing_off ? 0 : POLLIN), 0},
                     {stop_r_.get(), POLLIN, 0},
                     {wake_r_.get(), POLLIN, 0}};
    int r = ::poll(fds, 3, next ? millisUntil(*next, now) : -1);
    if (stopping_) return;
    if (r < 0) continue;  // EINTR
    if (fds[2].revents != 0) {
      char buf[256];
      while (::read(wake_r_.get(), buf, sizeof buf) > 0) {
      }
    }
    if ((fds[0].revents & POLLIN) == 0) continue;
    for (int i = 0; i < 64 && !stopping_; ++i) {  // then deadlines and joins get their turn
      sockaddr_storage remote{};
      socklen_t rlen = sizeof remote;
      int fd =
          ::accept4(listen_fd_.get(), reinterpret_cast<sockaddr*>(&remote), &rlen, SOCK_CLOEXEC);
      if (fd >= 0) {
        admit(UniqueFd(fd), remote);
        continue;
      }
      int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK) break;
      // A connection that failed before we took it; the listener is fine.
      if (err == EINTR || err == ECONNABORTED || err == EPROTO) continue;
      if (stopping_) return;
      // EMFILE, ENFILE, ENOBUFS, ENOMEM: wait for resources to come back and retry; the
      // client waits in the listen backlog meanwhile.
      int left_out = 0;
      if (acceptErrorLog().allow(&left_out)) {
        log().warn("streaming server: accept: {} (retrying; {} more such errors not logged)",
                   std::strerror(err), left_out);
      }
      backoff_until = Clock::now() + std::chrono::milliseconds(100);
      break;
    }
  }
}

void Server::admit(UniqueFd fd, const sockaddr_storage& remote) {
  Peer peer = identifyPeer(fd.get(), remote);  // outside the lock: a netlink round trip
  std::string_view refusal;
  int waiting = 0;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    waiting = pending_by_peer_.contains(peer.key) ? pending_by_peer_[peer.key] : 0;
    if (waiting >= opts_.max_pending_per_peer) {
      refusal = "per peer";
    } else if (pending_ >= opts_.max_pending && !peer.privileged()) {
      refusal = "in all";
    } else {
      auto owned = std::make_unique<Connection>();
      Connection* c = owned.get();
      c->peer = std::move(peer);
      c->deadline = Clock::now() + absl::ToChronoNanoseconds(opts_.upgrade_timeout);
      int raw = fd.get();
      try {
        c->thread = std::thread([this, c, raw] {
          serveConnection(*c, UniqueFd(raw));
          finish(*c);
        });
      } catch (const std::system_error& e) {
        log().warn("streaming server: no thread for a connection: {}", e.what());
        return;  // `fd` closes the connection
      }
      (void)fd.release();  // the thread owns it now
      ++pending_by_peer_[c->peer.key];
      ++pending_;
      ++running_;
      conns_.push_back(std::move(owned));
      return;
    }
  }
  // Answered without reading the request: the client learns why, and nothing here waits.
  std::string answer =
      refusal == "per peer"
          ? plainAnswer(429, "Too Many Requests",
                        "too many connections from this client are waiting to start a session")
          : plainAnswer(503, "Service Unavailable",
                        "too many streaming connections are waiting; try again");
  (void)!::send(fd.get(), answer.data(), answer.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  int left_out = 0;
  if (refusalLog().allow(&left_out)) {
    log().warn(
        "streaming server: refused a connection from {} ({}): too many pending {} "
        "({} of this peer; {} more refusals not logged)",
        peer.address, peer.key, refusal, waiting, left_out);
  }
}

std::optional<Server::Clock::time_point> Server::expirePending(Clock::time_point now) {
  std::optional<Clock::time_point> next;
  for (auto& c : conns_) {
    if (c->state != Connection::State::kPending || c->expired) continue;
    if (c->deadline <= now) {
      c->expired = true;
      // Without a stream yet, track() shuts it down as soon as there is one.
      if (c->stream != nullptr) c->stream->shutdownBoth();
      log().debug("streaming: closed a connection from {} ({}) that did not upgrade in time",
                  c->peer.address, c->peer.key);
    } else if (!next || c->deadline < *next) {
      next = c->deadline;
    }
  }
  return next;
}

std::vector<std::thread> Server::takeFinished() {
  std::vector<std::thread> out;
  for (auto it = conns_.begin(); it != conns_.end();) {
    if ((*it)->state == Connection::State::kDone) {
      out.push_back(std::move((*it)->thread));
      it = conns_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

void Server::track(Connection& c, ByteStream* s) {
  absl::MutexLock lock(&mu_);
  c.stream = s;
  if (stopping_ || c.expired) s->shutdownBoth();
}

void Server::untrack(Connection& c) {
  absl::MutexLock lock(&mu_);
  c.stream = nullptr;
}

bool Server::beginSession(Connection& c) {
  absl::MutexLock lock(&mu_);
  if (c.expired || c.state != Connection::State::kPending) return false;
  if (sessions_ >= opts_.max_sessions) return false;
  c.state = Connection::State::kSession;
  --pending_;
  if (--pending_by_peer_[c.peer.key] <= 0) pending_by_peer_.erase(c.peer.key);
  ++sessions_;
  return true;
}

void Server::finish(Connection& c) {
  absl::MutexLock lock(&mu_);
  if (c.state == Connection::State::kPending) {
    --pending_;
    if (--pending_by_peer_[c.peer.key] <= 0) pending_by_peer_.erase(c.peer.key);
  } else if (c.state == Connection::State::kSession) {
    --sessions_;
  }
  c.state = Connection::State::kDone;
  --running_;
  char one = 1;
  (void)!::write(wake_w_.get(), &one, 1);  // full pipe: the loop wakes anyway
}

void Server::serveConnection(Connection& c, UniqueFd fd) {
  // The deadline was set before this thread started and never changes.
  auto millisLeft = [&c] { return millisUntil(c.deadline, Clock::now()); };
  std::unique_ptr<ByteStream> stream;
  TlsStream* tls = nullptr;
  if (tls_) {
    auto s = TlsStream::server(*tls_, std::move(fd));
    if (!s.ok()) {
      log().warn("streaming: {}", s.status().ToString());
      return;
    }
    tls = s->get();
    stream = std::move(s).value();
  } else {
    stream = std::make_unique<Conn>(std::move(fd), "");
  }
  ByteStream& conn = *stream;
  track(c, &conn);
  struct Untrack {  // before `stream` goes: the server must not reach a closed socket
    Server* s;
    Connection* c;
    ~Untrack() { s->untrack(*c); }
  } untrack{this, &c};
  if (tls != nullptr) {
    if (absl::Status st = tls->acceptHandshake(std::max(millisLeft(), 1)); !st.ok()) {
      log().debug("streaming: from {}: {}", c.peer.address, st.ToString());
      return;
    }
  }
  // Each read is bounded by what is left; the accept loop bounds the whole upgrade.
  conn.setReadTimeout(std::max(millisLeft(), 1));
  HttpRequest req;
  std::string rest;
  if (!readRequest(conn, &req, &rest)) return;
  std::string target(req.target());
  target = target.substr(0, target.find('?'));
  std::vector<std::string> parts = absl::StrSplit(target, '/', absl::SkipEmpty());
  if (parts.size() != 2 ||
      (parts[0] != "exec" && parts[0] != "attach" && parts[0] != "portforward")) {
    return respond(conn, http::status::not_found, "404 page not found");
  }
  if (req.method() != http::verb::get && req.method() != http::verb::post) {
    return respond(conn, http::status::method_not_allowed, "only GET and POST");
  }
  if (failures_.blocked(c.peer.key)) {
    int left_out = 0;
    if (refusalLog().allow(&left_out)) {
      log().warn(
          "streaming: {} ({}) presented too many unknown tokens; refusing it for now "
          "({} more refusals not logged)",
          c.peer.address, c.peer.key, left_out);
    }
    return respond(conn, http::status::too_many_requests,
                   "too many unknown streaming tokens from this client; try again later");
  }
  // The slot is taken before the token, so that a full server leaves the token usable.
  if (!beginSession(c)) {
    return respond(conn, http::status::service_unavailable,
                   "too many streaming sessions; try again");
  }
  auto taken = cache_.consume(parts[1]);
  if (!taken.has_value() || parts[0] != kindOf(*taken)) {
    failures_.recordFailure(c.peer.key);
    log().info("streaming: refused {} from {} with an unknown, used or expired token", parts[0],
               c.peer.address);
    return respond(conn, http::status::not_found,
                   "the streaming token is unknown, expired or already used");
  }
  serveUpgrade(conn, req, std::move(rest), std::move(*taken),
               SessionEnv{.backend = backend_,
                          .stream_creation_timeout = opts_.stream_creation_timeout,
                          .cancel_fd = stop_r_.get()});
}

}  // namespace berth::streaming
