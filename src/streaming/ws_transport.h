// Remote commands (exec, attach) over WebSocket, with every subprotocol Kubernetes' stream
// server accepts: none at all and channel.k8s.io (binary messages, one channel byte and data),
// base64.channel.k8s.io (text messages, an ASCII channel digit and base64 data), and their v4
// versions, which report the end as a Status JSON instead of plain text; v5.channel.k8s.io adds
// the close signal [255, channel] that ends the client's stdin.
#pragma once

#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "streaming/remote_command.h"
#include "streaming/websocket.h"

namespace berth::streaming {

inline constexpr char kWsProtocolV5[] = "v5.channel.k8s.io";
inline constexpr char kWsProtocolV4[] = "v4.channel.k8s.io";
inline constexpr char kWsProtocolV4Base64[] = "v4.base64.channel.k8s.io";
inline constexpr char kWsProtocolV1[] = "channel.k8s.io";
inline constexpr char kWsProtocolV1Base64[] = "base64.channel.k8s.io";
inline constexpr int kWsCloseChannel = 255;

// A remote-command subprotocol and what it means on the wire.
struct WsCommandProtocol {
  std::string_view name;  // "" for a client that offered none (the plain channel protocol)
  bool base64 = false;    // text messages: '0' + channel, then the data in base64
  int version = 1;        // 1: plain-text errors, nothing on success; 4: a Status JSON;
                          // 5: as 4, and the close signal
  bool statusJson() const { return version >= 4; }
  bool closeSignal() const { return version >= 5; }
};

// Every subprotocol served, newest first.
std::span<const WsCommandProtocol> wsCommandProtocols();
// The protocol named `name` ("" is the plain channel protocol); nullopt if not served.
std::optional<WsCommandProtocol> findWsCommandProtocol(std::string_view name);
// What a client offering `offered` (Sec-WebSocket-Protocol values, in its order of preference)
// gets: the first one served, as Kubernetes picks; an empty offer is the plain channel
// protocol, as kubelet's server takes it. nullopt when nothing offered is served.
std::optional<WsCommandProtocol> negotiateWsCommandProtocol(
    const std::vector<std::string>& offered);
// The names served, for a refusal ("v5.channel.k8s.io, v4.channel.k8s.io, ...").
std::string wsCommandProtocolList();

// A channel's data as one message of `protocol` (for both directions; the caller frames it).
struct WsChannelMessage {
  WsOpcode opcode = WsOpcode::kBinary;
  std::string payload;
};
WsChannelMessage encodeWsChannelMessage(const WsCommandProtocol& protocol, int channel,
                                        std::string_view data);
// The channel and data of a received message (text or binary, as Kubernetes takes either).
// False for one that carries none: empty, not a channel digit, or bad base64.
bool decodeWsChannelMessage(const WsCommandProtocol& protocol, std::string_view payload,
                            int* channel, std::string* data);

// The server's side of a command session on a WebSocket. next() on the session thread; send()
// from the output pump too (WsConn serialises writes).
class WsCommandTransport : public CommandTransport {
 public:
  WsCommandTransport(WsConn& ws, WsCommandProtocol protocol) : ws_(ws), protocol_(protocol) {}
  // The empty message the server sends first, on the lowest channel it writes to.
  bool open(bool stdout, bool stderr);
  ClientInput next() override;
  bool send(int channel, std::string_view data) override;
  // v4 and v5: the Status JSON; before v4 only a failure's message, nothing on success.
  void sendStatus(const CommandStatus& status) override;
  void closeChannel(int) override {}  // the connection's close ends every channel
  void finish() override;

 private:
  WsConn& ws_;
  WsCommandProtocol protocol_;
  ResizeDecoder resize_;
  std::deque<ClientInput> pending_;
};

}  // namespace berth::streaming
