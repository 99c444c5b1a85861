#include "streaming/session.h"

#include <boost/beast/core/flat_buffer.hpp>
#include <optional>
#include <sstream>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/logging.h"
#include "streaming/port_forward.h"
#include "streaming/remote_command.h"
#include "streaming/spdy_conn.h"
#include "streaming/spdy_transport.h"
#include "streaming/websocket.h"
#include "streaming/ws_transport.h"

namespace berth::streaming {
namespace {

namespace http = boost::beast::http;

spdlog::logger& log() {
  static auto l = logging::get("streaming");
  return *l;
}

// The values of a header that may repeat or list values with commas.
std::vector<std::string> headerValues(const HttpRequest& req, std::string_view name) {
  std::vector<std::string> out;
  for (const auto& field : req) {
    if (!absl::EqualsIgnoreCase(
            absl::string_view(field.name_string().data(), field.name_string().size()),
            absl::string_view(name.data(), name.size()))) {
      continue;
    }
    for (absl::string_view v :
         absl::StrSplit(absl::string_view(field.value().data(), field.value().size()), ',')) {
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

bool readRequest(ByteStream& io, HttpRequest* req, std::string* rest) {
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

void serveUpgrade(ByteStream& conn, const HttpRequest& req, std::string rest, StreamRequest sreq,
                  const SessionEnv& env) {
  const std::string kind = kindOf(sreq);
  bool exec_like = kind != "portforward";

  std::string upgrade = absl::AsciiStrToLower(std::string(req[http::field::upgrade]));
  bool ws = upgrade == "websocket";
  bool spdy = absl::EqualsIgnoreCase(upgrade, kSpdyUpgrade);
  if (!ws && !spdy) {
    return respond(conn, http::status::bad_request, "upgrade to SPDY/3.1 or websocket is required");
  }
  http::response<http::empty_body> res{http::status::switching_protocols, 11};
  res.set(http::field::connection, "Upgrade");
  std::string protocol;
  std::optional<WsCommandProtocol> ws_protocol;  // exec and attach over WebSocket
  if (ws) {
    std::string key(req[http::field::sec_websocket_key]);
    if (key.empty()) return respond(conn, http::status::bad_request, "missing Sec-WebSocket-Key");
    auto offered = headerValues(req, "Sec-WebSocket-Protocol");
    bool negotiated = false;
    if (exec_like) {
      ws_protocol = negotiateWsCommandProtocol(offered);
      negotiated = ws_protocol.has_value();
      if (negotiated) protocol = ws_protocol->name;
    } else {
      protocol = firstOf(offered, {kWsSpdyTunnel, kWsPortForwardProtocol, kPortForwardProtocolV1});
      negotiated = !protocol.empty();
    }
    if (!negotiated) {
      // 403, as Go's websocket server answers a failed subprotocol handshake.
      return respond(conn, http::status::forbidden,
                     absl::StrCat("unable to negotiate a websocket subprotocol: client offers [",
                                  absl::StrJoin(offered, ", "), "], server supports [",
                                  exec_like ? wsCommandProtocolList()
                                            : "SPDY/3.1+portforward.k8s.io, v4.channel.k8s.io, "
                                              "portforward.k8s.io",
                                  "]"));
    }
    res.set(http::field::upgrade, "websocket");
    res.set(http::field::sec_websocket_accept, wsAcceptKey(key));
    // A client that offered no subprotocol gets none named back (RFC 6455, 4.2.2).
    if (!protocol.empty()) res.set(http::field::sec_websocket_protocol, protocol);
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
  log().debug("streaming: {} session over {} ({})", kind, ws ? "websocket" : "spdy",
              protocol.empty() ? "no subprotocol" : protocol);

  if (auto* pf = std::get_if<PortForwardParams>(&sreq)) {
    PortDialer dial = [&env, pf](int32_t port) {
      return env.backend.dialPort(pf->sandbox_id, port);
    };
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
          for (absl::string_view p :
               absl::StrSplit(kv, absl::ByAnyChar(",%2C"), absl::SkipEmpty())) {
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
    absl::Status st =
        t->awaitStreams(want_in, want_out, want_err, tty, env.stream_creation_timeout);
    if (!st.ok()) {
      log().info("streaming: {}: {}", kind, st.ToString());
      return;
    }
    transport = std::move(t);
  } else {
    ws_conn = std::make_unique<WsConn>(conn);
    auto t = std::make_unique<WsCommandTransport>(*ws_conn, *ws_protocol);
    if (!t->open(want_out, want_err && !tty)) return;
    transport = std::move(t);
  }

  auto fail = [&](const absl::Status& st) {
    log().info("streaming: {}: {}", kind, st.ToString());
    transport->sendStatus(CommandStatus::failure(std::string(st.message())));
    transport->closeChannel(kErrorChannel);
    transport->finish();
    while (transport->next().kind != ClientInput::Kind::kGone) {
    }
  };
  if (auto* e = std::get_if<ExecParams>(&sreq)) {
    auto proc = env.backend.exec(*e);
    if (!proc.ok()) return fail(proc.status());
    if (!want_in && (*proc)->io.stdin.valid()) (*proc)->io.stdin.reset();
    CommandIo io;
    io.fds = &(*proc)->io;
    io.process = proc->get();
    io.cmd = e->cmd;
    io.cancel_fd = env.cancel_fd;
    serveCommand(*transport, std::move(io));
    // Destroying the process here kills it if it still runs (the client left).
  } else if (auto* a = std::get_if<AttachParams>(&sreq)) {
    auto att = env.backend.attach(*a);
    if (!att.ok()) return fail(att.status());
    CommandIo io;
    io.fds = &(*att)->io;
    AttachParams params = *a;
    io.on_stdin_end = [&env, params] { env.backend.attachStdinEnded(params); };
    io.cancel_fd = env.cancel_fd;
    serveCommand(*transport, std::move(io));
  }
}

}  // namespace berth::streaming
