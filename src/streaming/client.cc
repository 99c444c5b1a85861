#include "streaming/client.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/beast/http.hpp>
#include <algorithm>
#include <cerrno>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/status.h"
#include "nlohmann/json.hpp"
#include "streaming/remote_command.h"
#include "streaming/tls.h"

namespace berth::streaming {
namespace {

namespace http = boost::beast::http;

struct Url {
  std::string host, port, path;
  bool tls = false;
};

absl::StatusOr<Url> parseUrl(const std::string& url) {
  absl::string_view rest(url);
  bool tls = absl::ConsumePrefix(&rest, "https://");
  if (!tls && !absl::ConsumePrefix(&rest, "http://")) {
    return absl::InvalidArgumentError(absl::StrCat("not an http(s):// streaming URL: ", url));
  }
  size_t slash = rest.find('/');
  absl::string_view hostport = rest.substr(0, slash);
  Url u;
  u.tls = tls;
  u.path = slash == absl::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (!hostport.empty() && hostport.front() == '[') {
    size_t close = hostport.find(']');
    if (close == absl::string_view::npos) return absl::InvalidArgumentError("bad IPv6 host in " + url);
    u.host = std::string(hostport.substr(1, close - 1));
    absl::string_view p = hostport.substr(close + 1);
    absl::ConsumePrefix(&p, ":");
    u.port = p.empty() ? (tls ? "443" : "80") : std::string(p);
  } else {
    size_t colon = hostport.rfind(':');
    u.host = std::string(hostport.substr(0, colon));
    u.port = colon == absl::string_view::npos ? (tls ? "443" : "80")
                                              : std::string(hostport.substr(colon + 1));
  }
  return u;
}

absl::StatusOr<UniqueFd> dialTcp(const Url& u) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(u.host.c_str(), u.port.c_str(), &hints, &res);
  if (rc != 0) return absl::UnavailableError(absl::StrCat("resolve ", u.host, ": ", gai_strerror(rc)));
  absl::Status last = absl::UnavailableError("no address");
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    UniqueFd fd(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol));
    if (!fd.valid()) continue;
    if (::connect(fd.get(), a->ai_addr, a->ai_addrlen) == 0) {
      ::freeaddrinfo(res);
      return fd;
    }
    last = lastErrnoStatus(absl::StrCat("connect to ", u.host, ":", u.port));
  }
  ::freeaddrinfo(res);
  return last;
}

std::string randomKey() {
  unsigned char raw[16];
  RAND_bytes(raw, sizeof raw);
  unsigned char out[32];
  int n = EVP_EncodeBlock(out, raw, sizeof raw);
  return std::string(reinterpret_cast<char*>(out), static_cast<size_t>(n));
}

void parseStatus(CommandResult* r) {
  if (r->status_json.empty()) {
    r->exit_code = -1;
    r->message = "no status received";
    return;
  }
  auto j = nlohmann::json::parse(r->status_json, nullptr, false);
  if (!j.is_object()) {
    r->exit_code = -1;
    r->message = r->status_json;
    return;
  }
  if (j.value("status", "") == "Success") {
    r->exit_code = 0;
    return;
  }
  r->message = j.value("message", "");
  r->exit_code = -1;
  if (j.value("reason", "") == "NonZeroExitCode" && j.contains("details")) {
    for (const auto& c : j["details"].value("causes", nlohmann::json::array())) {
      int code = 0;
      if (c.value("reason", "") == "ExitCode" && absl::SimpleAtoi(c.value("message", ""), &code)) {
        r->exit_code = code;
      }
    }
  }
}

// The next data or close frame from a WebSocket server, answering its pings. False at the end
// of the stream; an error for a malformed frame.
absl::StatusOr<bool> nextWsFrame(ByteStream& c, WsParser& parser, WsFrame* f) {
  std::string chunk;
  for (;;) {
    bool got = false;
    if (!parser.next(f, &got).ok()) return absl::InternalError("bad websocket frame");
    if (!got) {
      if (!c.readSome(&chunk)) return false;
      parser.feed(chunk);
      continue;
    }
    if (f->opcode == WsOpcode::kPing) {
      c.writeAll(encodeWsFrame(WsOpcode::kPong, f->payload, true));
      continue;
    }
    if (f->opcode != WsOpcode::kPong) return true;
  }
}

// The client's end of a WebSocket used as a byte pipe (its frames masked).
class ClientWsTunnel : public ByteStream {
 public:
  explicit ClientWsTunnel(ByteStream& c) : c_(c) {}
  bool readSome(std::string* out, size_t) override {
    for (;;) {
      WsFrame f;
      auto more = nextWsFrame(c_, parser_, &f);
      if (!more.ok() || !*more || f.opcode == WsOpcode::kClose) return false;
      if (f.opcode == WsOpcode::kBinary && !f.payload.empty()) {
        *out = std::move(f.payload);
        return true;
      }
    }
  }
  bool writeAll(std::string_view data) override {
    return c_.writeAll(encodeWsFrame(WsOpcode::kBinary, data, true));
  }
  void endWrites(int linger_ms) override { c_.endWrites(linger_ms); }
  void shutdownBoth() override { c_.shutdownBoth(); }
  void setReadTimeout(int ms) override { c_.setReadTimeout(ms); }
  void pushBack(std::string bytes) override { c_.pushBack(std::move(bytes)); }

 private:
  ByteStream& c_;
  WsParser parser_;
};

}  // namespace

absl::StatusOr<UpgradeResult> upgrade(const std::string& url, Transport transport,
                                      const std::vector<std::string>& protocols) {
  if (transport == Transport::kSpdyInWebSocket) transport = Transport::kWebSocket;
  BERTH_ASSIGN_OR_RETURN(Url u, parseUrl(url));
  BERTH_ASSIGN_OR_RETURN(UniqueFd fd, dialTcp(u));
  http::request<http::empty_body> req{
      transport == Transport::kSpdy ? http::verb::post : http::verb::get, u.path, 11};
  req.set(http::field::host, u.host + ":" + u.port);
  req.set(http::field::connection, "Upgrade");
  std::string ws_key;
  if (transport == Transport::kSpdy) {
    req.set(http::field::upgrade, kSpdyUpgrade);
    for (const auto& p : protocols) req.insert("X-Stream-Protocol-Version", p);
    req.set(http::field::content_length, "0");
  } else {
    ws_key = randomKey();
    req.set(http::field::upgrade, "websocket");
    req.set(http::field::sec_websocket_key, ws_key);
    req.set(http::field::sec_websocket_version, "13");
    std::string list;
    for (const auto& p : protocols) list += (list.empty() ? "" : ", ") + p;
    if (!list.empty()) req.set(http::field::sec_websocket_protocol, list);
  }
  std::ostringstream out;
  out << req;
  std::unique_ptr<ByteStream> stream;
  if (u.tls) {
    BERTH_ASSIGN_OR_RETURN(auto ctx, TlsContext::insecureClient());
    BERTH_ASSIGN_OR_RETURN(stream, TlsStream::connect(*ctx, std::move(fd), u.host, 30000));
  } else {
    stream = std::make_unique<Conn>(std::move(fd), "");
  }
  ByteStream& tmp = *stream;
  if (!tmp.writeAll(out.str())) return absl::UnavailableError("send the upgrade request");
  http::response_parser<http::string_body> parser;
  parser.skip(false);
  std::string buf, chunk;
  size_t used_total = 0;
  for (;;) {
    if (!tmp.readSome(&chunk)) return absl::UnavailableError("the server closed the connection");
    buf += chunk;
    boost::beast::error_code ec;
    size_t off = used_total;
    for (;;) {
      size_t used = parser.put(boost::asio::buffer(buf.data() + off, buf.size() - off), ec);
      off += used;
      if (ec == http::error::need_more || used == 0) break;
      if (ec) return absl::InternalError(absl::StrCat("bad HTTP response: ", ec.message()));
      if (parser.is_header_done() && parser.get().result_int() == 101) break;
      if (parser.is_done()) break;
    }
    used_total = off;
    if (ec && ec != http::error::need_more) {
      return absl::InternalError(absl::StrCat("bad HTTP response: ", ec.message()));
    }
    bool upgraded = parser.is_header_done() && parser.get().result_int() == 101;
    if (upgraded || parser.is_done()) break;
  }
  auto& res = parser.get();
  UpgradeResult r;
  r.status = static_cast<int>(res.result_int());
  if (r.status != 101) {
    r.body = res.body();
    return r;
  }
  if (transport == Transport::kSpdy) {
    r.protocol = std::string(res["X-Stream-Protocol-Version"]);
  } else {
    r.protocol = std::string(res[http::field::sec_websocket_protocol]);
    if (std::string(res[http::field::sec_websocket_accept]) != wsAcceptKey(ws_key)) {
      return absl::InternalError("the server's Sec-WebSocket-Accept is wrong");
    }
  }
  tmp.pushBack(buf.substr(used_total));
  r.conn = std::move(stream);
  return r;
}

// ---- remote commands ----

absl::StatusOr<std::unique_ptr<CommandClient>> CommandClient::connect(const std::string& url,
                                                                      const CommandOptions& opts) {
  std::vector<std::string> protocols = opts.transport == Transport::kSpdy
                                           ? std::vector<std::string>{"v4.channel.k8s.io"}
                                           : opts.ws_protocols;
  BERTH_ASSIGN_OR_RETURN(UpgradeResult up, upgrade(url, opts.transport, protocols));
  if (up.status != 101) {
    return absl::FailedPreconditionError(
        absl::StrCat("the streaming server refused the upgrade (HTTP ", up.status, "): ",
                     absl::StripAsciiWhitespace(up.body)));
  }
  std::unique_ptr<CommandClient> c(new CommandClient());
  c->opts_ = opts;
  c->conn_ = std::move(up.conn);
  c->protocol_ = up.protocol;
  if (opts.transport == Transport::kWebSocket) {
    // The server may only pick one we offered, or none (then it is the plain protocol).
    bool offered = up.protocol.empty() ||
                   std::find(protocols.begin(), protocols.end(), up.protocol) != protocols.end();
    auto p = findWsCommandProtocol(up.protocol);
    if (!offered || !p) {
      return absl::InternalError(
          absl::StrCat("the streaming server chose a subprotocol not offered: ", up.protocol));
    }
    c->ws_protocol_ = *p;
    c->ws_parser_ = std::make_unique<WsParser>();
    return c;
  }
  c->codec_ = std::make_unique<SpdyCodec>();
  // Streams in the order client-go opens them, each answered before the next.
  std::vector<std::pair<int, const char*>> want = {{kErrorChannel, "error"}};
  if (opts.stdin) want.push_back({kStdinChannel, "stdin"});
  if (opts.stdout) want.push_back({kStdoutChannel, "stdout"});
  if (opts.stderr && !opts.tty) want.push_back({kStderrChannel, "stderr"});
  if (opts.tty) want.push_back({kResizeChannel, "resize"});
  uint32_t next_id = 1;
  std::string chunk;
  for (auto [channel, type] : want) {
    SpdySynStream syn;
    syn.stream_id = next_id;
    next_id += 2;
    syn.headers = {{"streamtype", type}};
    auto frame = c->codec_->encoder().synStream(syn);
    if (!frame.ok()) return frame.status();
    if (!c->conn_->writeAll(*frame)) return absl::UnavailableError("send SYN_STREAM");
    c->streams_[channel] = syn.stream_id;
    for (bool replied = false; !replied;) {
      auto f = c->codec_->parser().next();
      if (!f.ok()) return f.status();
      if (!f->has_value()) {
        if (!c->conn_->readSome(&chunk)) {
          return absl::UnavailableError(absl::StrCat("the server closed before answering ", type));
        }
        c->codec_->parser().feed(chunk);
        continue;
      }
      if ((*f)->type == SpdyFrameType::kSynReply && (*f)->stream_id == syn.stream_id) replied = true;
    }
  }
  return c;
}

CommandClient::~CommandClient() = default;

bool CommandClient::sendChannel(int channel, std::string_view data, bool fin) {
  if (opts_.transport == Transport::kWebSocket) {
    WsChannelMessage m = encodeWsChannelMessage(ws_protocol_, channel, data);
    return conn_->writeAll(encodeWsFrame(m.opcode, m.payload, /*mask=*/true));
  }
  auto it = streams_.find(channel);
  if (it == streams_.end()) return false;
  absl::MutexLock lock(&write_mu_);
  return conn_->writeAll(encodeSpdyData(it->second, data, fin));
}

bool CommandClient::writeStdin(std::string_view data) { return sendChannel(kStdinChannel, data, false); }

bool CommandClient::closeStdin() {
  if (opts_.transport == Transport::kWebSocket) {
    if (!ws_protocol_.closeSignal()) return false;
    std::string msg = {static_cast<char>(kWsCloseChannel), static_cast<char>(kStdinChannel)};
    return conn_->writeAll(encodeWsFrame(WsOpcode::kBinary, msg, /*mask=*/true));
  }
  return sendChannel(kStdinChannel, "", true);
}

bool CommandClient::resize(uint16_t width, uint16_t height) {
  return sendChannel(kResizeChannel,
                     absl::StrCat("{\"Width\":", width, ",\"Height\":", height, "}"), false);
}

void CommandClient::abort() { conn_->shutdownBoth(); }

absl::StatusOr<CommandResult> CommandClient::run(
    const std::function<void(int, std::string_view)>& output) {
  CommandResult r;
  r.protocol = protocol_;
  std::string chunk;
  if (opts_.transport == Transport::kWebSocket) {
    for (;;) {
      WsFrame f;
      BERTH_ASSIGN_OR_RETURN(bool more, nextWsFrame(*conn_, *ws_parser_, &f));
      if (!more) break;
      if (f.opcode == WsOpcode::kClose) {
        conn_->writeAll(encodeWsFrame(WsOpcode::kClose, f.payload.substr(0, 2), true));
        break;
      }
      // Fragmented messages are not reassembled: berth's server sends none.
      if (f.opcode != WsOpcode::kBinary && f.opcode != WsOpcode::kText) continue;
      if (f.payload.empty()) continue;
      int channel = 0;
      std::string data;
      if (!decodeWsChannelMessage(ws_protocol_, f.payload, &channel, &data)) {
        return absl::InternalError(absl::StrCat(
            "a websocket message the ", std::string(ws_protocol_.name), " protocol does not allow"));
      }
      if (channel == kErrorChannel) {
        r.status_json.append(data);
      } else if ((channel == kStdoutChannel || channel == kStderrChannel) && !data.empty()) {
        output(channel, data);
      }
    }
    if (ws_protocol_.statusJson()) {
      parseStatus(&r);
    } else {
      // Before v4 only an error is reported, as its message.
      r.exit_code = r.status_json.empty() ? 0 : -1;
      r.message = r.status_json;
    }
    return r;
  }
  std::map<uint32_t, int> channels;
  for (auto [ch, id] : streams_) channels[id] = ch;
  for (;;) {
    auto f = codec_->parser().next();
    if (!f.ok()) return f.status();
    if (!f->has_value()) {
      if (!conn_->readSome(&chunk)) break;
      codec_->parser().feed(chunk);
      continue;
    }
    SpdyFrame& fr = **f;
    if (fr.type == SpdyFrameType::kPing) {
      absl::MutexLock lock(&write_mu_);
      conn_->writeAll(encodeSpdyPing(fr.ping_id));
      continue;
    }
    if (fr.type == SpdyFrameType::kGoAway) break;
    if (fr.type != SpdyFrameType::kData) continue;
    auto it = channels.find(fr.stream_id);
    if (it == channels.end()) continue;
    if (it->second == kErrorChannel) {
      r.status_json += fr.data;
    } else if (!fr.data.empty()) {
      output(it->second, fr.data);
    }
  }
  parseStatus(&r);
  return r;
}

// ---- port-forward ----

absl::StatusOr<std::unique_ptr<PortForwardClient>> PortForwardClient::connect(
    const std::string& url, Transport transport, int32_t port) {
  std::string target = url;
  std::vector<std::string> protocols = {"portforward.k8s.io"};
  if (transport == Transport::kSpdyInWebSocket) protocols = {"SPDY/3.1+portforward.k8s.io"};
  if (transport == Transport::kWebSocket) {
    target += (target.find('?') == std::string::npos ? "?" : "&") + absl::StrCat("port=", port);
    protocols = {"v4.channel.k8s.io"};
  }
  BERTH_ASSIGN_OR_RETURN(UpgradeResult up, upgrade(target, transport, protocols));
  if (up.status != 101) {
    return absl::FailedPreconditionError(
        absl::StrCat("the streaming server refused the upgrade (HTTP ", up.status, "): ",
                     absl::StripAsciiWhitespace(up.body)));
  }
  std::unique_ptr<PortForwardClient> c(new PortForwardClient());
  c->transport_ = transport;
  c->port_ = port;
  c->conn_ = std::move(up.conn);
  if (transport == Transport::kWebSocket) {
    c->ws_parser_ = std::make_unique<WsParser>();
    return c;
  }
  c->spdy_io_ = c->conn_.get();
  if (transport == Transport::kSpdyInWebSocket) {
    c->tunnel_ = std::make_unique<ClientWsTunnel>(*c->conn_);
    c->spdy_io_ = c->tunnel_.get();
  }
  c->codec_ = std::make_unique<SpdyCodec>();
  c->error_id_ = 1;
  c->data_id_ = 3;
  for (auto [id, type] : {std::pair<uint32_t, const char*>{1, "error"}, {3, "data"}}) {
    SpdySynStream syn;
    syn.stream_id = id;
    syn.headers = {{"streamtype", type}, {"port", std::to_string(port)}, {"requestid", "0"}};
    auto frame = c->codec_->encoder().synStream(syn);
    if (!frame.ok()) return frame.status();
    if (!c->spdy_io_->writeAll(*frame)) return absl::UnavailableError("send SYN_STREAM");
  }
  // The client half-closes its error stream at once, as client-go does.
  c->spdy_io_->writeAll(encodeSpdyData(1, "", true));
  return c;
}

PortForwardClient::~PortForwardClient() = default;

bool PortForwardClient::write(std::string_view data) {
  if (transport_ == Transport::kWebSocket) {
    std::string msg(1, '\0');
    msg.append(data);
    return conn_->writeAll(encodeWsFrame(WsOpcode::kBinary, msg, true));
  }
  absl::MutexLock lock(&write_mu_);
  return spdy_io_->writeAll(encodeSpdyData(data_id_, data, false));
}

bool PortForwardClient::closeWrite() {
  if (transport_ == Transport::kWebSocket) return false;
  absl::MutexLock lock(&write_mu_);
  return spdy_io_->writeAll(encodeSpdyData(data_id_, "", true));
}

void PortForwardClient::close() { conn_->shutdownBoth(); }

absl::StatusOr<std::string> PortForwardClient::readAll(std::string* error_text,
                                                       absl::Duration timeout) {
  std::string data;
  BERTH_RETURN_IF_ERROR(readEach(
      [&](std::string_view bytes) {
        data.append(bytes);
        return true;
      },
      error_text, timeout));
  return data;
}

absl::Status PortForwardClient::readEach(const std::function<bool(std::string_view)>& sink,
                                         std::string* error_text, absl::Duration timeout) {
  conn_->setReadTimeout(timeout == absl::InfiniteDuration()
                            ? 0
                            : static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  std::string chunk;
  if (transport_ == Transport::kWebSocket) {
    bool first[2] = {true, true};
    for (;;) {
      WsFrame f;
      BERTH_ASSIGN_OR_RETURN(bool more, nextWsFrame(*conn_, *ws_parser_, &f));
      if (!more || f.opcode == WsOpcode::kClose) break;
      if (f.opcode != WsOpcode::kBinary || f.payload.empty()) continue;
      int channel = static_cast<unsigned char>(f.payload[0]);
      std::string_view body(f.payload);
      body.remove_prefix(1);
      if (channel > 1) continue;
      if (first[channel]) {  // the port, little-endian
        first[channel] = false;
        if (body.size() != 2 || (static_cast<unsigned char>(body[0]) |
                                 (static_cast<unsigned char>(body[1]) << 8)) != port_) {
          return absl::InternalError("the first message of a channel is not its port");
        }
        continue;
      }
      if (channel == 1) {
        error_text->append(body);
      } else if (!sink(body)) {
        return absl::OkStatus();
      }
    }
    return absl::OkStatus();
  }
  bool data_fin = false;
  while (!data_fin) {
    auto f = codec_->parser().next();
    if (!f.ok()) return f.status();
    if (!f->has_value()) {
      if (!spdy_io_->readSome(&chunk)) break;
      codec_->parser().feed(chunk);
      continue;
    }
    SpdyFrame& fr = **f;
    if (fr.type == SpdyFrameType::kGoAway) break;
    if (fr.type == SpdyFrameType::kRstStream && fr.stream_id == data_id_) break;
    if (fr.type != SpdyFrameType::kData) continue;
    if (fr.stream_id == data_id_) {
      if (!fr.data.empty() && !sink(fr.data)) return absl::OkStatus();
      data_fin = fr.fin();
    } else if (fr.stream_id == error_id_) {
      *error_text += fr.data;
    }
  }
  return absl::OkStatus();
}

}  // namespace berth::streaming
