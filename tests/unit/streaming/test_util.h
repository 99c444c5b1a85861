// Helpers for the streaming server's unit tests: a backend that refuses everything, raw TCP
// clients, and clients running as another user (a forked child that setuid()s).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "absl/strings/numbers.h"
#include "streaming/server.h"

namespace berth::streaming::testing {

class RefusingBackend : public Backend {
 public:
  absl::StatusOr<std::unique_ptr<shim::StreamedProcess>> exec(const ExecParams& p) override {
    return absl::NotFoundError("no container " + p.container_id);
  }
  absl::StatusOr<std::unique_ptr<shim::Attachment>> attach(const AttachParams& p) override {
    return absl::NotFoundError("no container " + p.container_id);
  }
  void attachStdinEnded(const AttachParams&) override {}
  absl::StatusOr<UniqueFd> dialPort(const std::string&, int32_t) override {
    return absl::UnavailableError("nothing listens");
  }
};

inline int portOf(const std::string& base) {
  int port = 0;
  EXPECT_TRUE(absl::SimpleAtoi(base.substr(base.rfind(':') + 1), &port)) << base;
  return port;
}

// A TCP connection to 127.0.0.1:port (-1 on failure). Only system calls: usable in a forked
// child of a process with threads.
inline int rawConnect(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);  // bounds connect()
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

inline UniqueFd connectTo(int port) {
  UniqueFd fd(rawConnect(port));
  EXPECT_TRUE(fd.valid()) << std::strerror(errno);
  return fd;
}

// Everything until the peer closes (or `timeout_ms` of silence).
inline std::string readAll(int fd, int timeout_ms = 10000) {
  std::string out;
  char buf[512];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return out;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

// What a connection looks like from the client: still open (nothing to read within
// `wait_ms`), or closed by the server, with the HTTP status it sent first (0: none).
struct ConnState {
  bool open = false;
  int status = 0;
};
inline ConnState probe(int fd, int wait_ms) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, wait_ms) == 0) return {.open = true};
  char buf[64] = {};
  ssize_t n = ::recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT);
  ConnState s;
  if (n >= 12 && std::strncmp(buf, "HTTP/1.1 ", 9) == 0) {
    s.status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
  }
  return s;
}

// The HTTP status the server answers `request` with (0: none, -1: no connection). System
// calls only, like rawConnect().
inline int rawRequestStatus(int port, const std::string& request) {
  int fd = rawConnect(port);
  if (fd < 0) return -1;
  int status = 0;
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
      static_cast<ssize_t>(request.size())) {
    status = probe(fd, 10000).status;
  }
  ::close(fd);
  return status;
}

// Runs `fn` in a child process as uid and gid `id`; the child exits with fn's result. `fn` may
// make system calls only (the parent has threads: no malloc, no locks). Returns the pid.
template <typename Fn>
pid_t forkAs(uid_t id, Fn fn) {
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(id) != 0 || ::setuid(id) != 0) ::_exit(120);
    ::_exit(fn());
  }
  return pid;
}

// The exit code of `pid` (-1 when it did not exit normally).
inline int waitExit(pid_t pid) {
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// A pipe whose ends close themselves.
struct Pipe {
  Pipe() {
    int p[2];
    EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
    r.reset(p[0]);
    w.reset(p[1]);
  }
  UniqueFd r, w;
};

inline constexpr uid_t kNobody = 65534;

}  // namespace berth::streaming::testing
