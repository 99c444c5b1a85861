// Port forwarding into a pod: each forwarded connection is a TCP connection the server opens
// inside the pod's network namespace, bridged to a pair of client streams (data and error).
// SPDY (portforward.k8s.io): the client opens the pair per connection, with "port" and
// "requestid" headers. WebSocket (v4.channel.k8s.io, ports in the URL query): channel 2i is
// port i's data and 2i+1 its errors; each channel's first message is the port number.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/unique_fd.h"
#include "streaming/spdy_conn.h"
#include "streaming/websocket.h"

namespace berth::streaming {

inline constexpr char kPortForwardProtocolV1[] = "portforward.k8s.io";
inline constexpr char kWsPortForwardProtocol[] = "v4.channel.k8s.io";

// Opens a TCP connection to `port` in the pod (a blocking, connected socket).
using PortDialer = std::function<absl::StatusOr<UniqueFd>(int32_t port)>;

// Serves until the client closes the connection. `pod` names the pod in error messages.
void servePortForwardSpdy(SpdyConn& spdy, const PortDialer& dial, const std::string& pod);
void servePortForwardWs(WsConn& ws, const std::vector<int32_t>& ports, const PortDialer& dial,
                        const std::string& pod);

}  // namespace berth::streaming
