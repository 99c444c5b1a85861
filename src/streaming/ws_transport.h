// Remote commands over WebSocket (subprotocols v4.channel.k8s.io and v5.channel.k8s.io): each
// binary message is one channel byte and data. v5 adds the close signal [255, channel] that
// ends the client's stdin.
#pragma once

#include <deque>
#include <string>

#include "streaming/remote_command.h"
#include "streaming/websocket.h"

namespace berth::streaming {

inline constexpr char kWsProtocolV5[] = "v5.channel.k8s.io";
inline constexpr char kWsProtocolV4[] = "v4.channel.k8s.io";
inline constexpr int kWsCloseChannel = 255;

class WsCommandTransport : public CommandTransport {
 public:
  WsCommandTransport(WsConn& ws, bool v5) : ws_(ws), v5_(v5) {}
  // The empty message the server sends first, on the lowest channel it writes to.
  bool open(bool stdout, bool stderr);
  ClientInput next() override;
  bool send(int channel, std::string_view data) override;
  void closeChannel(int) override {}  // the connection's close ends every channel
  void finish() override;

 private:
  WsConn& ws_;
  bool v5_;
  ResizeDecoder resize_;
  std::deque<ClientInput> pending_;
};

}  // namespace berth::streaming
