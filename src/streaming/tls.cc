#include "streaming/tls.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace berth::streaming {
namespace {

std::string sslErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown TLS error" : out;
}

// Waits for the socket; false on timeout or error. timeout_ms <= 0: no limit.
bool waitFor(int fd, short events, int timeout_ms) {
  pollfd p{fd, events, 0};
  for (;;) {
    int r = ::poll(&p, 1, timeout_ms > 0 ? timeout_ms : -1);
    if (r < 0 && errno == EINTR) continue;
    return r > 0;
  }
}

// OpenSSL writes to the socket with write(): to a peer that is gone that raises SIGPIPE,
// which kills a process that does not ignore it (berthctl, tests). Blocks SIGPIPE in this
// thread for one SSL call and discards the one the call raised.
class NoSigpipe {
 public:
  NoSigpipe() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~NoSigpipe() {
    if (sigismember(&old_, SIGPIPE) == 1) return;  // blocked by the caller: theirs to handle
    timespec zero{};
    while (sigtimedwait(&pipe_, nullptr, &zero) > 0) {
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  NoSigpipe(const NoSigpipe&) = delete;
  NoSigpipe& operator=(const NoSigpipe&) = delete;

 private:
  sigset_t pipe_, old_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<TlsContext>> TlsContext::server(const std::string& cert_file,
                                                               const std::string& key_file) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) return absl::InternalError(sslErrors());
  std::unique_ptr<TlsContext> c(new TlsContext(ctx));
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("TLS certificate ", cert_file, ": ", sslErrors()));
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("TLS key ", key_file, ": ", sslErrors()));
  }
  return c;
}

absl::StatusOr<std::unique_ptr<TlsContext>> TlsContext::insecureClient() {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) return absl::InternalError(sslErrors());
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  return std::unique_ptr<TlsContext>(new TlsContext(ctx));
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

absl::StatusOr<std::unique_ptr<TlsStream>> TlsStream::server(const TlsContext& ctx,
                                                            UniqueFd fd) {
  SSL* ssl = SSL_new(ctx.get());
  if (ssl == nullptr) return absl::InternalError(sslErrors());
  return std::unique_ptr<TlsStream>(new TlsStream(std::move(fd), ssl));
}

absl::StatusOr<std::unique_ptr<TlsStream>> TlsStream::connect(const TlsContext& ctx, UniqueFd fd,
                                                              const std::string& server_name,
                                                              int timeout_ms) {
  SSL* ssl = SSL_new(ctx.get());
  if (ssl == nullptr) return absl::InternalError(sslErrors());
  std::unique_ptr<TlsStream> s(new TlsStream(std::move(fd), ssl));
  if (!server_name.empty()) SSL_set_tlsext_host_name(ssl, server_name.c_str());
  absl::Status st = s->handshake(false, timeout_ms);
  if (!st.ok()) return st;
  return s;
}

absl::Status TlsStream::handshake(bool server, int timeout_ms) {
  int flags = ::fcntl(fd_.get(), F_GETFL);
  ::fcntl(fd_.get(), F_SETFL, flags | O_NONBLOCK);
  SSL_set_fd(ssl_, fd_.get());
  SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  absl::Time deadline = absl::Now() + absl::Milliseconds(timeout_ms);
  for (;;) {
    int r;
    {
      NoSigpipe no_sigpipe;
      r = server ? SSL_accept(ssl_) : SSL_connect(ssl_);
    }
    if (r == 1) return absl::OkStatus();
    int err = SSL_get_error(ssl_, r);
    int left = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (left <= 0) return absl::DeadlineExceededError("TLS handshake timed out");
    if (err == SSL_ERROR_WANT_READ) {
      if (!waitFor(fd_.get(), POLLIN, left)) return absl::DeadlineExceededError("TLS handshake timed out");
    } else if (err == SSL_ERROR_WANT_WRITE) {
      if (!waitFor(fd_.get(), POLLOUT, left)) return absl::DeadlineExceededError("TLS handshake timed out");
    } else {
      return absl::UnavailableError(absl::StrCat("TLS handshake: ", sslErrors()));
    }
  }
}

TlsStream::~TlsStream() { SSL_free(ssl_); }

bool TlsStream::readSome(std::string* out, size_t max) {
  if (!pending_.empty()) {
    out->swap(pending_);
    pending_.clear();
    return true;
  }
  out->resize(max);
  for (;;) {
    int n, err;
    {
      absl::MutexLock lock(&mu_);
      NoSigpipe no_sigpipe;  // reading may write (alerts, key updates)
      n = SSL_read(ssl_, out->data(), static_cast<int>(max));
      err = n > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl_, n);
    }
    if (n > 0) {
      out->resize(static_cast<size_t>(n));
      return true;
    }
    if (err == SSL_ERROR_WANT_READ) {
      if (!waitFor(fd_.get(), POLLIN, read_timeout_ms_)) break;
    } else if (err == SSL_ERROR_WANT_WRITE) {
      if (!waitFor(fd_.get(), POLLOUT, read_timeout_ms_)) break;
    } else {
      break;  // closed (close_notify or EOF) or broken
    }
  }
  out->clear();
  return false;
}

bool TlsStream::writeAll(std::string_view data) {
  while (!data.empty()) {
    int n, err;
    {
      absl::MutexLock lock(&mu_);
      NoSigpipe no_sigpipe;
      n = SSL_write(ssl_, data.data(), static_cast<int>(std::min<size_t>(data.size(), 1 << 30)));
      err = n > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl_, n);
    }
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (err == SSL_ERROR_WANT_WRITE) {
      if (!waitFor(fd_.get(), POLLOUT, 0)) return false;
    } else if (err == SSL_ERROR_WANT_READ) {
      if (!waitFor(fd_.get(), POLLIN, 0)) return false;
    } else {
      return false;
    }
  }
  return true;
}

void TlsStream::endWrites(int linger_ms) {
  {
    absl::MutexLock lock(&mu_);
    NoSigpipe no_sigpipe;
    SSL_shutdown(ssl_);  // close_notify; the peer's is not awaited here
  }
  read_timeout_ms_ = linger_ms;
  ::shutdown(fd_.get(), SHUT_WR);
}

void TlsStream::shutdownBoth() { ::shutdown(fd_.get(), SHUT_RDWR); }

}  // namespace berth::streaming
