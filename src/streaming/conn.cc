#include "streaming/conn.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace berth::streaming {

bool Conn::readSome(std::string* out, size_t max) {
  if (!buf_.empty()) {
    out->swap(buf_);
    buf_.clear();
    return true;
  }
  out->resize(max);
  for (;;) {
    ssize_t n = ::recv(fd_.get(), out->data(), max, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      out->clear();
      return false;
    }
    out->resize(static_cast<size_t>(n));
    return true;
  }
}

bool Conn::writeAll(std::string_view data) {
  absl::MutexLock lock(&write_mu_);
  while (!data.empty()) {
    ssize_t n = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

void Conn::endWrites(int linger_ms) {
  absl::MutexLock lock(&write_mu_);
  timeval tv{linger_ms / 1000, (linger_ms % 1000) * 1000};
  ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::shutdown(fd_.get(), SHUT_WR);
}

void Conn::shutdownBoth() { ::shutdown(fd_.get(), SHUT_RDWR); }

void Conn::setReadTimeout(int ms) {
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

}  // namespace berth::streaming
