// Server: the exec op. `runtime exec --detach` starts the process (the shim, a subreaper, then
// reaps it); its stdout and stderr are pipes the loop reads into memory, capped per stream; the
// reply goes out once it has exited and its output is drained. A timeout or the requester going
// away kills it and everything it started.
#include <fcntl.h>
#include <malloc.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include "shim/console.h"
#include "shim/monitor_exec.h"
#include "shim/process_tree.h"
#include "shim/server.h"
#include "shim/shim_log.h"

namespace berth::shim {
namespace {

constexpr size_t kMaxConfigSize = 4u << 20;
// The longest an exec started by the shim may take to reach execve (the loop waits for it).
constexpr int64_t kMonitorExecSetupMs = 10000;
// Output above this makes the shim return freed memory to the system after the reply.
constexpr size_t kTrimAbove = 1u << 20;

std::string quote(const std::string& s) { return "\"" + s + "\""; }

bool readFileCapped(const std::string& path, std::string* out) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return false;
  out->clear();
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) return true;
    out->append(buf, static_cast<size_t>(n));
    if (out->size() > kMaxConfigSize) return false;
  }
}

Outcome writeFileFully(const std::string& path, const std::string& text) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd.valid()) return Outcome::fromErrno(errno, "create " + path);
  size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(fd.get(), text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Outcome::fromErrno(errno, "write " + path);
    off += static_cast<size_t>(n);
  }
  return Outcome::success();
}

bool isStringArray(const Json& j) {
  if (!j.is_array()) return false;
  for (const Json& e : j) {
    if (!e.is_string()) return false;
  }
  return true;
}

// The exec'd process: the container's own process spec (capabilities, rlimits, env, user, …)
// with the request's args, and its env entries, cwd and user laid over it — what containerd
// does for CRI execs.
Outcome buildExecProcess(const std::string& bundle, const Json& req, bool tty, Json* out,
                         Json* config) {
  auto args = req.find("args");
  if (args == req.end() || !isStringArray(*args) || args->empty()) {
    return Outcome::error(Code::kInvalidArgument, "\"args\" must be a non-empty string array");
  }
  std::string text;
  if (!readFileCapped(bundle + "/config.json", &text)) {
    return Outcome::fromErrno(errno == 0 ? EIO : errno, "read " + bundle + "/config.json");
  }
  Json cfg = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  auto proc = cfg.is_object() ? cfg.find("process") : cfg.end();
  if (!cfg.is_object() || proc == cfg.end() || !proc->is_object()) {
    return Outcome::error(Code::kInternal, bundle + "/config.json has no process");
  }
  Json p = *proc;
  p["args"] = *args;
  p["terminal"] = tty;
  p.erase("consoleSize");
  auto env = req.find("env");
  if (env != req.end()) {
    if (!isStringArray(*env)) {
      return Outcome::error(Code::kInvalidArgument, "\"env\" must be a string array");
    }
    if (!p.contains("env") || !p["env"].is_array()) p["env"] = Json::array();
    Json& penv = p["env"];
    for (const Json& e : *env) {
      const std::string& kv = e.get_ref<const std::string&>();
      std::string key = kv.substr(0, kv.find('=') + 1);  // "K=" (or the whole entry)
      bool replaced = false;
      for (Json& old : penv) {
        if (old.is_string() && old.get_ref<const std::string&>().compare(0, key.size(), key) == 0) {
          old = kv;
          replaced = true;
          break;
        }
      }
      if (!replaced) penv.push_back(kv);
    }
  }
  std::string cwd;
  if (getString(req, "cwd", &cwd) && !cwd.empty()) {
    if (cwd.front() != '/') {
      return Outcome::error(Code::kInvalidArgument, "\"cwd\" must be an absolute path");
    }
    p["cwd"] = cwd;
  }
  auto user = req.find("user");
  if (user != req.end() && !user->is_null()) {
    int64_t uid = -1, gid = -1;
    if (!user->is_object() || !getInt(*user, "uid", &uid) || !getInt(*user, "gid", &gid) ||
        uid < 0 || gid < 0 || uid > 0xfffffffe || gid > 0xfffffffe) {
      return Outcome::error(Code::kInvalidArgument, "\"user\" needs a valid uid and gid");
    }
    Json u = Json::object();
    u["uid"] = uid;
    u["gid"] = gid;
    auto extra = user->find("additional_gids");
    if (extra != user->end()) {
      for (const Json& g : *extra) {
        if (!g.is_number_integer() || g.get<int64_t>() < 0) {
          return Outcome::error(Code::kInvalidArgument, "\"additional_gids\" must be gids");
        }
      }
      u["additionalGids"] = *extra;
    }
    if (p.contains("user") && p["user"].is_object() && p["user"].contains("umask")) {
      u["umask"] = p["user"]["umask"];
    }
    p["user"] = std::move(u);
  }
  *out = std::move(p);
  *config = std::move(cfg);
  return Outcome::success();
}

// The container's seccomp filter as runc would build it, once per container: "" when built
// (or when there is none), else why the exec is runc's.
std::string buildSeccomp(const Json& config, std::optional<SeccompProgram>* built,
                         std::string* refused) {
  if (*built || !refused->empty()) return *refused;
  auto l = config.find("linux");
  if (l == config.end() || !l->is_object()) return "";
  auto s = l->find("seccomp");
  if (s == l->end() || s->is_null()) return "";
  SeccompProgram program;
  if (Outcome r = buildRuncSeccompProgram(*s, &program); !r.ok()) {
    *refused = "a seccomp filter the shim does not build (" + r.message + ")";
    return *refused;
  }
  *built = std::move(program);
  return "";
}

}  // namespace

void Server::opExec(uint64_t conn, uint64_t req_id, const Json& req) {
  std::string id, exec_id;
  if (!getString(req, "container_id", &id) || !validContainerId(id)) {
    return replyError(conn, req_id,
                      Outcome::error(Code::kInvalidArgument, "invalid container id " + quote(id)));
  }
  auto fail = [&](Code code, const std::string& why) {
    replyError(conn, req_id, Outcome::error(code, "exec in container " + quote(id) + ": " + why));
  };
  if (!getString(req, "exec_id", &exec_id) || !validContainerId(exec_id)) {
    return fail(Code::kInvalidArgument, "invalid exec id " + quote(exec_id));
  }
  if (Outcome r = checkRunning(id); !r.ok()) return replyError(conn, req_id, r);
  auto c = containers_.find(id);
  for (auto& [serial, e] : execs_) {
    if (e.container_id == id && e.exec_id == exec_id) {
      return fail(Code::kAlreadyExists, "exec " + quote(exec_id) + " is already running");
    }
  }
  bool tty = false, stream = false, want_stdin = false;
  getBool(req, "tty", &tty);
  getBool(req, "stream", &stream);
  getBool(req, "stdin", &want_stdin);
  if (tty && !stream) return fail(Code::kInvalidArgument, "a terminal exec must be streamed");
  if (want_stdin && !stream) return fail(Code::kInvalidArgument, "stdin needs a streamed exec");
  int64_t timeout_ms = 0, limit = static_cast<int64_t>(kMaxExecOutput);
  getInt(req, "timeout_ms", &timeout_ms);
  if (getInt(req, "output_limit", &limit) && limit == 0) limit = kMaxExecOutput;
  if (timeout_ms < 0) return fail(Code::kInvalidArgument, "negative timeout_ms");
  if (limit < 0 || limit > static_cast<int64_t>(kMaxExecOutput)) {
    return fail(Code::kInvalidArgument,
                "output_limit must be 0.." + std::to_string(kMaxExecOutput) + " bytes");
  }
  Json process, config;
  Outcome r = buildExecProcess(c->second.bundle, req, tty, &process, &config);
  if (!r.ok()) return fail(r.code, r.message);
  // From the shim itself when it can do exactly what `runc exec` would, else through runc.
  bool in_monitor = opts_.exec_in_monitor;
  if (in_monitor) {
    std::string why = monitorExecUnsupported(config, process);
    if (why.empty()) why = buildSeccomp(config, &c->second.seccomp, &c->second.seccomp_refused);
    if (!why.empty()) {
      in_monitor = false;
      SHIM_LOG_DEBUG("container %s: exec %s needs %s: started by the runtime", id.c_str(),
                     exec_id.c_str(), why.c_str());
    }
  }

  uint64_t serial = next_exec_++;
  Exec& e = execs_[serial];
  e.container_id = id;
  e.exec_id = exec_id;
  e.conn = conn;
  e.req = req_id;
  e.timeout_ms = timeout_ms;
  if (timeout_ms > 0) e.deadline_ms = monotonicMs() + timeout_ms;
  e.limit = static_cast<size_t>(limit);
  std::string base = opts_.dir + "/exec-" + std::to_string(serial);
  if (!in_monitor) {
    e.process_file = base + ".json";
    e.pid_file = base + ".pid";
    ::unlink(e.pid_file.c_str());
    r = writeFileFully(e.process_file, process.dump());
  }
  RuntimeIo io;
  UniqueFd child_ends[3];
  e.stream = stream;
  e.tty = tty;
  // A terminal exec started by the shim sends the pty master over a socket pair (the process
  // opens the pty in the container, as runc init does); through runc, a console socket.
  UniqueFd pty_shim, pty_child;
  if (in_monitor && tty && r.ok()) {
    int sp[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) {
      r = Outcome::fromErrno(errno, "socketpair");
    } else {
      pty_shim.reset(sp[0]);
      pty_child.reset(sp[1]);
    }
  } else if (stream && r.ok()) {
    r = openStreamIo(e, want_stdin, &io, child_ends);
  }
  for (int s = 0; s < 2 && r.ok() && !stream; ++s) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) {
      r = Outcome::fromErrno(errno, "pipe");
      break;
    }
    child_ends[1 + s].reset(p[1]);
    e.pipes[s] = pipes_.add(UniqueFd(p[0]), [this, serial, s](std::string_view data, bool eof) {
      onExecOutput(serial, s, data, eof);
    });
  }
  if (!r.ok()) return failExec(serial, r);
  if (!stream) {
    io.stdout_fd = child_ends[1].get();
    io.stderr_fd = child_ends[2].get();
  }
  if (in_monitor) {
    const int stdio[3] = {io.stdin_fd, io.stdout_fd, io.stderr_fd};
    pid_t pid = 0;
    // The shim's loop waits while the process is set up (about a millisecond): bounded.
    MonitorExecTarget target = monitorExecTarget(id, c->second.pid, config);
    if (c->second.seccomp) target.seccomp = &*c->second.seccomp;
    r = startMonitorExec(target, process, stdio, pty_child.get(),
                         std::min<int64_t>(opts_.runtime_timeout_ms, kMonitorExecSetupMs), &pid);
    pty_child.reset();
    if (r.ok() && tty) {
      r = receivePtyFrom(pty_shim.get(), &execs_[serial].give[1]);
      if (!r.ok()) killProcessTree(pid);
    }
    if (!r.ok()) {
      r.message = "exec in container " + quote(id) + ": " + r.message;
      return failExec(serial, r);
    }
    return execStarted(serial, pid);
    // The child ends close here: the process holds its own copies.
  }
  process = Json();
  io.log_path = base + ".log";
  ::unlink(io.log_path.c_str());
  std::vector<std::string> args = {"exec",         "--process",  e.process_file,
                                   "--detach",     "--pid-file", e.pid_file};
  if (e.console) {
    args.push_back("--console-socket");
    args.push_back(e.console->path);
  }
  args.push_back(id);
  r = runner_.start(args, io, opts_.runtime_timeout_ms,
                    [this, serial](const RuntimeResult& res) { afterExec(serial, res); });
  if (!r.ok()) return failExec(serial, r);
  SHIM_LOG_DEBUG("container %s: exec %s starting", id.c_str(), exec_id.c_str());
  // The child ends close here: the runtime holds its own copies.
}

Outcome Server::openStreamIo(Exec& e, bool want_stdin, RuntimeIo* io, UniqueFd child_ends[3]) {
  if (e.tty) {
    // The process's stdio is the terminal; the runtime sends its master to the console socket.
    e.console = std::make_shared<ConsoleSocket>();
    return openConsoleSocket(e.console.get());
  }
  for (int s = 0; s < 3; ++s) {
    if (s == 0 && !want_stdin) continue;
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return Outcome::fromErrno(errno, "pipe");
    // stdin: the process reads p[0]; stdout, stderr: the process writes p[1].
    child_ends[s].reset(s == 0 ? p[0] : p[1]);
    e.give[s].reset(s == 0 ? p[1] : p[0]);
  }
  io->stdin_fd = child_ends[0].valid() ? child_ends[0].get() : -1;
  io->stdout_fd = child_ends[1].get();
  io->stderr_fd = child_ends[2].get();
  return Outcome::success();
}

void Server::afterExec(uint64_t serial, const RuntimeResult& res) {
  auto it = execs_.find(serial);
  if (it == execs_.end()) return;
  Exec& e = it->second;
  ::unlink(e.process_file.c_str());
  if (!res.success()) {
    Outcome f = runtimeFailure("exec", e.container_id, res);
    std::string text = res.error_text;
    if (text.find("stopped") != std::string::npos) {
      f.code = Code::kFailedPrecondition;
    } else if (f.code == Code::kNotFound &&
               text.find("container does not exist") == std::string::npos) {
      f.code = Code::kInternal;  // e.g. "executable file not found": not a missing container
    }
    if (e.timed_out) {
      f = Outcome::error(Code::kDeadlineExceeded, "exec " + quote(e.exec_id) + " in container " +
                                                      quote(e.container_id) + " timed out after " +
                                                      std::to_string(e.timeout_ms) + " ms");
    }
    return failExec(serial, f);
  }
  int pid = 0;
  std::string text;
  if (readFileCapped(e.pid_file, &text)) pid = std::atoi(text.c_str());
  ::unlink(e.pid_file.c_str());
  if (pid <= 0) {
    return failExec(
        serial, Outcome::error(Code::kInternal, "exec " + quote(e.exec_id) + " in container " +
                                                    quote(e.container_id) + ": no valid pid in " +
                                                    e.pid_file));
  }
  execStarted(serial, pid);
}

void Server::execStarted(uint64_t serial, int pid) {
  auto it = execs_.find(serial);
  if (it == execs_.end()) return;
  Exec& e = it->second;
  e.pid = pid;
  exec_pids_[pid] = serial;
  SHIM_LOG_INFO("container %s: exec %s started (pid %d)", e.container_id.c_str(), e.exec_id.c_str(),
                pid);
  if (e.stream) {
    if (e.tty && e.console) {
      Outcome t = receivePty(e.console->fd.get(), &e.give[1]);
      e.console.reset();
      if (!t.ok()) {
        t.message = "exec " + quote(e.exec_id) + " in container " + quote(e.container_id) + ": " +
                    t.message;
        return failExec(serial, t);
      }
    }
    static const char* const kNames[3] = {"stdin", "stdout", "stderr"};
    Json names = Json::array();
    std::vector<UniqueFd> fds;
    for (int s = 0; s < 3; ++s) {
      if (!e.give[s].valid()) continue;
      names.push_back(e.tty ? "tty" : kNames[s]);
      fds.push_back(std::move(e.give[s]));
    }
    Json body = Json::object();
    body["pid"] = pid;
    body["started"] = true;
    body["fds"] = std::move(names);
    if (!e.cancelled) replyWithFds(e.conn, e.req, std::move(body), std::move(fds));
  }
  if (e.timed_out || e.cancelled) killProcessTree(pid);
  // It may have exited (and been reaped as an unknown child) before its pid was known.
  auto orphan = orphans_.find(pid);
  if (orphan != orphans_.end()) {
    int status = orphan->second.wait_status;
    orphans_.erase(orphan);
    onExecExit(serial, status);
  }
}

void Server::onExecOutput(uint64_t serial, int stream, std::string_view data, bool eof) {
  auto it = execs_.find(serial);
  if (it == execs_.end()) return;
  Exec& e = it->second;
  if (eof) return maybeFinishExec(serial);
  std::string& out = e.output[stream];
  size_t room = e.limit > out.size() ? e.limit - out.size() : 0;
  if (data.size() > room) {
    e.truncated = true;  // keep reading (the process must not block), keep nothing more
    data = data.substr(0, room);
  }
  out.append(data);
}

void Server::onExecExit(uint64_t serial, int wait_status) {
  auto it = execs_.find(serial);
  if (it == execs_.end()) return;
  Exec& e = it->second;
  e.exited = true;
  e.wait_status = wait_status;
  e.drain_deadline_ms = monotonicMs() + kOutputDrainMs;
  exec_pids_.erase(e.pid);
  maybeFinishExec(serial);
}

void Server::maybeFinishExec(uint64_t serial) {
  auto it = execs_.find(serial);
  if (it == execs_.end() || !it->second.exited) return;
  Exec& e = it->second;
  bool open = pipes_.isOpen(e.pipes[0]) || pipes_.isOpen(e.pipes[1]);
  if (open && monotonicMs() < e.drain_deadline_ms) return;
  if (open) {
    SHIM_LOG_WARN(
        "container %s: exec %s exited but its output is still open; replying "
        "without the rest",
        e.container_id.c_str(), e.exec_id.c_str());
  }
  for (uint64_t h : e.pipes) pipes_.close(h);
  int code = exitCodeOf(e.wait_status);
  if (e.stream) {
    SHIM_LOG_INFO("container %s: exec %s (pid %d) exited with code %d", e.container_id.c_str(),
                  e.exec_id.c_str(), e.pid, code);
    if (!e.cancelled) {
      Json body = Json::object();
      body["exit_code"] = code;
      body["exited"] = true;
      reply(e.conn, e.req, std::move(body));
    }
    execs_.erase(it);
    return;
  }
  SHIM_LOG_INFO("container %s: exec %s (pid %d) exited with code %d%s", e.container_id.c_str(),
                e.exec_id.c_str(), e.pid, code, e.timed_out ? " after its timeout" : "");
  bool big = e.output[0].size() + e.output[1].size() > kTrimAbove;
  if (e.cancelled) {
    // Nobody to tell.
  } else if (e.timed_out) {
    replyError(e.conn, e.req,
               Outcome::error(Code::kDeadlineExceeded,
                              "exec " + quote(e.exec_id) + " in container " +
                                  quote(e.container_id) + " timed out after " +
                                  std::to_string(e.timeout_ms) + " ms and was killed"));
  } else {
    Json body = Json::object();
    body["exit_code"] = code;
    body["stdout"] = base64Encode(e.output[0]);
    std::string().swap(e.output[0]);
    body["stderr"] = base64Encode(e.output[1]);
    std::string().swap(e.output[1]);
    body["truncated"] = e.truncated;
    reply(e.conn, e.req, std::move(body), kMaxExecReplySize);
  }
  execs_.erase(it);
  if (big) ::malloc_trim(0);
}

void Server::failExec(uint64_t serial, const Outcome& error) {
  auto it = execs_.find(serial);
  if (it == execs_.end()) return;
  Exec& e = it->second;
  for (uint64_t h : e.pipes) pipes_.close(h);
  ::unlink(e.process_file.c_str());
  ::unlink(e.pid_file.c_str());
  if (e.pid > 0 && !e.exited) {
    killProcessTree(e.pid);
    exec_pids_.erase(e.pid);  // reaped later as an unknown child
  }
  if (!e.cancelled) replyError(e.conn, e.req, error);
  execs_.erase(it);
}

void Server::cancelExecsOf(uint64_t conn) {
  for (auto& [serial, e] : execs_) {
    if (e.conn != conn || e.cancelled) continue;
    e.cancelled = true;
    SHIM_LOG_INFO("container %s: the requester of exec %s went away; killing it",
                  e.container_id.c_str(), e.exec_id.c_str());
    if (e.pid > 0 && !e.exited) killProcessTree(e.pid);
  }
}

void Server::timeOutExec(Exec& e) {
  e.timed_out = true;
  SHIM_LOG_WARN("container %s: exec %s timed out after %lld ms; killing it", e.container_id.c_str(),
                e.exec_id.c_str(), static_cast<long long>(e.timeout_ms));
  if (e.pid > 0) killProcessTree(e.pid);
}

}  // namespace berth::shim
