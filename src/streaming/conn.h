// A client connection of the streaming server once its HTTP upgrade is done: one thread reads,
// any thread writes (writes are serialised). Bytes the HTTP parser read past the request are
// handed back first.
#pragma once

#include <string>
#include <string_view>

#include "absl/synchronization/mutex.h"
#include "common/unique_fd.h"

namespace berth::streaming {

// A byte stream between the server and one client: a TCP connection, or a WebSocket carrying
// another protocol (SPDY tunnelled for port-forward).
class ByteStream {
 public:
  virtual ~ByteStream() = default;
  virtual bool readSome(std::string* out, size_t max = 64 * 1024) = 0;
  virtual bool writeAll(std::string_view data) = 0;
  virtual void endWrites(int linger_ms = 5000) = 0;
  virtual void shutdownBoth() = 0;
  // Bounds each read (0: no bound).
  virtual void setReadTimeout(int ms) = 0;
  // Bytes read too far (past an HTTP request): the next read returns them first.
  virtual void pushBack(std::string bytes) = 0;
};

class Conn : public ByteStream {
 public:
  Conn(UniqueFd fd, std::string leftover) : fd_(std::move(fd)), buf_(std::move(leftover)) {}
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // Reads up to `max` bytes into `out` (replacing it); false at end of stream or on error.
  bool readSome(std::string* out, size_t max = 64 * 1024) override;
  // Writes everything (blocking); false when the peer is gone. Thread-safe.
  bool writeAll(std::string_view data) override;
  // No more writes: sends end-of-stream after what was written, and bounds further reading
  // (the peer's goodbye) to `linger_ms`. Thread-safe.
  void endWrites(int linger_ms = 5000) override;
  // Ends both directions. Thread-safe.
  void shutdownBoth() override;
  void setReadTimeout(int ms) override;
  void pushBack(std::string bytes) override { buf_ = std::move(bytes) + buf_; }

 private:
  UniqueFd fd_;
  std::string buf_;  // leftover from the HTTP parser, served before the socket
  absl::Mutex write_mu_;
};

}  // namespace berth::streaming
