// WebSocket (RFC 6455) framing for the streaming server and for test clients: the accept key,
// frame encoding (masked from clients, plain from servers) and an incremental parser.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "streaming/conn.h"

namespace berth::streaming {

enum class WsOpcode : uint8_t {
  kContinuation = 0,
  kText = 1,
  kBinary = 2,
  kClose = 8,
  kPing = 9,
  kPong = 10,
};

// Sec-WebSocket-Accept for a Sec-WebSocket-Key.
std::string wsAcceptKey(std::string_view client_key);

// One whole frame; `mask` for frames a client sends.
std::string encodeWsFrame(WsOpcode op, std::string_view payload, bool mask, bool fin = true);

struct WsFrame {
  bool fin = true;
  WsOpcode opcode = WsOpcode::kBinary;
  std::string payload;  // unmasked
};

// Feed bytes, take frames. Payloads above `max_payload` are an error.
class WsParser {
 public:
  explicit WsParser(size_t max_payload = 16u << 20) : max_(max_payload) {}
  void feed(std::string_view bytes) { buf_.append(bytes); }
  // True with a frame; false when more bytes are needed; an error for a malformed frame.
  [[nodiscard]] absl::Status next(WsFrame* frame, bool* got);

 private:
  size_t max_;
  std::string buf_;
};

// A server-side WebSocket connection: reads whole messages (reassembling fragments, answering
// pings and the close handshake), writes binary or text messages from any thread.
class WsConn {
 public:
  explicit WsConn(ByteStream& conn) : conn_(conn) {}
  // The next data message; false when the connection ended (closed by the peer or broken).
  bool readMessage(std::string* message, WsOpcode* opcode);
  bool writeMessage(std::string_view data, WsOpcode op = WsOpcode::kBinary);
  // Sends a close frame (status 1000 and `reason`) once; reading goes on until the peer's close.
  void close(std::string_view reason = "");
  ByteStream& conn() { return conn_; }

 private:
  ByteStream& conn_;
  WsParser parser_;
  bool close_sent_ = false;
  absl::Mutex close_mu_;
};

// A WebSocket used as a byte pipe (each write one binary message; message boundaries mean
// nothing): how clients tunnel SPDY through WebSocket (SPDY/3.1+portforward.k8s.io).
class WsTunnel : public ByteStream {
 public:
  explicit WsTunnel(WsConn& ws) : ws_(ws) {}
  bool readSome(std::string* out, size_t max = 64 * 1024) override;
  bool writeAll(std::string_view data) override { return ws_.writeMessage(data); }
  void endWrites(int linger_ms = 5000) override;
  void shutdownBoth() override { ws_.conn().shutdownBoth(); }
  void setReadTimeout(int ms) override { ws_.conn().setReadTimeout(ms); }
  void pushBack(std::string bytes) override { pending_ = std::move(bytes) + pending_; }

 private:
  WsConn& ws_;
  std::string pending_;
};

}  // namespace berth::streaming
