// TLS for the streaming server (and its client): a ByteStream over OpenSSL on a non-blocking
// socket. One thread reads while others write: every SSL call is made under one lock and never
// blocks there; waiting for the socket happens outside the lock.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/unique_fd.h"
#include "streaming/conn.h"

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;

namespace berth::streaming {

// A server context from a PEM certificate (chain) and key.
class TlsContext {
 public:
  static absl::StatusOr<std::unique_ptr<TlsContext>> server(const std::string& cert_file,
                                                            const std::string& key_file);
  // A client context that does not verify the server (as crictl without --tls-ca).
  static absl::StatusOr<std::unique_ptr<TlsContext>> insecureClient();
  ~TlsContext();
  SSL_CTX* get() const { return ctx_; }

 private:
  explicit TlsContext(SSL_CTX* ctx) : ctx_(ctx) {}
  SSL_CTX* ctx_;
};

class TlsStream : public ByteStream {
 public:
  // The server's side of an accepted socket, not handshaken yet: the server can end it with
  // shutdownBoth() while acceptHandshake() waits (deadline, stop).
  static absl::StatusOr<std::unique_ptr<TlsStream>> server(const TlsContext& ctx, UniqueFd fd);
  absl::Status acceptHandshake(int timeout_ms) { return handshake(true, timeout_ms); }
  // Handshakes on a connected socket as the client, within `timeout_ms`.
  static absl::StatusOr<std::unique_ptr<TlsStream>> connect(const TlsContext& ctx, UniqueFd fd,
                                                            const std::string& server_name,
                                                            int timeout_ms);
  ~TlsStream() override;

  bool readSome(std::string* out, size_t max = 64 * 1024) override;
  bool writeAll(std::string_view data) override;
  void endWrites(int linger_ms = 5000) override;
  void shutdownBoth() override;
  void setReadTimeout(int ms) override { read_timeout_ms_ = ms; }
  void pushBack(std::string bytes) override { pending_ = std::move(bytes) + pending_; }

 private:
  TlsStream(UniqueFd fd, SSL* ssl) : fd_(std::move(fd)), ssl_(ssl) {}
  absl::Status handshake(bool server, int timeout_ms);

  UniqueFd fd_;
  SSL* ssl_;
  absl::Mutex mu_;  // every SSL call
  std::string pending_;
  std::atomic<int> read_timeout_ms_{0};
};

}  // namespace berth::streaming
