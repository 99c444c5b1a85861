// A server-side SPDY/3.1 session over a client connection: the read loop takes frames (PINGs
// are echoed here, SETTINGS and WINDOW_UPDATE absorbed); any thread may reply to streams and
// send data. Kubernetes clients (spdystream) open every stream; the server only answers.
#pragma once

#include <cstdint>
#include <string_view>

#include "absl/synchronization/mutex.h"
#include "streaming/conn.h"
#include "streaming/spdy_frame.h"

namespace berth::streaming {

// The protocol token of the HTTP upgrade.
inline constexpr char kSpdyUpgrade[] = "SPDY/3.1";

class SpdyConn {
 public:
  explicit SpdyConn(ByteStream& conn) : conn_(conn) {}
  // The next SYN_STREAM, DATA, RST_STREAM, HEADERS or GOAWAY; false when the connection ended
  // or broke. Read-loop thread only.
  bool readFrame(SpdyFrame* frame);
  // SYN_REPLY (no headers), accepting a stream the client opened.
  bool reply(uint32_t stream_id, bool fin = false);
  bool send(uint32_t stream_id, std::string_view data, bool fin = false);
  bool reset(uint32_t stream_id, SpdyRstStatus status);
  bool goAway();
  ByteStream& conn() { return conn_; }

 private:
  bool write(std::string_view bytes);

  ByteStream& conn_;
  SpdyCodec codec_;
  absl::Mutex mu_;  // encoding and writing, so that frames reach the wire in encoding order
  bool broken_ = false;
  std::string chunk_;
};

}  // namespace berth::streaming
