// Server: the stdio the shim holds for every container — output pipes (or a pty) copied to
// attached clients and, with a log_path, written to a CRI log file (so that logging goes on
// while berthd is down); a stdin pipe kept for attach; the reopen_log op for log rotation.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "shim/console.h"
#include "shim/server.h"
#include "shim/shim_log.h"

namespace berth::shim {
namespace {

std::string quote(const std::string& s) { return "\"" + s + "\""; }

// An attached client's output pipe: room for bursts while it forwards them.
constexpr int kAttachPipeSize = 1 << 20;

// A pipe whose ends are close-on-exec: the runtime gets one end through dup2 only.
Outcome makePipe(UniqueFd* read_end, UniqueFd* write_end) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return Outcome::fromErrno(errno, "pipe");
  read_end->reset(p[0]);
  write_end->reset(p[1]);
  return Outcome::success();
}

// Writes all of `data` to a non-blocking pipe if it fits now; false if it does not (or the
// reader is gone).
bool writeNow(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
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
  // Every container's output goes to the shim, logged or not: attach serves any running
  // container, and output nobody reads is dropped, never left to fill a pipe and block the
  // container. (A terminal's output is its pty, read from takeConsole() on.)
  if (r.ok() && !terminal) {
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
  UniqueFd master;
  Outcome r = receivePty(console, &master);
  if (!r.ok()) {
    r.message = "container " + quote(id) + ": " + r.message;
    return r;
  }
  ContainerIo& cio = ios_[id];
  cio.terminal = true;
  cio.pty.reset(::fcntl(master.get(), F_DUPFD_CLOEXEC, 0));
  if (!cio.pty.valid()) return Outcome::fromErrno(errno, "dup the container's pty");
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
  for (auto& [conn, a] : it->second.attachers) {
    UniqueFd& w = a.out[stream == LogStream::kStdout ? 0 : 1];
    if (!w.valid()) continue;
    if (eof) {
      w.reset();
    } else if (!writeNow(w.get(), data)) {
      SHIM_LOG_WARN("container %s: attached client %llu is not reading its output; detaching it",
                    id.c_str(), static_cast<unsigned long long>(conn));
      w.reset();
    }
  }
  // Without a log_path (or once the log is closed) the output goes to attachers only.
  if (it->second.log.isOpen()) {
    int64_t now = realtimeNs();
    if (!eof) {
      it->second.log.write(stream, data, now);
      return;
    }
    it->second.log.finish(stream, now);
  }
  if (!eof) return;
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
  if (Outcome r = checkRunning(id); !r.ok()) return replyError(conn, req_id, r);
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

Outcome Server::checkRunning(const std::string& id) const {
  auto c = containers_.find(id);
  if (c == containers_.end()) {
    return Outcome::error(Code::kNotFound,
                          "container " + quote(id) + " not found in pod " + quote(opts_.pod_id));
  }
  if (c->second.pid <= 0 || c->second.exited) {
    return Outcome::error(Code::kFailedPrecondition, "container " + quote(id) + " is not running");
  }
  return Outcome::success();
}

void Server::opAttach(uint64_t conn, uint64_t req_id, const Json& req) {
  std::string id;
  if (!getString(req, "container_id", &id) || !validContainerId(id)) {
    return replyError(conn, req_id,
                      Outcome::error(Code::kInvalidArgument, "invalid container id " + quote(id)));
  }
  auto fail = [&](Code code, const std::string& why) {
    replyError(conn, req_id, Outcome::error(code, "attach to container " + quote(id) + ": " + why));
  };
  if (Outcome r = checkRunning(id); !r.ok()) return replyError(conn, req_id, r);
  auto io = ios_.find(id);
  if (io == ios_.end() || !outputOpen(io->second)) {
    return fail(Code::kFailedPrecondition, "its output is closed");
  }
  ContainerIo& cio = io->second;
  if (cio.attachers.count(conn) != 0) return fail(Code::kAlreadyExists, "already attached");
  bool want[3] = {false, false, false};
  getBool(req, "stdin", &want[0]);
  getBool(req, "stdout", &want[1]);
  getBool(req, "stderr", &want[2]);
  Attacher a;
  std::vector<UniqueFd> fds;
  Json names = Json::array();
  if (want[0]) {
    if (!cio.stdin_w.valid()) {
      return fail(Code::kFailedPrecondition,
                  "it has no stdin (not created with stdin, or stdin_once and already used)");
    }
    fds.emplace_back(::fcntl(cio.stdin_w.get(), F_DUPFD_CLOEXEC, 0));
    names.push_back("stdin");
    a.stdin = true;
  }
  static const char* const kNames[2] = {"stdout", "stderr"};
  for (int s = 0; s < 2; ++s) {
    if (!want[1 + s] || !pipes_.isOpen(cio.pipes[s])) continue;
    UniqueFd read_end;
    Outcome r = makePipe(&read_end, &a.out[s]);
    if (!r.ok()) return fail(r.code, r.message);
    int flags = ::fcntl(a.out[s].get(), F_GETFL);
    if (flags >= 0) ::fcntl(a.out[s].get(), F_SETFL, flags | O_NONBLOCK);
    ::fcntl(a.out[s].get(), F_SETPIPE_SZ, kAttachPipeSize);  // best effort
    fds.push_back(std::move(read_end));
    names.push_back(kNames[s]);
  }
  if (cio.pty.valid()) {
    fds.emplace_back(::fcntl(cio.pty.get(), F_DUPFD_CLOEXEC, 0));
    names.push_back("pty");
  }
  for (const UniqueFd& fd : fds) {
    if (!fd.valid()) return fail(Code::kInternal, std::string("dup: ") + std::strerror(errno));
  }
  cio.attachers.emplace(conn, std::move(a));
  SHIM_LOG_INFO("container %s: client %llu attached", id.c_str(),
                static_cast<unsigned long long>(conn));
  Json body = Json::object();
  body["fds"] = std::move(names);
  body["tty"] = cio.terminal;
  replyWithFds(conn, req_id, std::move(body), std::move(fds));
}

void Server::opCloseStdin(uint64_t conn, uint64_t req_id, const Json& req) {
  std::string id;
  if (!getString(req, "container_id", &id) || !validContainerId(id)) {
    return replyError(conn, req_id,
                      Outcome::error(Code::kInvalidArgument, "invalid container id " + quote(id)));
  }
  auto io = ios_.find(id);
  bool closed = false;
  if (io != ios_.end() && io->second.stdin_once && io->second.stdin_w.valid()) {
    SHIM_LOG_INFO("container %s: closing its stdin (stdin_once)", id.c_str());
    io->second.stdin_w.reset();
    closed = true;
  }
  Json body = Json::object();
  body["closed"] = closed;
  reply(conn, req_id, std::move(body));
}

void Server::detachConnection(uint64_t conn) {
  for (auto& [id, cio] : ios_) {
    auto a = cio.attachers.find(conn);
    if (a == cio.attachers.end()) continue;
    if (a->second.stdin && cio.stdin_once && cio.stdin_w.valid()) {
      // stdin_once: the first attach that used stdin closes it (the container sees EOF once
      // the attacher's copy is closed too).
      SHIM_LOG_INFO("container %s: closing its stdin (stdin_once)", id.c_str());
      cio.stdin_w.reset();
    }
    cio.attachers.erase(a);
    SHIM_LOG_INFO("container %s: client %llu detached", id.c_str(),
                  static_cast<unsigned long long>(conn));
  }
}

}  // namespace berth::shim
