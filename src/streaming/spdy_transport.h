// Remote commands over SPDY/3.1 (X-Stream-Protocol-Version v4.channel.k8s.io): the client
// opens one stream per channel, named by its "streamtype" header (error, stdin, stdout,
// stderr, resize); the server answers each and, once all it expects are open, runs the command.
#pragma once

#include <deque>
#include <map>
#include <set>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "streaming/remote_command.h"
#include "streaming/spdy_conn.h"

namespace berth::streaming {

inline constexpr char kSpdyProtocolV4[] = "v4.channel.k8s.io";

class SpdyCommandTransport : public CommandTransport {
 public:
  explicit SpdyCommandTransport(SpdyConn& spdy) : spdy_(spdy) {}
  // Answers the streams the client opens until those the request needs are there: error,
  // and stdin/stdout/stderr as asked; resize with a tty (and no stderr then).
  [[nodiscard]] absl::Status awaitStreams(bool stdin, bool stdout, bool stderr, bool tty,
                                          absl::Duration timeout);
  ClientInput next() override;
  bool send(int channel, std::string_view data) override;
  void closeChannel(int channel) override;
  void finish() override;

 private:
  // Answers a SYN_STREAM and records its channel; false for an unknown streamtype.
  bool accept(const SpdyFrame& syn);

  SpdyConn& spdy_;
  std::map<int, uint32_t> streams_;  // channel → stream id
  std::map<uint32_t, int> channels_;  // stream id → channel
  ResizeDecoder resize_;
  std::deque<ClientInput> pending_;
  bool stdin_ended_ = false;
  std::set<int> closed_;  // output channels already ended (FIN sent); pump thread only
};

}  // namespace berth::streaming
