#include "shim/console.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace berth::shim {

ConsoleSocket::~ConsoleSocket() {
  if (!path.empty()) ::unlink(path.c_str());
  if (!dir.empty()) ::rmdir(dir.c_str());
}

Outcome openConsoleSocket(ConsoleSocket* c) {
  char tmpl[] = "/tmp/berth-console-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return Outcome::fromErrno(errno, "make a console socket dir");
  c->dir = tmpl;
  std::string path = c->dir + "/console.sock";
  c->fd.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!c->fd.valid()) return Outcome::fromErrno(errno, "console socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (::bind(c->fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return Outcome::fromErrno(errno, "bind " + path);
  }
  c->path = path;
  if (::listen(c->fd.get(), 1) != 0) return Outcome::fromErrno(errno, "listen on " + path);
  return Outcome::success();
}

Outcome receivePty(int listen_fd, UniqueFd* master) {
  UniqueFd conn(::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
  if (!conn.valid()) return Outcome::fromErrno(errno, "accept the runtime's console connection");
  return receivePtyFrom(conn.get(), master);
}

Outcome sendPty(int conn_fd, int master) {
  char name[] = "/dev/ptmx";
  iovec iov{name, sizeof name - 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &master, sizeof master);
  if (::sendmsg(conn_fd, &msg, MSG_NOSIGNAL) < 0) return Outcome::fromErrno(errno, "send the pty");
  return Outcome::success();
}

Outcome receivePtyFrom(int conn_fd, UniqueFd* master) {
  char data[64];
  iovec iov{data, sizeof data};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = ::recvmsg(conn_fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Outcome::fromErrno(errno, "receive the pty");
  master->reset();
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      int fd = -1;
      std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
      master->reset(fd);
    }
  }
  if (!master->valid()) return Outcome::error(Code::kInternal, "the runtime sent no pty");
  int flags = ::fcntl(master->get(), F_GETFL);
  if (flags >= 0) ::fcntl(master->get(), F_SETFL, flags | O_NONBLOCK);
  return Outcome::success();
}

}  // namespace berth::shim
