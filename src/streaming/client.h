// A client of the Kubernetes streaming protocols, as kubectl and crictl speak them: remote
// commands (exec, attach) and port-forward, over SPDY/3.1 or WebSocket. berthctl uses it, and
// so do the integration tests, against berth's own streaming server.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "streaming/conn.h"
#include "streaming/spdy_conn.h"
#include "streaming/websocket.h"
#include "streaming/ws_transport.h"

namespace berth::streaming {

// kSpdyInWebSocket: SPDY carried in a WebSocket (SPDY/3.1+portforward.k8s.io), which crictl
// and kubectl use for port-forward over WebSocket.
enum class Transport { kSpdy, kWebSocket, kSpdyInWebSocket };

struct UpgradeResult {
  int status = 0;  // HTTP status; 101 when upgraded
  std::string protocol;  // the negotiated subprotocol
  std::string body;      // of a refusal
  std::unique_ptr<ByteStream> conn;
};

// Connects to `url` (http://host:port/path, or https:// without verifying the server, as
// crictl does without --tls-ca) and asks to upgrade to `transport`, offering
// `protocols` in order (WebSocket: none sends no Sec-WebSocket-Protocol header). A refusal is
// not an error: see `status` and `body`.
[[nodiscard]] absl::StatusOr<UpgradeResult> upgrade(const std::string& url, Transport transport,
                                                    const std::vector<std::string>& protocols);

struct CommandOptions {
  bool stdin = false, stdout = true, stderr = true, tty = false;
  Transport transport = Transport::kSpdy;
  // WebSocket: the subprotocols offered, in order of preference (any of ws_transport.h); none
  // sends no Sec-WebSocket-Protocol header, which servers take as the plain channel protocol.
  std::vector<std::string> ws_protocols = {kWsProtocolV5, kWsProtocolV4};
};

// The end of a remote command.
struct CommandResult {
  std::string protocol;     // the subprotocol the server chose ("" for none)
  std::string status_json;  // what came on the error channel ("" if nothing); plain text
                            // before v4
  int exit_code = 0;        // 0 for Success, the ExitCode cause for NonZeroExitCode, else -1
  std::string message;      // the Status message on failure
};

class CommandClient {
 public:
  static absl::StatusOr<std::unique_ptr<CommandClient>> connect(const std::string& url,
                                                                const CommandOptions& opts);
  ~CommandClient();

  // Any thread, while run() is reading.
  bool writeStdin(std::string_view data);
  // SPDY: FIN; WebSocket v5: the close signal. False on WebSocket before v5, which has no
  // way to end stdin but closing the connection.
  bool closeStdin();
  bool resize(uint16_t width, uint16_t height);
  // Reads output (channel 1 stdout, 2 stderr) until the server ends the command.
  absl::StatusOr<CommandResult> run(const std::function<void(int, std::string_view)>& output);
  // Drops the connection (as a client that goes away does).
  void abort();

 private:
  CommandClient() = default;
  bool sendChannel(int channel, std::string_view data, bool fin);

  CommandOptions opts_;
  std::unique_ptr<ByteStream> conn_;
  // SPDY
  std::unique_ptr<SpdyCodec> codec_;
  absl::Mutex write_mu_;
  std::map<int, uint32_t> streams_;  // channel → stream id
  // WebSocket
  std::unique_ptr<WsParser> ws_parser_;
  WsCommandProtocol ws_protocol_;
  std::string protocol_;  // negotiated (both transports)
};

// Port-forward: one forwarded connection to `port`, bridged through the session.
class PortForwardClient {
 public:
  // SPDY (portforward.k8s.io) or WebSocket (v4.channel.k8s.io with ?port=, one connection per
  // port per session).
  static absl::StatusOr<std::unique_ptr<PortForwardClient>> connect(const std::string& url,
                                                                    Transport transport,
                                                                    int32_t port);
  ~PortForwardClient();
  bool write(std::string_view data);
  // Ends the client's side of the forwarded connection (SPDY only; WebSocket has no half-close).
  bool closeWrite();
  // The bytes the remote side sent until it closed, and any error text.
  absl::StatusOr<std::string> readAll(std::string* error_text, absl::Duration timeout);
  // Hands over the remote side's bytes as they arrive, until it closed; false from `sink`
  // stops reading. Each read waits at most `timeout`.
  absl::Status readEach(const std::function<bool(std::string_view)>& sink,
                        std::string* error_text, absl::Duration timeout);
  void close();

 private:
  PortForwardClient() = default;
  Transport transport_ = Transport::kSpdy;
  int32_t port_ = 0;
  std::unique_ptr<ByteStream> conn_;
  std::unique_ptr<ByteStream> tunnel_;  // SPDY in WebSocket
  ByteStream* spdy_io_ = nullptr;       // where SPDY frames go: conn_ or tunnel_
  std::unique_ptr<SpdyCodec> codec_;
  absl::Mutex write_mu_;
  uint32_t data_id_ = 0, error_id_ = 0;
  std::unique_ptr<WsParser> ws_parser_;
};

}  // namespace berth::streaming
