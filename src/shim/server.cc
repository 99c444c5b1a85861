// Server: the shim's poll loop, connections, signals, reaping, exit recording and shutdown.
#include "shim/server.h"

#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "shim/oom_counter.h"
#include "shim/shim_log.h"

namespace berth::shim {
namespace {

// A subscriber that stops reading is dropped once this much output is queued for it.
constexpr size_t kMaxQueuedOutput = 64u << 20;
// Orphan statuses are kept this long, waiting for a `create` to claim their pid.
constexpr int64_t kOrphanTtlMs = 60000;
constexpr size_t kMaxOrphans = 256;
// A connection's send buffer above this is released once sent (after a large exec reply).
constexpr size_t kMaxKeptSendBuffer = 1u << 20;

// The earlier of two poll timeouts (-1: none).
int earlier(int a, int64_t b_ms) {
  if (b_ms < 0) return a;
  int b = b_ms > 3600000 ? 3600000 : static_cast<int>(b_ms);
  return a < 0 || b < a ? b : a;
}

Outcome writePidFile(const std::string& path) {
  std::string tmp = path + ".tmp";
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) return Outcome::fromErrno(errno, "create " + tmp);
  std::string text = std::to_string(::getpid()) + "\n";
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()) ||
      ::fsync(fd.get()) != 0) {
    return Outcome::fromErrno(errno, "write " + tmp);
  }
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Outcome::fromErrno(errno, "rename " + tmp);
  return Outcome::success();
}

}  // namespace

int exitCodeOf(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return 255;
}

Server::Server(ServerOptions opts)
    : opts_(std::move(opts)),
      sock_path_(opts_.dir + "/shim.sock"),
      pid_path_(opts_.dir + "/shim.pid"),
      runner_(opts_.runtime_path, opts_.runtime_root) {}

Outcome Server::init() {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  if (::sigprocmask(SIG_BLOCK, &mask, nullptr) != 0)
    return Outcome::fromErrno(errno, "sigprocmask");
  signal_fd_.reset(::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!signal_fd_.valid()) return Outcome::fromErrno(errno, "signalfd");
  ::signal(SIGPIPE, SIG_IGN);
  ::signal(SIGHUP, SIG_IGN);

  Outcome r = exits_.open(opts_.dir + "/exits");
  if (!r.ok()) return r;
  r = ooms_.open(opts_.dir + "/ooms");
  if (!r.ok()) return r;

  // Bind through /proc/self/fd/<dir fd>: a long state dir must not exceed the 107 bytes a
  // socket address holds.
  dir_fd_.reset(::open(opts_.dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir_fd_.valid()) return Outcome::fromErrno(errno, "open " + opts_.dir);
  std::string short_path = "/proc/self/fd/" + std::to_string(dir_fd_.get()) + "/shim.sock";
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, short_path.c_str(), short_path.size() + 1);

  // A live shim already serving this directory must not be displaced; a stale socket is.
  {
    UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (probe.valid() &&
        ::connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      return Outcome::error(Code::kAlreadyExists,
                            "another shim is already listening on " + sock_path_);
    }
  }
  ::unlink(sock_path_.c_str());

  r = writePidFile(pid_path_);
  if (!r.ok()) return r;

  listen_fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!listen_fd_.valid()) return Outcome::fromErrno(errno, "socket");
  mode_t old = ::umask(0177);  // the socket is created 0600
  int rc = ::bind(listen_fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  int err = errno;
  ::umask(old);
  if (rc != 0) return Outcome::fromErrno(err, "bind " + sock_path_);
  if (::listen(listen_fd_.get(), 64) != 0) return Outcome::fromErrno(errno, "listen " + sock_path_);
  SHIM_LOG_INFO("listening on %s (pid %d, runtime %s, root %s)", sock_path_.c_str(), ::getpid(),
                opts_.runtime_path.c_str(), opts_.runtime_root.c_str());
  return Outcome::success();
}

int Server::run() {
  std::vector<pollfd> fds;
  std::vector<uint64_t> ids;
  std::vector<std::string> oom_ids;
  while (phase_ != Phase::kDone) {
    fds.clear();
    ids.clear();
    fds.push_back({signal_fd_.get(), POLLIN, 0});
    fds.push_back({listen_fd_.get(), POLLIN, 0});
    for (auto& [id, c] : conns_) {
      short ev = POLLIN;
      if (!c->out.empty()) ev |= POLLOUT;
      fds.push_back({c->fd.get(), ev, 0});
      ids.push_back(id);
    }
    size_t first_pipe = fds.size();
    pipes_.addPollFds(&fds, &ids);
    size_t first_oom = fds.size();
    oom_ids.clear();
    for (auto& [cid, c] : containers_) {
      if (!c.oom_watch.valid()) continue;
      fds.push_back({c.oom_watch.get(), POLLIN, 0});
      oom_ids.push_back(cid);
    }
    int timeout = earlier(runner_.pollTimeoutMs(), onTimers());
    if (!orphans_.empty()) timeout = earlier(timeout, 10000);
    int n = ::poll(fds.data(), fds.size(), timeout);
    if (n < 0 && errno != EINTR) {
      SHIM_LOG_ERROR("poll: %s", std::strerror(errno));
      return 1;
    }
    if (n > 0) {
      if (fds[0].revents != 0) onSignals();
      if (fds[1].revents != 0) acceptClients();
      for (size_t i = first_pipe; i < first_oom; ++i) {
        if (fds[i].revents != 0) pipes_.onReady(ids[i - 2], fds[i].revents);
      }
      for (size_t i = first_oom; i < fds.size(); ++i) {
        if (fds[i].revents != 0) onOomNotice(oom_ids[i - first_oom]);
      }
      for (size_t i = 0; i + 2 < first_pipe; ++i) {
        short rev = fds[i + 2].revents;
        if (rev == 0) continue;
        auto it = conns_.find(ids[i]);
        if (it == conns_.end()) continue;
        Connection& c = *it->second;
        if ((rev & POLLOUT) != 0) flushClient(c);
        if ((rev & (POLLIN | POLLHUP | POLLERR)) != 0 && !c.closed) readClient(c);
      }
    }
    reap();
    for (auto it = conns_.begin(); it != conns_.end();) {
      Connection& c = *it->second;
      if (c.close_after_flush && c.out.empty()) c.closed = true;
      if (c.closed) {
        SHIM_LOG_DEBUG("connection %llu closed", static_cast<unsigned long long>(c.id));
        cancelExecsOf(c.id);
        detachConnection(c.id);
        it = conns_.erase(it);
      } else {
        ++it;
      }
    }
    int64_t now = monotonicMs();
    for (auto it = orphans_.begin(); it != orphans_.end();) {
      it = now - it->second.reaped_ms > kOrphanTtlMs ? orphans_.erase(it) : std::next(it);
    }
    pipes_.sweep();
    progressShutdown();
  }
  return 0;
}

void Server::acceptClients() {
  for (;;) {
    int fd = ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        SHIM_LOG_WARN("accept: %s", std::strerror(errno));
      return;
    }
    auto c = std::make_unique<Connection>();
    c->id = next_conn_id_++;
    c->fd.reset(fd);
    SHIM_LOG_DEBUG("connection %llu accepted", static_cast<unsigned long long>(c->id));
    conns_.emplace(c->id, std::move(c));
  }
}

void Server::readClient(Connection& c) {
  char buf[16384];
  for (;;) {
    ssize_t n = ::recv(c.fd.get(), buf, sizeof buf, 0);
    if (n > 0) {
      c.reader.append(buf, static_cast<size_t>(n));
      if (static_cast<size_t>(n) < sizeof buf) break;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    c.closed = true;  // EOF or error: the peer is gone
    break;
  }
  // Requests already received are still served (their side effects matter even if nobody
  // reads the reply).
  std::string body;
  while (!c.close_after_flush) {
    Outcome r = c.reader.next(&body);
    if (r.code == Code::kUnavailable) break;  // need more bytes
    if (!r.ok()) {
      SHIM_LOG_WARN("connection %llu: %s; closing it", static_cast<unsigned long long>(c.id),
                    r.message.c_str());
      replyError(c.id, 0, r);
      c.close_after_flush = true;
      break;
    }
    handleFrame(c, body);
  }
}

void Server::flushClient(Connection& c) {
  while (!c.out.empty()) {
    ssize_t n;
    if (!c.out_fds.empty()) {
      iovec iov{c.out.data(), c.out.size()};
      std::vector<char> control(CMSG_SPACE(sizeof(int) * c.out_fds.size()), 0);
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control.data();
      msg.msg_controllen = control.size();
      cmsghdr* cm = CMSG_FIRSTHDR(&msg);
      cm->cmsg_level = SOL_SOCKET;
      cm->cmsg_type = SCM_RIGHTS;
      cm->cmsg_len = CMSG_LEN(sizeof(int) * c.out_fds.size());
      for (size_t i = 0; i < c.out_fds.size(); ++i) {
        int fd = c.out_fds[i].get();
        std::memcpy(CMSG_DATA(cm) + i * sizeof(int), &fd, sizeof fd);
      }
      n = ::sendmsg(c.fd.get(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) c.out_fds.clear();  // they went with the first byte
    } else {
      n = ::send(c.fd.get(), c.out.data(), c.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    if (n > 0) {
      c.out.erase(0, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    c.closed = true;
    c.out.clear();
    break;
  }
  if (c.out.capacity() > kMaxKeptSendBuffer) {
    std::string().swap(c.out);
    ::malloc_trim(0);  // give a large exec reply's memory back to the system
  }
}

void Server::send(uint64_t conn_id, const Json& msg, size_t max_frame) {
  auto it = conns_.find(conn_id);
  if (it == conns_.end() || it->second->closed) return;  // the requester has gone away
  Connection& c = *it->second;
  std::string frame;
  Outcome r = encodeFrame(msg, &frame, max_frame);
  if (!r.ok()) {
    SHIM_LOG_ERROR("connection %llu: cannot encode a message: %s",
                   static_cast<unsigned long long>(conn_id), r.message.c_str());
    return;
  }
  if (c.out.size() + frame.size() > kMaxQueuedOutput) {
    SHIM_LOG_WARN("connection %llu is not reading; dropping it",
                  static_cast<unsigned long long>(conn_id));
    c.closed = true;
    c.out.clear();
    return;
  }
  if (c.out.empty()) {
    c.out = std::move(frame);
  } else {
    c.out += frame;
  }
  flushClient(c);
}

void Server::reply(uint64_t conn_id, uint64_t req_id, Json body, size_t max_frame) {
  Json msg = makeOkReply(req_id);
  if (body.is_object()) {
    for (auto& [k, v] : body.items()) msg[k] = std::move(v);
  }
  send(conn_id, msg, max_frame);
}

void Server::replyError(uint64_t conn_id, uint64_t req_id, const Outcome& error) {
  send(conn_id, makeErrorReply(req_id, error));
}

void Server::replyWithFds(uint64_t conn_id, uint64_t req_id, Json body,
                          std::vector<UniqueFd> fds) {
  auto it = conns_.find(conn_id);
  if (it == conns_.end() || it->second->closed) return;
  Connection& c = *it->second;
  Json msg = makeOkReply(req_id);
  for (auto& [k, v] : body.items()) msg[k] = std::move(v);
  std::string frame;
  Outcome r = encodeFrame(msg, &frame);
  if (!r.ok() || !c.out.empty()) {
    SHIM_LOG_ERROR("connection %llu: cannot pass descriptors%s",
                   static_cast<unsigned long long>(conn_id),
                   r.ok() ? " behind queued output" : (": " + r.message).c_str());
    c.closed = true;
    return;
  }
  c.out = std::move(frame);
  c.out_fds = std::move(fds);
  flushClient(c);
}

void Server::onSignals() {
  signalfd_siginfo si{};
  bool stop = false;
  while (::read(signal_fd_.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
    if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) stop = true;
  }
  reap();
  if (!stop) return;
  if (anyContainerRunning() || runner_.inFlight() > 0) {
    SHIM_LOG_WARN(
        "ignoring a termination signal: containers are still running "
        "(use the shutdown request to stop them)");
    return;
  }
  SHIM_LOG_INFO("terminating on signal: no container is running");
  finish();
}

bool Server::anyContainerRunning() const {
  return !inits_.empty() || !pending_exits_.empty() || !execs_.empty();
}

void Server::reap() {
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) {
      if (pid < 0 && errno == EINTR) continue;
      return;
    }
    int64_t at = realtimeNs();
    if (runner_.onExit(pid, status)) continue;
    auto it = inits_.find(pid);
    if (it != inits_.end()) {
      std::string id = it->second;
      onInitExit(id, pid, status, at);
      continue;
    }
    auto ex = exec_pids_.find(pid);
    if (ex != exec_pids_.end()) {
      onExecExit(ex->second, status);
      continue;
    }
    SHIM_LOG_DEBUG("reaped unknown child %d (exit code %d)", pid, exitCodeOf(status));
    if (orphans_.size() >= kMaxOrphans) orphans_.erase(orphans_.begin());
    orphans_[pid] = Orphan{status, at, monotonicMs()};
  }
}

void Server::onInitExit(const std::string& container_id, int pid, int wait_status, int64_t at_ns) {
  ExitRecord rec{container_id, pid, exitCodeOf(wait_status), at_ns, false};
  inits_.erase(pid);
  auto c = containers_.find(container_id);
  if (c != containers_.end() && c->second.pid == pid) {
    c->second.exited = true;
    // Now, before a `runtime delete` removes the cgroup.
    if (c->second.oom_base >= 0) {
      rec.oom = readOomKills(c->second.oom_counter) > c->second.oom_base;
    }
  }
  auto io = ios_.find(container_id);
  if (io != ios_.end() && outputOpen(io->second)) {
    SHIM_LOG_DEBUG("container %s exited; waiting for its output to drain", container_id.c_str());
    pending_exits_[container_id] = PendingExit{rec, monotonicMs() + kOutputDrainMs};
    return;
  }
  recordExit(rec);
}

Json Server::exitEvent(const ExitRecord& rec) {
  Json event = exitToJson(rec);
  event["v"] = kProtocolVersion;
  event["event"] = "exit";
  return event;
}

Json Server::oomEvent(const ExitRecord& rec) {
  Json event = exitToJson(rec);
  event["v"] = kProtocolVersion;
  event["event"] = "oom";
  return event;
}

void Server::pushToSubscribers(const Json& event) {
  std::vector<uint64_t> subs;
  for (auto& [id, conn] : conns_) {
    if (conn->subscriber && !conn->closed) subs.push_back(id);
  }
  for (uint64_t id : subs) send(id, event);
}

void Server::watchOom(const std::string& container_id, Container& c) {
  c.oom_seen = c.oom_base;
  if (c.oom_base < 0) return;
  std::string why;
  c.oom_watch = watchOomCounter(c.oom_counter, &why);
  if (!c.oom_watch.valid()) {
    SHIM_LOG_WARN(
        "container %s: cannot watch its OOM counter (%s); OOM kills are reported "
        "only with its exit",
        container_id.c_str(), why.c_str());
  }
}

void Server::onOomNotice(const std::string& container_id) {
  auto it = containers_.find(container_id);
  if (it == containers_.end()) return;
  Container& c = it->second;
  drainOomWatch(c.oom_watch.get());
  if (checkOom(container_id, c) || !c.oom_watch.valid()) return;
  // cgroup v1 signals before the kill is counted (or the kernel resolved the OOM without a
  // kill): look again shortly.
  c.oom_rechecks = 0;
  c.oom_recheck_ms = monotonicMs() + kOomRecheckMs;
}

bool Server::checkOom(const std::string& container_id, Container& c) {
  int64_t kills = readOomKills(c.oom_counter);
  if (kills < 0) {
    c.oom_watch.reset();  // the cgroup is gone
    c.oom_recheck_ms = -1;
    return false;
  }
  if (kills <= c.oom_seen) return false;
  c.oom_seen = kills;
  c.oom_recheck_ms = -1;
  ExitRecord rec{container_id, c.pid, 0, realtimeNs(), true};
  // Durable before anyone hears of it, as an exit; reported from memory if the disk refuses.
  if (Outcome r = ooms_.put(rec); !r.ok()) {
    SHIM_LOG_ERROR("container %s: cannot persist its OOM record: %s", container_id.c_str(),
                   r.message.c_str());
  }
  SHIM_LOG_INFO("container %s: a process was OOM-killed (%lld kills since the cgroup was made)",
                container_id.c_str(), static_cast<long long>(kills));
  pushToSubscribers(oomEvent(rec));
  return true;
}

// `rec` is a copy: it may come from pending_exits_, which this erases.
void Server::recordExit(ExitRecord rec) {
  const std::string& container_id = rec.container_id;
  pending_exits_.erase(container_id);
  // Durable before anyone hears of it. If the disk refuses, still report the exit (from
  // memory) rather than lose it.
  Outcome r = exits_.put(rec);
  if (!r.ok()) {
    SHIM_LOG_ERROR("container %s: cannot persist its exit record: %s", container_id.c_str(),
                   r.message.c_str());
  }
  SHIM_LOG_INFO("container %s (pid %d) exited with code %d%s", container_id.c_str(), rec.pid,
                rec.exit_code, rec.oom ? " (OOM-killed)" : "");

  Json fields = exitToJson(rec);
  auto w = waiters_.find(container_id);
  if (w != waiters_.end()) {
    std::vector<Waiter> list = std::move(w->second);
    waiters_.erase(w);
    for (const Waiter& waiter : list) reply(waiter.conn, waiter.req, fields);
  }
  pushToSubscribers(exitEvent(rec));
}

void Server::progressShutdown() {
  if (phase_ == Phase::kDraining) {
    if (runner_.inFlight() > 0) return;  // let running commands (e.g. a create) finish first
    for (auto& [pid, id] : inits_) {
      SHIM_LOG_INFO("shutdown: killing container %s (pid %d)", id.c_str(), pid);
      ::kill(pid, SIGKILL);
    }
    std::vector<std::string> ids;
    for (auto& [id, c] : containers_) ids.push_back(id);
    for (auto& [pid, id] : inits_) {
      if (containers_.count(id) == 0) ids.push_back(id);
    }
    phase_ = Phase::kDeleting;
    for (const std::string& id : ids) {
      RuntimeIo io;
      Outcome r = runner_.start({"delete", "--force", id}, io, opts_.runtime_timeout_ms,
                                [this, id](const RuntimeResult& res) {
                                  --deletes_pending_;
                                  if (!res.success()) {
                                    Outcome f = runtimeFailure("delete", id, res);
                                    if (f.code != Code::kNotFound) {
                                      SHIM_LOG_WARN("shutdown: %s", f.message.c_str());
                                    }
                                  }
                                  containers_.erase(id);
                                  closeContainerIo(id);
                                });
      if (r.ok()) {
        ++deletes_pending_;
      } else {
        SHIM_LOG_WARN("shutdown: container %s: %s", id.c_str(), r.message.c_str());
      }
    }
  }
  if (phase_ == Phase::kDeleting && deletes_pending_ == 0 && runner_.inFlight() == 0) {
    reap();
    // Nothing is left running: record held-back exits and end the execs still waiting.
    std::vector<std::string> ios;
    for (auto& [id, io] : ios_) ios.push_back(id);
    for (const std::string& id : ios) closeContainerIo(id);
    while (!pending_exits_.empty()) recordExit(pending_exits_.begin()->second.rec);
    std::vector<uint64_t> execs;
    for (auto& [serial, e] : execs_) execs.push_back(serial);
    for (uint64_t serial : execs) {
      failExec(serial, Outcome::error(Code::kUnavailable,
                                      "the shim of pod \"" + opts_.pod_id + "\" is shutting down"));
    }
    for (const Waiter& w : shutdown_waiters_) reply(w.conn, w.req, Json::object());
    finish();
  }
}

int Server::onTimers() {
  int64_t now = monotonicMs();
  int64_t next = -1;
  auto consider = [&](int64_t deadline) {
    if (deadline >= 0 && (next < 0 || deadline - now < next)) next = deadline - now;
  };
  std::vector<std::string> due;
  for (auto& [id, p] : pending_exits_) {
    if (p.deadline_ms <= now) {
      due.push_back(id);
    } else {
      consider(p.deadline_ms);
    }
  }
  for (const std::string& id : due) {
    SHIM_LOG_WARN(
        "container %s: its output is still open %lld ms after its exit; recording "
        "the exit now",
        id.c_str(), static_cast<long long>(kOutputDrainMs));
    recordExit(pending_exits_[id].rec);
  }
  std::vector<uint64_t> drained;
  for (auto& [serial, e] : execs_) {
    if (!e.exited && !e.timed_out && e.deadline_ms >= 0 && e.deadline_ms <= now) timeOutExec(e);
    if (!e.exited && !e.timed_out) consider(e.deadline_ms);
    if (e.exited && e.drain_deadline_ms <= now) drained.push_back(serial);
    if (e.exited) consider(e.drain_deadline_ms);
  }
  for (uint64_t serial : drained) maybeFinishExec(serial);
  for (auto& [id, c] : containers_) {
    if (c.oom_recheck_ms < 0) continue;
    if (c.oom_recheck_ms <= now) {
      if (checkOom(id, c)) continue;
      c.oom_recheck_ms =
          ++c.oom_rechecks < kOomRechecks ? now + (kOomRecheckMs << c.oom_rechecks) : -1;
    }
    consider(c.oom_recheck_ms);
  }
  return static_cast<int>(next < 0 ? -1 : next > 3600000 ? 3600000 : next);
}

void Server::finish() {
  ::unlink(sock_path_.c_str());
  ::unlink(pid_path_.c_str());
  listen_fd_.reset();
  // Give each connection a short, bounded chance to take its last replies.
  for (auto& [id, c] : conns_) {
    if (c->closed || c->out.empty()) continue;
    Outcome r = writeAll(c->fd.get(), c->out, monotonicMs() + 1000);
    (void)r;
  }
  conns_.clear();
  SHIM_LOG_INFO("shim exiting");
  phase_ = Phase::kDone;
}

}  // namespace berth::shim
