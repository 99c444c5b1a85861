#include "streaming/spdy_conn.h"

#include "common/logging.h"

namespace berth::streaming {

bool SpdyConn::readFrame(SpdyFrame* frame) {
  for (;;) {
    auto next = codec_.parser().next();
    if (!next.ok()) {
      logging::get("streaming")->debug("spdy: {}", next.status().ToString());
      return false;
    }
    if (!next->has_value()) {
      if (!conn_.readSome(&chunk_)) return false;
      codec_.parser().feed(chunk_);
      continue;
    }
    SpdyFrame& f = **next;
    switch (f.type) {
      case SpdyFrameType::kPing:
        // We send no pings of our own, so every ping is the client's: echo it.
        if (!write(encodeSpdyPing(f.ping_id))) return false;
        continue;
      case SpdyFrameType::kSettings:
      case SpdyFrameType::kWindowUpdate:
        continue;  // no flow control: spdystream does not do it either
      default:
        *frame = std::move(f);
        return true;
    }
  }
}

bool SpdyConn::write(std::string_view bytes) { return conn_.writeAll(bytes); }

bool SpdyConn::reply(uint32_t stream_id, bool fin) {
  absl::MutexLock lock(&mu_);
  if (broken_) return false;
  auto frame = codec_.encoder().synReply(stream_id, {}, fin ? kSpdyFlagFin : 0);
  if (!frame.ok()) {
    broken_ = true;  // the compression context is lost with it
    return false;
  }
  return write(*frame);
}

bool SpdyConn::send(uint32_t stream_id, std::string_view data, bool fin) {
  if (data.empty() && !fin) return true;
  return write(encodeSpdyData(stream_id, data, fin));
}

bool SpdyConn::reset(uint32_t stream_id, SpdyRstStatus status) {
  return write(encodeSpdyRstStream(stream_id, status));
}

bool SpdyConn::goAway() { return write(encodeSpdyGoAway(0, SpdyGoAwayStatus::kOk)); }

}  // namespace berth::streaming
