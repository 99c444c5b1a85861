// Server: the stdio the shim holds for its containers — output pipes written to CRI log files
// (so that logging goes on while berthd is down), a stdin pipe kept for attach, and the
// reopen_log op for kubelet's log rotation.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "shim/server.h"
#include "shim/shim_log.h"

namespace berth::shim {
namespace {

std::string quote(const std::string& s) { return "\"" + s + "\""; }

// A pipe whose ends are close-on-exec: the runtime gets one end through dup2 only.
Outcome makePipe(UniqueFd* read_end, UniqueFd* write_end) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return Outcome::fromErrno(errno, "pipe");
  read_end->reset(p[0]);
  write_end->reset(p[1]);
  return Outcome::success();
}

}  // namespace

Outcome Server::openContainerIo(const std::string& id, const Json& req, bool terminal,
                                RuntimeIo* io, UniqueFd child_ends[3]) {
  std::string log_path;
  bool want_stdin = false, stdin_once = false;
  int64_t max_line = static_cast<int64_t>(kDefaultMaxLogLine);
  getString(req, "log_path", &log_path);
  getBool(req, "stdin", &want_stdin);
  getBool(req, "stdin_once", &stdin_once);
  getInt(req, "max_log_line", &max_line);
  // A terminal's output is always read (a full pty would stop the container), logged or not.
  if (log_path.empty() && !want_stdin && !terminal) return Outcome::success();
  if (!log_path.empty() && log_path.front() != '/') {
    return Outcome::error(Code::kInvalidArgument,
                          "container " + quote(id) + ": log_path must be an absolute path");
  }
  if (max_line <= 0 || max_line > static_cast<int64_t>(kMaxFrameSize)) {
    return Outcome::error(
        Code::kInvalidArgument,
        "container " + quote(id) + ": max_log_line must be 1.." + std::to_string(kMaxFrameSize));
  }
  closeContainerIo(id);  // a leftover of an earlier container of that id
  ContainerIo& cio = ios_[id];
  cio.stdin_once = stdin_once;
  Outcome r;
  if (!log_path.empty()) r = cio.log.open(log_path, static_cast<size_t>(max_line));
  if (!log_path.empty() && !terminal) {
    for (int s = 0; s < 2 && r.ok(); ++s) {
      UniqueFd read_end;
      r = makePipe(&read_end, &child_ends[1 + s]);
      if (!r.ok()) break;
      auto stream = static_cast<LogStream>(s);
      cio.pipes[s] =
          pipes_.add(std::move(read_end), [this, id, stream](std::string_view data, bool eof) {
            onContainerOutput(id, stream, data, eof);
          });
    }
  }
  if (r.ok() && want_stdin && !terminal) {
    UniqueFd write_end;
    r = makePipe(&child_ends[0], &write_end);
    if (r.ok()) {
      int flags = ::fcntl(write_end.get(), F_GETFL);
      if (flags >= 0) ::fcntl(write_end.get(), F_SETFL, flags | O_NONBLOCK);
      cio.stdin_w = std::move(write_end);
    }
  }
  if (!r.ok()) {
    for (UniqueFd* e = child_ends; e != child_ends + 3; ++e) e->reset();
    for (uint64_t h : cio.pipes) pipes_.close(h);
    ios_.erase(id);
    r.message = "container " + quote(id) + ": " + r.message;
    return r;
  }
  io->stdin_fd = child_ends[0].get();
  if (child_ends[1].valid()) io->stdout_fd = child_ends[1].get();
  if (child_ends[2].valid()) io->stderr_fd = child_ends[2].get();
  return Outcome::success();
}

Outcome Server::takeConsole(const std::string& id, int console, bool want_stdin) {
  // The runtime connected and sent the master before its `create` returned: both wait in the
  // socket's queues.
  UniqueFd conn(::accept4(console, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
  if (!conn.valid()) return Outcome::fromErrno(errno, "accept the runtime's console connection");
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
    n = ::recvmsg(conn.get(), &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Outcome::fromErrno(errno, "receive the container's pty");
  UniqueFd master;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      int fd = -1;
      std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
      master.reset(fd);
    }
  }
  if (!master.valid()) {
    return Outcome::error(Code::kInternal, "the runtime sent no pty for container " + quote(id));
  }
  int flags = ::fcntl(master.get(), F_GETFL);
  if (flags >= 0) ::fcntl(master.get(), F_SETFL, flags | O_NONBLOCK);
  ContainerIo& cio = ios_[id];
  if (want_stdin) {
    cio.stdin_w.reset(::fcntl(master.get(), F_DUPFD_CLOEXEC, 0));
    if (!cio.stdin_w.valid()) return Outcome::fromErrno(errno, "dup the container's pty");
  }
  cio.pipes[0] = pipes_.add(std::move(master), [this, id](std::string_view data, bool eof) {
    onContainerOutput(id, LogStream::kStdout, data, eof);
  });
  return Outcome::success();
}

bool Server::outputOpen(const ContainerIo& io) const {
  return pipes_.isOpen(io.pipes[0]) || pipes_.isOpen(io.pipes[1]);
}

void Server::onContainerOutput(const std::string& id, LogStream stream, std::string_view data,
                               bool eof) {
  auto it = ios_.find(id);
  if (it == ios_.end()) return;
  int64_t now = realtimeNs();
  if (!eof) {
    it->second.log.write(stream, data, now);
    return;
  }
  it->second.log.finish(stream, now);
  if (outputOpen(it->second)) return;
  SHIM_LOG_DEBUG("container %s: output closed", id.c_str());
  // The log file stays open until delete: kubelet may still ask for a reopen.
  auto p = pending_exits_.find(id);
  if (p != pending_exits_.end()) recordExit(p->second.rec);
}

void Server::closeContainerIo(const std::string& id) {
  auto it = ios_.find(id);
  if (it == ios_.end()) return;
  uint64_t handles[2] = {it->second.pipes[0], it->second.pipes[1]};
  // Reading what is left calls onContainerOutput (which may record a held-back exit).
  for (uint64_t h : handles) pipes_.drainAndClose(h);
  ios_.erase(id);
  auto p = pending_exits_.find(id);
  if (p != pending_exits_.end()) recordExit(p->second.rec);
}

void Server::opReopenLog(uint64_t conn, uint64_t req_id, const Json& req) {
  std::string id;
  if (!getString(req, "container_id", &id) || !validContainerId(id)) {
    return replyError(conn, req_id,
                      Outcome::error(Code::kInvalidArgument, "invalid container id " + quote(id)));
  }
  auto c = containers_.find(id);
  if (c == containers_.end()) {
    return replyError(
        conn, req_id,
        Outcome::error(Code::kNotFound,
                       "container " + quote(id) + " not found in pod " + quote(opts_.pod_id)));
  }
  if (c->second.pid <= 0 || c->second.exited) {
    return replyError(
        conn, req_id,
        Outcome::error(Code::kFailedPrecondition, "container " + quote(id) + " is not running"));
  }
  auto io = ios_.find(id);
  if (io == ios_.end() || io->second.log.path().empty()) {
    return replyError(
        conn, req_id,
        Outcome::error(Code::kFailedPrecondition, "container " + quote(id) + " has no log file"));
  }
  Outcome r = io->second.log.reopen();
  if (!r.ok()) {
    r.message = "container " + quote(id) + ": " + r.message;
    return replyError(conn, req_id, r);
  }
  SHIM_LOG_INFO("container %s: reopened its log %s", id.c_str(), io->second.log.path().c_str());
  reply(conn, req_id, Json::object());
}

}  // namespace berth::shim
