// ShimClient: launching berth-shim, a pooled connection per caller, and one method per
// protocol op.
#include "shim/shim_client.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/fs.h"
#include "common/spawn.h"
#include "common/status.h"

namespace berth::shim {
namespace {

static_assert(static_cast<int>(absl::StatusCode::kNotFound) == static_cast<int>(Code::kNotFound));
static_assert(static_cast<int>(absl::StatusCode::kUnavailable) ==
              static_cast<int>(Code::kUnavailable));
static_assert(static_cast<int>(absl::StatusCode::kUnauthenticated) ==
              static_cast<int>(Code::kUnauthenticated));

constexpr size_t kMaxIdleConnections = 4;
constexpr int kReadyFd = 3;

absl::Status toStatus(const Outcome& o) {
  if (o.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(o.code), o.message);
}

int64_t deadlineFor(absl::Duration timeout) {
  if (timeout == absl::InfiniteDuration()) return -1;
  return monotonicMs() + absl::ToInt64Milliseconds(timeout);
}

std::string socketPath(const std::string& dir) { return dir + "/shim.sock"; }

// Connects to the shim serving `dir`. NotFound if there is no socket, Unavailable if nobody
// listens on it.
absl::StatusOr<UniqueFd> dial(const std::string& dir) {
  std::string path = socketPath(dir);
  // Connect through /proc/self/fd/<dir fd>, so that a long state dir never exceeds the
  // 107 bytes a socket address holds.
  UniqueFd dirfd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dirfd.valid()) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat("no shim socket at ", path));
    return lastErrnoStatus(absl::StrCat("open shim dir ", dir));
  }
  std::string short_path = absl::StrCat("/proc/self/fd/", dirfd.get(), "/shim.sock");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, short_path.c_str(), short_path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return lastErrnoStatus("socket");
  for (;;) {
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return fd;
    if (errno == EINTR) continue;
    int err = errno;
    if (err == ENOENT) {
      return absl::NotFoundError(absl::StrCat("no shim socket at ", path));
    }
    absl::Status st = errnoStatus(err, absl::StrCat("connect to shim socket ", path));
    return absl::UnavailableError(st.message());
  }
}

// The last few lines of the shim's log, for start-up errors.
std::string logTail(const std::string& dir) {
  auto text = readFile(dir + "/shim.log");
  if (!text.ok()) return "";
  std::vector<std::string> lines = absl::StrSplit(*text, '\n', absl::SkipEmpty());
  size_t from = lines.size() > 3 ? lines.size() - 3 : 0;
  std::string out;
  for (size_t i = from; i < lines.size(); ++i)
    absl::StrAppend(&out, out.empty() ? "" : " | ", lines[i]);
  return out;
}

absl::Status exitFromReply(const Json& j, ExitInfo* out) { return toStatus(exitFromJson(j, out)); }

// Kills a shim daemon that did not become ready, if `pid` is still a berth-shim.
void killStuckShim(const std::string& dir, const std::string& binary) {
  auto text = readFile(dir + "/shim.pid");
  if (!text.ok()) return;
  int pid = std::atoi(text->c_str());
  if (pid <= 1) return;
  char exe[4096];
  std::string link = absl::StrCat("/proc/", pid, "/exe");
  ssize_t n = ::readlink(link.c_str(), exe, sizeof exe - 1);
  if (n <= 0) return;
  exe[n] = '\0';
  std::string base = binary.substr(binary.rfind('/') + 1);
  if (std::string(exe).find(base) != std::string::npos) ::kill(pid, SIGKILL);
}

// The request fields both kinds of exec share.
Json execFields(const ExecOptions& opts) {
  Json f = Json::object();
  f["container_id"] = opts.container_id;
  f["exec_id"] = opts.exec_id;
  f["args"] = opts.args;
  f["env"] = opts.env;
  if (!opts.cwd.empty()) f["cwd"] = opts.cwd;
  if (opts.user.has_value()) {
    Json u = Json::object();
    u["uid"] = opts.user->uid;
    u["gid"] = opts.user->gid;
    if (!opts.user->additional_gids.empty()) u["additional_gids"] = opts.user->additional_gids;
    f["user"] = std::move(u);
  }
  f["tty"] = opts.tty;
  return f;
}

}  // namespace

ShimClient::ShimClient(std::string dir, std::string pod_id, absl::Duration call_timeout)
    : dir_(std::move(dir)), pod_id_(std::move(pod_id)), call_timeout_(call_timeout) {}

ShimClient::~ShimClient() = default;

void ShimClient::setCallTimeout(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  call_timeout_ = timeout;
}

absl::StatusOr<std::unique_ptr<ShimClient>> ShimClient::launch(const ShimConfig& cfg) {
  if (cfg.id.empty() || cfg.dir.empty() || cfg.runtime_path.empty() || cfg.runtime_root.empty() ||
      cfg.shim_binary.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("shim for pod \"", cfg.id,
                     "\": id, dir, runtime_path, runtime_root and shim_binary are required"));
  }
  BERTH_RETURN_IF_ERROR(makeDirs(cfg.dir, 0700));
  if (auto existing = dial(cfg.dir); existing.ok()) {
    return absl::AlreadyExistsError(
        absl::StrCat("a shim for pod \"", cfg.id, "\" is already running in ", cfg.dir));
  }

  std::vector<std::string> args = {cfg.shim_binary,
                                   "--id",
                                   cfg.id,
                                   "--dir",
                                   cfg.dir,
                                   "--runtime",
                                   cfg.runtime_path,
                                   "--runtime-root",
                                   cfg.runtime_root,
                                   "--log-level",
                                   cfg.log_level,
                                   "--ready-fd",
                                   std::to_string(kReadyFd),
                                   "--exec",
                                   cfg.exec_in_monitor ? "monitor" : "runtime"};
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return lastErrnoStatus("pipe for shim readiness");
  UniqueFd ready_r(p[0]), ready_w(p[1]);
  // The shim and what it starts (its runtime, the pod's containers) get a clean start and the
  // fd limit berthd was started with; the ready pipe is its fd 3. Its stderr is berthd's until
  // it has daemonized (then its log file).
  pid_t child = -1;
  int err = spawnProcess(
      {.argv = args, .stderr_fd = STDERR_FILENO, .fd3 = ready_w.get(), .close_other_fds = true},
      &child);
  if (err != 0) {
    if (err == ENOENT || err == EACCES) {
      return absl::InternalError(absl::StrCat("shim for pod \"", cfg.id,
                                              "\" could not be executed (", cfg.shim_binary,
                                              "): ", std::strerror(err)));
    }
    return errnoStatus(err, absl::StrCat("start shim for pod ", cfg.id));
  }
  ready_w.reset();

  // Wait for the ready byte, EOF (the shim failed) or the deadline.
  int64_t deadline = deadlineFor(cfg.start_timeout);
  char byte = 0;
  ssize_t got = -1;
  bool timed_out = false;
  for (;;) {
    int64_t left = deadline - monotonicMs();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd pfd{ready_r.get(), POLLIN, 0};
    int r = ::poll(&pfd, 1, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    got = ::read(ready_r.get(), &byte, 1);
    if (got < 0 && errno == EINTR) continue;
    break;
  }
  // The first shim process forks the daemon and exits at once; reap it (ECHILD is fine if
  // berthd's own reaper got there first).
  if (timed_out) ::kill(child, SIGKILL);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out || got != 1) {
    if (timed_out) killStuckShim(cfg.dir, cfg.shim_binary);
    std::string why = timed_out ? absl::StrCat("did not become ready within ",
                                               absl::FormatDuration(cfg.start_timeout))
                                : "exited before becoming ready";
    std::string tail = logTail(cfg.dir);
    std::string msg = absl::StrCat("shim for pod \"", cfg.id, "\" ", why);
    if (!tail.empty()) absl::StrAppend(&msg, "; its log says: ", tail);
    return timed_out ? absl::DeadlineExceededError(msg) : absl::InternalError(msg);
  }
  auto client = connect(cfg.dir, cfg.call_timeout);
  if (!client.ok()) return annotate(client.status(), absl::StrCat("shim for pod ", cfg.id));
  return client;
}

absl::StatusOr<std::unique_ptr<ShimClient>> ShimClient::connect(const std::string& dir,
                                                                absl::Duration call_timeout) {
  BERTH_ASSIGN_OR_RETURN(UniqueFd fd, dial(dir));
  std::unique_ptr<ShimClient> client(new ShimClient(dir, "", call_timeout));
  BERTH_ASSIGN_OR_RETURN(Json pong,
                         client->exchange(fd.get(), "ping", Json::object(), call_timeout));
  BERTH_RETURN_IF_ERROR(toStatus(replyOutcome(pong)));
  int64_t pid = 0;
  getInt(pong, "pid", &pid);
  getString(pong, "pod_id", &client->pod_id_);
  client->pid_ = static_cast<int>(pid);
  client->giveBack(std::move(fd));
  return client;
}

absl::Status ShimClient::transportError(const Outcome& o, absl::string_view op) const {
  if (o.code == Code::kDeadlineExceeded) {
    return absl::DeadlineExceededError(
        absl::StrCat("shim of pod \"", pod_id_, "\" did not answer \"", op, "\" in time"));
  }
  if (o.code == Code::kUnavailable || o.code == Code::kNotFound) {
    return absl::UnavailableError(
        absl::StrCat("shim of pod \"", pod_id_, "\" (", dir_, ") is not reachable: ", o.message));
  }
  return absl::Status(static_cast<absl::StatusCode>(o.code),
                      absl::StrCat("shim of pod \"", pod_id_, "\": ", op, ": ", o.message));
}

absl::StatusOr<Json> ShimClient::exchange(int fd, absl::string_view op, Json fields,
                                          absl::Duration timeout, size_t max_frame) {
  uint64_t id;
  {
    absl::MutexLock lock(&mu_);
    id = next_request_id_++;
  }
  Json req = makeRequest(id, std::string(op));
  if (fields.is_object()) {
    for (auto& [k, v] : fields.items()) req[k] = v;
  }
  int64_t deadline = deadlineFor(timeout);
  Outcome w = writeFrame(fd, req, deadline);
  if (!w.ok()) return transportError(w, op);
  for (;;) {
    Json reply;
    Outcome r = readFrame(fd, &reply, deadline, max_frame);
    if (!r.ok()) return transportError(r, op);
    if (reply.contains("event")) continue;  // not expected on a request connection
    int64_t rid = -1;
    getInt(reply, "id", &rid);
    if (rid != static_cast<int64_t>(id)) continue;  // a late reply to an abandoned request
    return reply;
  }
}

absl::StatusOr<UniqueFd> ShimClient::takeConnection() {
  {
    absl::MutexLock lock(&mu_);
    if (!idle_.empty()) {
      UniqueFd fd = std::move(idle_.back());
      idle_.pop_back();
      return fd;
    }
  }
  auto fd = dial(dir_);
  if (!fd.ok()) {
    return absl::UnavailableError(
        absl::StrCat("shim of pod \"", pod_id_, "\" is not reachable: ", fd.status().message()));
  }
  return fd;
}

void ShimClient::giveBack(UniqueFd fd) {
  absl::MutexLock lock(&mu_);
  if (idle_.size() < kMaxIdleConnections) idle_.push_back(std::move(fd));
}

absl::StatusOr<Json> ShimClient::call(absl::string_view op, Json fields, absl::Duration timeout) {
  BERTH_ASSIGN_OR_RETURN(UniqueFd fd, takeConnection());
  BERTH_ASSIGN_OR_RETURN(Json reply, exchange(fd.get(), op, std::move(fields), timeout));
  giveBack(std::move(fd));  // the exchange completed; the connection is reusable
  BERTH_RETURN_IF_ERROR(toStatus(replyOutcome(reply)));
  return reply;
}

absl::StatusOr<Json> ShimClient::callTimed(absl::string_view op, Json fields) {
  absl::Duration timeout;
  {
    absl::MutexLock lock(&mu_);
    timeout = call_timeout_;
  }
  return call(op, std::move(fields), timeout);
}

absl::StatusOr<int> ShimClient::create(const CreateOptions& opts) {
  Json f = Json::object();
  f["container_id"] = opts.container_id;
  f["bundle"] = opts.bundle;
  f["terminal"] = opts.terminal;
  if (!opts.log_path.empty()) f["log_path"] = opts.log_path;
  if (opts.max_log_line > 0) f["max_log_line"] = opts.max_log_line;
  if (opts.stdin) f["stdin"] = true;
  if (opts.stdin_once) f["stdin_once"] = true;
  if (opts.start) f["start"] = true;
  BERTH_ASSIGN_OR_RETURN(Json reply, callTimed("create", std::move(f)));
  int64_t pid = 0;
  if (!getInt(reply, "pid", &pid) || pid <= 0) {
    return absl::InternalError(absl::StrCat("shim of pod \"", pod_id_, "\": create of container \"",
                                            opts.container_id, "\" returned no pid"));
  }
  return static_cast<int>(pid);
}

absl::Status ShimClient::start(const std::string& id) {
  Json f = Json::object();
  f["container_id"] = id;
  return callTimed("start", std::move(f)).status();
}

absl::Status ShimClient::kill(const std::string& id, int signal, bool all) {
  Json f = Json::object();
  f["container_id"] = id;
  f["signal"] = signal;
  f["all"] = all;
  return callTimed("kill", std::move(f)).status();
}

absl::Status ShimClient::remove(const std::string& id, bool force) {
  Json f = Json::object();
  f["container_id"] = id;
  f["force"] = force;
  return callTimed("delete", std::move(f)).status();
}

const char* toString(ProcessStatus s) {
  static constexpr const char* kWords[] = {"created", "running", "paused",
                                           "stopped", "deleted", "unknown"};
  return kWords[static_cast<int>(s)];
}

ProcessStatus processStatusOf(std::string_view word) {
  for (ProcessStatus s : {ProcessStatus::kCreated, ProcessStatus::kRunning, ProcessStatus::kPaused,
                          ProcessStatus::kStopped}) {
    if (word == toString(s)) return s;
  }
  return ProcessStatus::kUnknown;
}

absl::StatusOr<RuntimeState> ShimClient::state(const std::string& id) {
  Json f = Json::object();
  f["container_id"] = id;
  BERTH_ASSIGN_OR_RETURN(Json reply, callTimed("state", std::move(f)));
  RuntimeState st;
  int64_t pid = 0;
  std::string word;
  getString(reply, "status", &word);
  st.status = processStatusOf(word);
  getInt(reply, "pid", &pid);
  st.pid = static_cast<int>(pid);
  return st;
}

absl::StatusOr<Json> ShimClient::callAlone(absl::string_view op, Json fields,
                                           absl::Duration timeout, size_t max_frame) {
  auto dialed = dial(dir_);
  if (!dialed.ok()) {
    return absl::UnavailableError(absl::StrCat("shim of pod \"", pod_id_,
                                               "\" is not reachable: ", dialed.status().message()));
  }
  UniqueFd fd = std::move(dialed).value();
  {
    absl::MutexLock lock(&mu_);
    if (closed_)
      return absl::CancelledError(absl::StrCat("shim client of pod \"", pod_id_, "\" is closed"));
    waiting_fds_.push_back(fd.get());
  }
  auto exchanged = exchange(fd.get(), op, std::move(fields), timeout, max_frame);
  {
    absl::MutexLock lock(&mu_);
    std::erase(waiting_fds_, fd.get());
    if (closed_)
      return absl::CancelledError(absl::StrCat("shim client of pod \"", pod_id_, "\" is closed"));
  }
  BERTH_ASSIGN_OR_RETURN(Json reply, std::move(exchanged));
  BERTH_RETURN_IF_ERROR(toStatus(replyOutcome(reply)));
  return reply;
}

absl::StatusOr<ExitInfo> ShimClient::wait(const std::string& id) {
  // Its own connection: the reply may take as long as the container runs.
  Json f = Json::object();
  f["container_id"] = id;
  BERTH_ASSIGN_OR_RETURN(Json reply,
                         callAlone("wait", std::move(f), absl::InfiniteDuration(), kMaxFrameSize));
  ExitInfo info;
  BERTH_RETURN_IF_ERROR(exitFromReply(reply, &info));
  return info;
}

void ShimClient::close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
  idle_.clear();
  // Wakes the threads blocked in wait(); they see closed_ and return Cancelled.
  for (int fd : waiting_fds_) ::shutdown(fd, SHUT_RDWR);
}

absl::StatusOr<std::vector<ExitInfo>> ShimClient::exits() {
  BERTH_ASSIGN_OR_RETURN(Json reply, callTimed("exits", Json::object()));
  std::vector<ExitInfo> out;
  auto it = reply.find("exits");
  if (it == reply.end() || !it->is_array()) {
    return absl::InternalError(
        absl::StrCat("shim of pod \"", pod_id_, "\": malformed exits reply"));
  }
  for (const Json& e : *it) {
    ExitInfo info;
    BERTH_RETURN_IF_ERROR(exitFromReply(e, &info));
    out.push_back(std::move(info));
  }
  return out;
}

absl::StatusOr<ExecResult> ShimClient::exec(const ExecOptions& opts) {
  Json f = execFields(opts);
  f["timeout_ms"] = opts.timeout_ms;
  f["output_limit"] = opts.output_limit;
  absl::Duration timeout = absl::InfiniteDuration();
  if (opts.timeout_ms > 0) {
    absl::MutexLock lock(&mu_);
    timeout = absl::Milliseconds(opts.timeout_ms) + call_timeout_;
  }
  BERTH_ASSIGN_OR_RETURN(Json reply, callAlone("exec", std::move(f), timeout, kMaxExecReplySize));
  ExecResult res;
  int64_t code = 0;
  std::string out64, err64;
  if (!getInt(reply, "exit_code", &code) || !getString(reply, "stdout", &out64) ||
      !getString(reply, "stderr", &err64) || !base64Decode(out64, &res.stdout) ||
      !base64Decode(err64, &res.stderr)) {
    return absl::InternalError(absl::StrCat("shim of pod \"", pod_id_,
                                            "\": malformed reply to exec \"", opts.exec_id,
                                            "\" in container \"", opts.container_id, "\""));
  }
  res.exit_code = static_cast<int>(code);
  getBool(reply, "truncated", &res.truncated);
  return res;
}

absl::Status ShimClient::closeStdinOnce(const std::string& id) {
  Json f = Json::object();
  f["container_id"] = id;
  return callTimed("close_stdin", std::move(f)).status();
}

absl::Status ShimClient::reopenLog(const std::string& id) {
  Json f = Json::object();
  f["container_id"] = id;
  return callTimed("reopen_log", std::move(f)).status();
}

absl::Status ShimClient::ackExit(const std::string& id, uint64_t seq) {
  Json f = Json::object();
  f["container_id"] = id;
  if (seq > 0) f["seq"] = seq;
  return callTimed("ack_exit", std::move(f)).status();
}

absl::Status ShimClient::ackOom(const std::string& id, uint64_t seq) {
  Json f = Json::object();
  f["container_id"] = id;
  f["seq"] = seq;
  return callTimed("ack_oom", std::move(f)).status();
}

absl::StatusOr<UniqueFd> ShimClient::ownConnection(absl::Duration* timeout) {
  auto dialed = dial(dir_);
  if (!dialed.ok()) {
    return absl::UnavailableError(absl::StrCat("shim of pod \"", pod_id_,
                                               "\" is not reachable: ", dialed.status().message()));
  }
  absl::MutexLock lock(&mu_);
  if (closed_)
    return absl::CancelledError(absl::StrCat("shim client of pod \"", pod_id_, "\" is closed"));
  *timeout = call_timeout_;
  return std::move(dialed).value();
}

absl::StatusOr<UniqueFd> ShimClient::subscribe() {
  absl::Duration timeout;
  BERTH_ASSIGN_OR_RETURN(UniqueFd fd, ownConnection(&timeout));
  BERTH_ASSIGN_OR_RETURN(Json reply, exchange(fd.get(), "subscribe", Json::object(), timeout));
  BERTH_RETURN_IF_ERROR(toStatus(replyOutcome(reply)));
  return fd;
}

absl::Status ShimClient::ping() { return callTimed("ping", Json::object()).status(); }

absl::Status ShimClient::shutdown() {
  absl::Duration timeout;
  {
    absl::MutexLock lock(&mu_);
    timeout = call_timeout_;
    idle_.clear();
  }
  auto dialed = dial(dir_);
  if (!dialed.ok()) {
    if (absl::IsNotFound(dialed.status()) || absl::IsUnavailable(dialed.status())) {
      return absl::OkStatus();  // already gone
    }
    return dialed.status();
  }
  UniqueFd fd = std::move(dialed).value();
  auto reply = exchange(fd.get(), "shutdown", Json::object(), timeout);
  if (!reply.ok()) {
    // The shim exiting under us is what was asked for.
    return absl::IsUnavailable(reply.status()) ? absl::OkStatus() : reply.status();
  }
  BERTH_RETURN_IF_ERROR(toStatus(replyOutcome(*reply)));
  // The shim closes every connection when it exits: wait (bounded) for that.
  int64_t deadline = deadlineFor(timeout);
  for (;;) {
    Json extra;
    Outcome r = readFrame(fd.get(), &extra, deadline);
    if (r.code == Code::kUnavailable) return absl::OkStatus();
    if (r.code == Code::kDeadlineExceeded) {
      return absl::DeadlineExceededError(absl::StrCat("shim of pod \"", pod_id_, "\" (pid ", pid_,
                                                      ") did not exit after shutdown"));
    }
  }
}

namespace {

// Reads exactly `n` bytes, keeping any descriptors that come with them.
Outcome recvExact(int fd, char* buf, size_t n, int64_t deadline_ms, std::vector<UniqueFd>* fds) {
  size_t got = 0;
  while (got < n) {
    if (deadline_ms >= 0) {
      int64_t left = deadline_ms - monotonicMs();
      if (left <= 0) return Outcome::error(Code::kDeadlineExceeded, "timed out reading a reply");
      pollfd p{fd, POLLIN, 0};
      int r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 1 << 30)));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return Outcome::fromErrno(errno, "poll");
      if (r == 0) continue;
    }
    iovec iov{buf + got, n - got};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 8)] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t r = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Outcome::error(Code::kUnavailable, std::string("read: ") + strerror(errno));
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int passed = -1;
        std::memcpy(&passed, CMSG_DATA(c) + i * sizeof(int), sizeof passed);
        fds->emplace_back(passed);
      }
    }
    if (r == 0) return Outcome::error(Code::kUnavailable, "the shim closed the connection");
    got += static_cast<size_t>(r);
  }
  return Outcome::success();
}

Outcome recvFrame(int fd, Json* body, int64_t deadline_ms, std::vector<UniqueFd>* fds) {
  unsigned char hdr[kFrameHeaderSize];
  Outcome r = recvExact(fd, reinterpret_cast<char*>(hdr), sizeof hdr, deadline_ms, fds);
  if (!r.ok()) return r;
  size_t n =
      (size_t{hdr[0]} << 24) | (size_t{hdr[1]} << 16) | (size_t{hdr[2]} << 8) | size_t{hdr[3]};
  if (n > kMaxFrameSize) return Outcome::error(Code::kResourceExhausted, "oversize frame");
  std::string text(n, '\0');
  r = recvExact(fd, text.data(), n, deadline_ms, fds);
  if (!r.ok()) return r;
  return parseObject(text, body);
}

// Matches the descriptors of a reply to the names it lists for them.
absl::Status takeStdio(const Json& reply, std::vector<UniqueFd>* fds, StdioFds* io) {
  auto names = reply.find("fds");
  if (names == reply.end() || !names->is_array() || names->size() != fds->size()) {
    return absl::InternalError("the shim's reply does not match the descriptors it passed");
  }
  for (size_t i = 0; i < fds->size(); ++i) {
    const Json& n = (*names)[i];
    std::string name = n.is_string() ? n.get<std::string>() : "";
    UniqueFd& fd = (*fds)[i];
    if (name == "stdin") {
      io->stdin = std::move(fd);
    } else if (name == "stdout") {
      io->stdout = std::move(fd);
    } else if (name == "stderr") {
      io->stderr = std::move(fd);
    } else if (name == "pty") {
      io->pty = std::move(fd);
    } else if (name == "tty") {
      io->stdout = std::move(fd);
      io->tty = true;
    } else {
      return absl::InternalError(absl::StrCat("the shim passed an unknown descriptor \"", name, "\""));
    }
  }
  bool tty = false;
  if (getBool(reply, "tty", &tty) && tty) io->tty = true;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Json> ShimClient::callWithFds(absl::string_view op, Json fields, UniqueFd* conn,
                                             uint64_t* request_id, std::vector<UniqueFd>* fds) {
  absl::Duration timeout;
  BERTH_ASSIGN_OR_RETURN(*conn, ownConnection(&timeout));
  {
    absl::MutexLock lock(&mu_);
    *request_id = next_request_id_++;
  }
  Json req = makeRequest(*request_id, std::string(op));
  for (auto& [k, v] : fields.items()) req[k] = v;
  int64_t deadline = deadlineFor(timeout);
  Outcome w = writeFrame(conn->get(), req, deadline);
  if (!w.ok()) return transportError(w, op);
  Json reply;
  Outcome r = recvFrame(conn->get(), &reply, deadline, fds);
  if (!r.ok()) return transportError(r, op);
  BERTH_RETURN_IF_ERROR(toStatus(replyOutcome(reply)));
  return reply;
}

absl::StatusOr<std::unique_ptr<StreamedProcess>> ShimClient::execStreamed(const ExecOptions& opts,
                                                                          bool want_stdin) {
  Json f = execFields(opts);
  f["stream"] = true;
  f["stdin"] = want_stdin;
  UniqueFd conn;
  uint64_t req_id = 0;
  std::vector<UniqueFd> fds;
  BERTH_ASSIGN_OR_RETURN(Json reply, callWithFds("exec", std::move(f), &conn, &req_id, &fds));
  auto proc = std::make_unique<StreamedProcess>(std::move(conn), req_id);
  int64_t pid = 0;
  getInt(reply, "pid", &pid);
  proc->pid = static_cast<int>(pid);
  BERTH_RETURN_IF_ERROR(takeStdio(reply, &fds, &proc->io));
  proc->io.tty = opts.tty;
  return proc;
}

absl::StatusOr<int> StreamedProcess::exitCode(absl::Duration timeout) {
  if (!conn_.valid()) return absl::FailedPreconditionError("the exit was already read");
  int64_t deadline = deadlineFor(timeout);
  for (;;) {
    Json reply;
    std::vector<UniqueFd> ignored;
    Outcome r = recvFrame(conn_.get(), &reply, deadline, &ignored);
    if (!r.ok()) return toStatus(r);
    int64_t rid = -1;
    getInt(reply, "id", &rid);
    if (rid != static_cast<int64_t>(req_)) continue;
    BERTH_RETURN_IF_ERROR(toStatus(replyOutcome(reply)));
    int64_t code = 0;
    if (!getInt(reply, "exit_code", &code)) {
      return absl::InternalError("the shim's exit report has no exit_code");
    }
    conn_.reset();
    return static_cast<int>(code);
  }
}

absl::StatusOr<std::unique_ptr<Attachment>> ShimClient::attach(const std::string& id,
                                                               bool want_stdin, bool want_stdout,
                                                               bool want_stderr) {
  Json f = Json::object();
  f["container_id"] = id;
  f["stdin"] = want_stdin;
  f["stdout"] = want_stdout;
  f["stderr"] = want_stderr;
  auto a = std::make_unique<Attachment>();
  uint64_t req_id = 0;
  std::vector<UniqueFd> fds;
  BERTH_ASSIGN_OR_RETURN(Json reply, callWithFds("attach", std::move(f), &a->conn, &req_id, &fds));
  BERTH_RETURN_IF_ERROR(takeStdio(reply, &fds, &a->io));
  return a;
}

namespace {

class ProcessShims final : public ShimLauncher {
 public:
  absl::StatusOr<std::unique_ptr<PodShim>> launch(const ShimConfig& cfg) override {
    BERTH_ASSIGN_OR_RETURN(auto client, ShimClient::launch(cfg));
    return std::unique_ptr<PodShim>(std::move(client));
  }
  absl::StatusOr<std::unique_ptr<PodShim>> connect(const std::string& dir) override {
    BERTH_ASSIGN_OR_RETURN(auto client, ShimClient::connect(dir));
    return std::unique_ptr<PodShim>(std::move(client));
  }
};

}  // namespace

std::shared_ptr<ShimLauncher> processShims() { return std::make_shared<ProcessShims>(); }

}  // namespace berth::shim
