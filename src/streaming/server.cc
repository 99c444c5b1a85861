#include "streaming/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/logging.h"
#include "common/status.h"
#include "streaming/port_forward.h"
#include "streaming/remote_command.h"
#include "streaming/spdy_conn.h"
#include "streaming/spdy_transport.h"
#include "streaming/websocket.h"
#include "streaming/ws_transport.h"

namespace berth::streaming {
namespace {

namespace http = boost::beast::http;
using Request = http::request<http::string_body>;

spdlog::logger& log() {
  static auto l = logging::get("streaming");
  return *l;
}

void respond(ByteStream& io, http::status status, const std::string& text) {
  http::response<http::string_body> res{status, 11};
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  res.set(http::field::connection, "close");
  res.body() = text + "\n";
  res.prepare_payload();
  std::ostringstream out;
  out << res;
  io.writeAll(out.str());
}

// Reads one HTTP request; `rest` gets the bytes after it.
bool readRequest(ByteStream& io, Request* req, std::string* rest) {
  http::request_parser<http::string_body> parser;
  parser.header_limit(16 * 1024);
  parser.body_limit(64 * 1024);
  parser.eager(true);
  std::string buf, chunk;
  for (;;) {
    if (!io.readSome(&chunk, 4096)) return false;
    if (buf.size() + chunk.size() > 64 * 1024) return false;
    buf.append(chunk);
    size_t off = 0;
    for (;;) {
      boost::beast::error_code ec;
      size_t used = parser.put(boost::asio::buffer(buf.data() + off, buf.size() - off), ec);
      off += used;
      if (ec == http::error::need_more) break;
      if (ec) return false;
      if (parser.is_done()) {
        *req = parser.release();
        *rest = buf.substr(off);
        return true;
      }
      if (used == 0) break;
    }
    buf.erase(0, off);
  }
}

// The values of a header that may repeat or list values with commas.
std::vector<std::string> headerValues(const Request& req, std::string_view name) {
  std::vector<std::string> out;
  for (const auto& field : req) {
    if (!absl::EqualsIgnoreCase(absl::string_view(field.name_string().data(), field.name_string().size()),
                                absl::string_view(name.data(), name.size()))) {
      continue;
    }
    for (absl::string_view v : absl::StrSplit(absl::string_view(field.value().data(), field.value().size()), ',')) {
      v = absl::StripAsciiWhitespace(v);
      if (!v.empty()) out.emplace_back(v);
    }
  }
  return out;
}

// The first protocol the client offers (in its order of preference) that we support.
std::string firstOf(const std::vector<std::string>& offered,
                    std::initializer_list<const char*> ours) {
  for (const auto& o : offered) {
    for (const char* p : ours) {
      if (o == p) return o;
    }
  }
  return "";
}

constexpr char kSpdyProtocolV5[] = "v5.channel.k8s.io";  // on SPDY the same as v4
constexpr char kWsSpdyTunnel[] = "SPDY/3.1+portforward.k8s.io";

}  // namespace

Server::Server(ServerOptions opts, Backend& backend)
    : opts_(std::move(opts)), backend_(backend), cache_(opts_.token_ttl, opts_.max_in_flight) {}

Server::~Server() { stop(); }

absl::Status Server::start() {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return lastErrnoStatus("pipe");
  stop_r_.reset(p[0]);
  stop_w_.reset(p[1]);
  if (!opts_.tls_cert_file.empty() || !opts_.tls_key_file.empty()) {
    auto ctx = TlsContext::server(opts_.tls_cert_file, opts_.tls_key_file);
    if (!ctx.ok()) return ctx.status();
    tls_ = std::move(ctx).value();
  }
  sockaddr_storage ss{};
  socklen_t len = 0;
  bool v6 = opts_.address.find(':') != std::string::npos;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(static_cast<uint16_t>(opts_.port));
    if (::inet_pton(AF_INET6, opts_.address.c_str(), &a->sin6_addr) != 1) {
      return absl::InvalidArgumentError(absl::StrCat("streaming address \"", opts_.address, "\" is not an IP address"));
    }
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(static_cast<uint16_t>(opts_.port));
    if (::inet_pton(AF_INET, opts_.address.c_str(), &a->sin_addr) != 1) {
      return absl::InvalidArgumentError(absl::StrCat("streaming address \"", opts_.address, "\" is not an IP address"));
    }
    len = sizeof *a;
  }
  listen_fd_.reset(::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listen_fd_.valid()) return lastErrnoStatus("streaming server socket");
  int one = 1;
  ::setsockopt(listen_fd_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(listen_fd_.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    return lastErrnoStatus(absl::StrCat("bind the streaming server to ", opts_.address, ":", opts_.port));
  }
  if (::listen(listen_fd_.get(), 128) != 0) return lastErrnoStatus("listen (streaming server)");
  sockaddr_storage bound{};
  socklen_t blen = sizeof bound;
  ::getsockname(listen_fd_.get(), reinterpret_cast<sockaddr*>(&bound), &blen);
  int port = v6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  std::string host = opts_.address;
  if (host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  const char* scheme = tls_ ? "https://" : "http://";
  base_url_ = v6 ? absl::StrCat(scheme, "[", host, "]:", port) : absl::StrCat(scheme, host, ":", port);
  acceptor_ = std::thread([this] { acceptLoop(); });
  log().info("streaming server listening on {}", base_url_);
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
  absl::MutexLock lock(&mu_);
  for (ByteStream* c : conns_) c->shutdownBoth();
  // Sessions end once their connection is gone and the stop pipe is readable; their
  // processes are killed on the way out. They use this object, so it waits for all of them.
  auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return sessions_ == 0; };
  while (!mu_.AwaitWithTimeout(absl::Condition(&done), absl::Seconds(10))) {
    log().warn("streaming server: waiting for {} sessions to end", sessions_);
    for (ByteStream* c : conns_) c->shutdownBoth();
  }
}

absl::StatusOr<std::string> Server::urlFor(StreamRequest req) {
  const char* kind = kindOf(req);
  auto token = cache_.insert(std::move(req));
  if (!token.ok()) return token.status();
  return absl::StrCat(base_url_, "/", kind, "/", *token);
}

void Server::acceptLoop() {
  while (!stopping_) {
    int fd = ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (stopping_) return;
      log().warn("streaming server: accept: {}", std::strerror(errno));
      ::usleep(100 * 1000);
      continue;
    }
    {
      absl::MutexLock lock(&mu_);
      if (sessions_ >= opts_.max_sessions) {
        static constexpr char kBusy[] =
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
            "Content-Length: 39\r\nConnection: close\r\n\r\n"
            "too many streaming sessions; try again\n";
        (void)!::send(fd, kBusy, sizeof kBusy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        ::close(fd);
        continue;
      }
      ++sessions_;
    }
    std::thread([this, fd] {
      serveConnection(UniqueFd(fd));
      absl::MutexLock lock(&mu_);
      --sessions_;
    }).detach();
  }
}

void Server::track(ByteStream* c) {
  absl::MutexLock lock(&mu_);
  conns_.insert(c);
  if (stopping_) c->shutdownBoth();
}

void Server::untrack(ByteStream* c) {
  absl::MutexLock lock(&mu_);
  conns_.erase(c);
}

void Server::serveConnection(UniqueFd fd) {
  int timeout_ms = static_cast<int>(absl::ToInt64Milliseconds(opts_.request_timeout));
  std::unique_ptr<ByteStream> stream;
  if (tls_) {
    auto tls = TlsStream::accept(*tls_, std::move(fd), timeout_ms);
    if (!tls.ok()) {
      log().info("streaming: {}", tls.status().ToString());
      return;
    }
    stream = std::move(tls).value();
  } else {
    stream = std::make_unique<Conn>(std::move(fd), "");
  }
  ByteStream& conn = *stream;
  track(&conn);
  struct Untrack {
    Server* s;
    ByteStream* c;
    ~Untrack() { s->untrack(c); }
  } untrack{this, &conn};
  conn.setReadTimeout(timeout_ms);
  Request req;
  std::string rest;
  if (!readRequest(conn, &req, &rest)) return;
  std::string target(req.target());
  target = target.substr(0, target.find('?'));
  std::vector<std::string> parts = absl::StrSplit(target, '/', absl::SkipEmpty());
  if (parts.size() != 2 || (parts[0] != "exec" && parts[0] != "attach" && parts[0] != "portforward")) {
    return respond(conn, http::status::not_found, "404 page not found");
  }
  if (req.method() != http::verb::get && req.method() != http::verb::post) {
    return respond(conn, http::status::method_not_allowed, "only GET and POST");
  }
  auto taken = cache_.consume(parts[1]);
  if (!taken.has_value() || parts[0] != kindOf(*taken)) {
    log().info("streaming: refused {} with an unknown, used or expired token", parts[0]);
    return respond(conn, http::status::not_found,
                   "the streaming token is unknown, expired or already used");
  }
  StreamRequest sreq = std::move(*taken);
  bool exec_like = parts[0] != "portforward";

  std::string upgrade = absl::AsciiStrToLower(std::string(req[http::field::upgrade]));
  bool ws = upgrade == "websocket";
  bool spdy = absl::EqualsIgnoreCase(upgrade, kSpdyUpgrade);
  if (!ws && !spdy) {
    return respond(conn, http::status::bad_request,
                   "upgrade to SPDY/3.1 or websocket is required");
  }
  http::response<http::empty_body> res{http::status::switching_protocols, 11};
  res.set(http::field::connection, "Upgrade");
  std::string protocol;
  if (ws) {
    std::string key(req[http::field::sec_websocket_key]);
    if (key.empty()) return respond(conn, http::status::bad_request, "missing Sec-WebSocket-Key");
    auto offered = headerValues(req, "Sec-WebSocket-Protocol");
    protocol = exec_like
                   ? firstOf(offered, {kWsProtocolV5, kWsProtocolV4})
                   : firstOf(offered, {kWsSpdyTunnel, kWsPortForwardProtocol, kPortForwardProtocolV1});
    if (protocol.empty()) {
      return respond(conn, http::status::bad_request,
                     absl::StrCat("unable to negotiate a websocket subprotocol; supported: ",
                                  exec_like ? "v5.channel.k8s.io, v4.channel.k8s.io"
                                            : "SPDY/3.1+portforward.k8s.io, v4.channel.k8s.io, "
                                              "portforward.k8s.io"));
    }
    res.set(http::field::upgrade, "websocket");
    res.set(http::field::sec_websocket_accept, wsAcceptKey(key));
    res.set(http::field::sec_websocket_protocol, protocol);
  } else {
    auto offered = headerValues(req, "X-Stream-Protocol-Version");
    if (offered.empty()) {
      return respond(conn, http::status::bad_request,
                     "unable to upgrade: X-Stream-Protocol-Version is required");
    }
    protocol = exec_like ? firstOf(offered, {kSpdyProtocolV5, kSpdyProtocolV4})
                         : firstOf(offered, {kPortForwardProtocolV1});
    if (protocol.empty()) {
      std::string ours = exec_like ? absl::StrCat(kSpdyProtocolV5, ", ", kSpdyProtocolV4)
                                   : std::string(kPortForwardProtocolV1);
      http::response<http::string_body> no{http::status::forbidden, 11};
      no.set(http::field::content_type, "text/plain; charset=utf-8");
      no.set(http::field::connection, "close");
      no.set("X-Accepted-Stream-Protocol-Versions", ours);
      no.body() = absl::StrCat("unable to upgrade: unable to negotiate protocol: client supports [",
                               absl::StrJoin(offered, ", "), "], server supports [", ours, "]\n");
      no.prepare_payload();
      std::ostringstream out;
      out << no;
      conn.writeAll(out.str());
      return;
    }
    res.set(http::field::upgrade, kSpdyUpgrade);
    res.set("X-Stream-Protocol-Version", protocol);
  }
  std::ostringstream head;
  head << res;
  if (!conn.writeAll(head.str())) return;
  conn.setReadTimeout(0);
  conn.pushBack(std::move(rest));
  log().debug("streaming: {} session over {} ({})", parts[0], ws ? "websocket" : "spdy", protocol);

  if (auto* pf = std::get_if<PortForwardParams>(&sreq)) {
    PortDialer dial = [this, pf](int32_t port) { return backend_.dialPort(pf->sandbox_id, port); };
    if (spdy) {
      SpdyConn s(conn);
      servePortForwardSpdy(s, dial, pf->sandbox_id);
    } else if (protocol == kWsSpdyTunnel) {
      WsConn w(conn);
      WsTunnel tunnel(w);
      SpdyConn s(tunnel);
      servePortForwardSpdy(s, dial, pf->sandbox_id);
    } else {
      std::vector<int32_t> ports = pf->ports;
      // The request's ports, or else those the client names in the query (?port=80&port=8080).
      std::string t(req.target());
      size_t q = t.find('?');
      if (ports.empty() && q != std::string::npos) {
        for (absl::string_view kv : absl::StrSplit(t.substr(q + 1), '&')) {
          if (!absl::ConsumePrefix(&kv, "ports=") && !absl::ConsumePrefix(&kv, "port=")) continue;
          for (absl::string_view p : absl::StrSplit(kv, absl::ByAnyChar(",%2C"), absl::SkipEmpty())) {
            int32_t n = 0;
            if (absl::SimpleAtoi(p, &n) && n > 0 && n < 65536) ports.push_back(n);
          }
        }
      }
      WsConn w(conn);
      servePortForwardWs(w, ports, dial, pf->sandbox_id);
    }
    return;
  }

  std::unique_ptr<SpdyConn> spdy_conn;
  std::unique_ptr<WsConn> ws_conn;
  std::unique_ptr<CommandTransport> transport;
  bool want_in = false, want_out = false, want_err = false, tty = false;
  if (auto* e = std::get_if<ExecParams>(&sreq)) {
    want_in = e->stdin, want_out = e->stdout, want_err = e->stderr, tty = e->tty;
  } else if (auto* a = std::get_if<AttachParams>(&sreq)) {
    want_in = a->stdin, want_out = a->stdout, want_err = a->stderr, tty = a->tty;
  }
  if (spdy) {
    spdy_conn = std::make_unique<SpdyConn>(conn);
    auto t = std::make_unique<SpdyCommandTransport>(*spdy_conn);
    absl::Status st = t->awaitStreams(want_in, want_out, want_err, tty, opts_.stream_creation_timeout);
    if (!st.ok()) {
      log().info("streaming: {}: {}", parts[0], st.ToString());
      return;
    }
    transport = std::move(t);
  } else {
    ws_conn = std::make_unique<WsConn>(conn);
    auto t = std::make_unique<WsCommandTransport>(*ws_conn, protocol == kWsProtocolV5);
    if (!t->open(want_out, want_err && !tty)) return;
    transport = std::move(t);
  }

  auto fail = [&](const absl::Status& st) {
    log().info("streaming: {}: {}", parts[0], st.ToString());
    transport->send(kErrorChannel, failureStatus(std::string(st.message())));
    transport->closeChannel(kErrorChannel);
    transport->finish();
    while (transport->next().kind != ClientInput::Kind::kGone) {
    }
  };
  if (auto* e = std::get_if<ExecParams>(&sreq)) {
    auto proc = backend_.exec(*e);
    if (!proc.ok()) return fail(proc.status());
    if (!want_in && (*proc)->io.stdin.valid()) (*proc)->io.stdin.reset();
    CommandIo io;
    io.fds = &(*proc)->io;
    io.process = proc->get();
    io.cmd = e->cmd;
    io.cancel_fd = stop_r_.get();
    serveCommand(*transport, std::move(io));
    // Destroying the process here kills it if it still runs (the client left).
  } else if (auto* a = std::get_if<AttachParams>(&sreq)) {
    auto att = backend_.attach(*a);
    if (!att.ok()) return fail(att.status());
    CommandIo io;
    io.fds = &(*att)->io;
    AttachParams params = *a;
    io.on_stdin_end = [this, params] { backend_.attachStdinEnded(params); };
    io.cancel_fd = stop_r_.get();
    serveCommand(*transport, std::move(io));
  }
}

}  // namespace berth::streaming
