// Server request handlers: one function per protocol op. Runtime ops are asynchronous; their
// replies are sent from the RuntimeRunner callback.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "common/build_info.h"
#include "shim/console.h"
#include "shim/oom_counter.h"
#include "shim/server.h"
#include "shim/shim_log.h"

namespace berth::shim {
namespace {

bool contains(const std::string& text, const char* needle) {
  return text.find(needle) != std::string::npos;
}

std::string quote(const std::string& s) { return "\"" + s + "\""; }

// Reads the container id field; replies InvalidArgument when it is missing or malformed.
bool containerIdOf(const Json& req, std::string* id, Outcome* error) {
  if (!getString(req, "container_id", id)) {
    *error = Outcome::error(Code::kInvalidArgument, "request has no \"container_id\"");
    return false;
  }
  if (!validContainerId(*id)) {
    *error = Outcome::error(Code::kInvalidArgument, "invalid container id " + quote(*id));
    return false;
  }
  return true;
}

std::string baseName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

Outcome Server::runtimeFailure(const std::string& verb, const std::string& id,
                               const RuntimeResult& res) const {
  std::string text = res.error_text.empty() ? res.describe() : res.error_text;
  std::string msg =
      baseName(opts_.runtime_path) + " " + verb + " container " + quote(id) + ": " + text;
  if (!res.error_text.empty() && !res.timed_out) msg += " (" + res.describe() + ")";
  Code code = Code::kInternal;
  if (res.timed_out) {
    code = Code::kDeadlineExceeded;
  } else if (contains(text, "does not exist") || contains(text, "not found")) {
    code = Code::kNotFound;
  } else if (verb == "create" && contains(text, "exists")) {
    code = Code::kAlreadyExists;
  } else if (contains(text, "not running") || contains(text, "not stopped") ||
             contains(text, "already running") || contains(text, "cannot start") ||
             contains(text, "paused")) {
    code = Code::kFailedPrecondition;
  }
  return Outcome::error(code, std::move(msg));
}

void Server::handleFrame(Connection& c, const std::string& body) {
  Json req;
  Outcome r = parseObject(body, &req);
  int64_t req_id = 0;
  if (r.ok()) getInt(req, "id", &req_id);
  if (r.ok()) r = checkVersion(req);
  std::string op;
  if (r.ok() && !getString(req, "op", &op)) {
    r = Outcome::error(Code::kInvalidArgument, "request has no \"op\"");
  }
  if (!r.ok()) {
    replyError(c.id, static_cast<uint64_t>(req_id), r);
    return;
  }
  SHIM_LOG_DEBUG("connection %llu: request %lld %s", static_cast<unsigned long long>(c.id),
                 static_cast<long long>(req_id), op.c_str());
  try {
    dispatch(c, static_cast<uint64_t>(req_id), op, req);
  } catch (const std::exception& e) {  // nlohmann-json type errors, allocation failures
    replyError(c.id, static_cast<uint64_t>(req_id),
               Outcome::error(Code::kInternal, std::string("request ") + op + ": " + e.what()));
  }
}

void Server::dispatch(Connection& c, uint64_t req_id, const std::string& op, const Json& req) {
  bool runtime_op = op == "create" || op == "start" || op == "kill" || op == "delete" ||
                    op == "state" || op == "exec" || op == "reopen_log" || op == "attach";
  if (runtime_op && phase_ != Phase::kServing) {
    replyError(c.id, req_id,
               Outcome::error(Code::kUnavailable,
                              "the shim of pod " + quote(opts_.pod_id) + " is shutting down"));
    return;
  }
  if (op == "ping") {
    Json body = Json::object();
    body["pid"] = ::getpid();
    body["version"] = kVersion;
    body["pod_id"] = opts_.pod_id;
    reply(c.id, req_id, std::move(body));
  } else if (op == "create") {
    opCreate(c.id, req_id, req);
  } else if (op == "start") {
    opStart(c.id, req_id, req);
  } else if (op == "kill") {
    opKill(c.id, req_id, req);
  } else if (op == "delete") {
    opDelete(c.id, req_id, req);
  } else if (op == "state") {
    opState(c.id, req_id, req);
  } else if (op == "wait") {
    opWait(c.id, req_id, req);
  } else if (op == "exits") {
    opExits(c.id, req_id);
  } else if (op == "ack_exit") {
    opAckExit(c.id, req_id, req);
  } else if (op == "ack_oom") {
    opAckOom(c.id, req_id, req);
  } else if (op == "subscribe") {
    opSubscribe(c.id, req_id);
  } else if (op == "exec") {
    opExec(c.id, req_id, req);
  } else if (op == "reopen_log") {
    opReopenLog(c.id, req_id, req);
  } else if (op == "attach") {
    opAttach(c.id, req_id, req);
  } else if (op == "close_stdin") {
    opCloseStdin(c.id, req_id, req);
  } else if (op == "shutdown") {
    opShutdown(c.id, req_id);
  } else {
    replyError(c.id, req_id,
               Outcome::error(Code::kUnimplemented, "unknown request op " + quote(op)));
  }
}

void Server::opCreate(uint64_t conn, uint64_t req_id, const Json& req) {
  Outcome err;
  std::string id, bundle;
  if (!containerIdOf(req, &id, &err)) return replyError(conn, req_id, err);
  if (!getString(req, "bundle", &bundle) || bundle.empty() || bundle.front() != '/') {
    return replyError(
        conn, req_id,
        Outcome::error(Code::kInvalidArgument,
                       "container " + quote(id) + ": bundle must be an absolute path"));
  }
  bool terminal = false, want_stdin = false, start = false;
  getBool(req, "terminal", &terminal);
  getBool(req, "stdin", &want_stdin);
  getBool(req, "start", &start);
  if (containers_.count(id) != 0) {
    return replyError(
        conn, req_id,
        Outcome::error(Code::kAlreadyExists,
                       "container " + quote(id) + " already exists in pod " + quote(opts_.pod_id)));
  }
  // The container's init inherits the runtime's stdio: pipes the shim reads and a stdin pipe
  // (or, for a terminal, the pty set up through the console socket). The runtime's own errors
  // go to a log file instead of a captured stderr.
  RuntimeIo io;
  UniqueFd child_ends[3];  // stdin, stdout, stderr ends of the shim's pipes
  err = openContainerIo(id, req, terminal, &io, child_ends);
  if (!err.ok()) return replyError(conn, req_id, err);
  std::shared_ptr<ConsoleSocket> console;
  if (terminal) {
    console = std::make_shared<ConsoleSocket>();
    err = openConsoleSocket(console.get());
    if (!err.ok()) {
      closeContainerIo(id);
      err.message = "container " + quote(id) + ": " + err.message;
      return replyError(conn, req_id, err);
    }
  }
  UniqueFd devnull;
  if (io.stderr_fd < 0) {
    devnull.reset(::open("/dev/null", O_WRONLY | O_CLOEXEC));
    io.stderr_fd = devnull.get();
  }

  std::string pid_file = bundle + "/init.pid";
  ::unlink(pid_file.c_str());
  io.log_path = opts_.dir + "/create-" + id + ".log";
  ::unlink(io.log_path.c_str());
  containers_[id] = Container{bundle, 0, false, "", -1};
  // `run --detach` creates and starts in one runtime process.
  std::vector<std::string> args = {start ? "run" : "create"};
  if (start) args.push_back("--detach");
  args.insert(args.end(), {"--bundle", bundle, "--pid-file", pid_file});
  if (console) {
    args.push_back("--console-socket");
    args.push_back(console->path);
  }
  args.push_back(id);
  err = runner_.start(args, io, opts_.runtime_timeout_ms,
                      [this, id, bundle, conn, req_id, console, want_stdin](const RuntimeResult& res) {
                        if (console && res.success()) {
                          Outcome t = takeConsole(id, console->fd.get(), want_stdin);
                          if (!t.ok()) {
                            // The container exists but nobody could read its terminal.
                            SHIM_LOG_ERROR("container %s: %s", id.c_str(), t.message.c_str());
                            containers_.erase(id);
                            closeContainerIo(id);
                            RuntimeIo none;
                            (void)runner_.start({"delete", "--force", id}, none,
                                                opts_.runtime_timeout_ms, [](const RuntimeResult&) {});
                            t.message = "container " + quote(id) + ": " + t.message;
                            return replyError(conn, req_id, t);
                          }
                        }
                        afterCreate(id, bundle, conn, req_id, res);
                      });
  if (!err.ok()) {
    containers_.erase(id);
    closeContainerIo(id);
    replyError(conn, req_id, err);
  }
  // The child ends close here; the runtime holds its own copies.
}

void Server::afterCreate(const std::string& id, const std::string& bundle, uint64_t conn,
                         uint64_t req_id, const RuntimeResult& res) {
  if (!res.success()) {
    containers_.erase(id);
    closeContainerIo(id);
    return replyError(conn, req_id, runtimeFailure("create", id, res));
  }
  std::string pid_file = bundle + "/init.pid";
  int pid = 0;
  UniqueFd fd(::open(pid_file.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.valid()) {
    char buf[32] = {};
    ssize_t n = ::read(fd.get(), buf, sizeof buf - 1);
    if (n > 0) pid = std::atoi(buf);
  }
  if (pid <= 0) {
    // The runtime says it created the container but left no usable pid file. Keep the entry
    // so that delete and shutdown still clean it up.
    return replyError(conn, req_id,
                      Outcome::error(Code::kInternal,
                                     "container " + quote(id) + ": no valid pid in " + pid_file));
  }
  Container& c = containers_[id];
  c.pid = pid;
  inits_[pid] = id;
  // The OOM-kill count before the container runs: its exit is an OOM kill if it grew.
  c.oom_counter = findOomCounter(pid, "");
  if (c.oom_counter.empty()) c.oom_counter = findOomCounter(0, cgroupsPathOf(bundle));
  c.oom_base = readOomKills(c.oom_counter);
  if (c.oom_base < 0) {
    SHIM_LOG_WARN(
        "container %s: no readable memory cgroup OOM counter (%s); its exits will "
        "not report OOM kills",
        id.c_str(), c.oom_counter.empty() ? "none found" : c.oom_counter.c_str());
  }
  SHIM_LOG_DEBUG("container %s: OOM counter %s (now %lld)", id.c_str(), c.oom_counter.c_str(),
                 static_cast<long long>(c.oom_base));
  watchOom(id, c);
  SHIM_LOG_INFO("container %s created (pid %d)", id.c_str(), pid);
  Json body = Json::object();
  body["pid"] = pid;
  reply(conn, req_id, std::move(body));
  // The init may have exited (and been reaped as an unknown child) before its pid was known.
  auto orphan = orphans_.find(pid);
  if (orphan != orphans_.end()) {
    Orphan o = orphan->second;
    orphans_.erase(orphan);
    onInitExit(id, pid, o.wait_status, o.exited_at_ns);
  }
}

void Server::opStart(uint64_t conn, uint64_t req_id, const Json& req) {
  Outcome err;
  std::string id;
  if (!containerIdOf(req, &id, &err)) return replyError(conn, req_id, err);
  err = runner_.start({"start", id}, RuntimeIo{}, opts_.runtime_timeout_ms,
                      [this, id, conn, req_id](const RuntimeResult& res) {
                        if (!res.success()) {
                          return replyError(conn, req_id, runtimeFailure("start", id, res));
                        }
                        SHIM_LOG_INFO("container %s started", id.c_str());
                        reply(conn, req_id, Json::object());
                      });
  if (!err.ok()) replyError(conn, req_id, err);
}

void Server::opKill(uint64_t conn, uint64_t req_id, const Json& req) {
  Outcome err;
  std::string id;
  if (!containerIdOf(req, &id, &err)) return replyError(conn, req_id, err);
  int64_t sig = SIGTERM;
  getInt(req, "signal", &sig);
  bool all = false;
  getBool(req, "all", &all);
  if (sig <= 0 || sig > 64) {
    return replyError(
        conn, req_id,
        Outcome::error(Code::kInvalidArgument,
                       "container " + quote(id) + ": invalid signal " + std::to_string(sig)));
  }
  std::vector<std::string> args = {"kill"};
  if (all) args.push_back("--all");
  args.push_back(id);
  args.push_back(std::to_string(sig));
  err = runner_.start(args, RuntimeIo{}, opts_.runtime_timeout_ms,
                      [this, id, conn, req_id](const RuntimeResult& res) {
                        if (!res.success()) {
                          Outcome f = runtimeFailure("kill", id, res);
                          // Killing a container that has already stopped is not an error.
                          if (f.code != Code::kFailedPrecondition ||
                              res.error_text.find("not running") == std::string::npos) {
                            return replyError(conn, req_id, f);
                          }
                        }
                        reply(conn, req_id, Json::object());
                      });
  if (!err.ok()) replyError(conn, req_id, err);
}

void Server::opDelete(uint64_t conn, uint64_t req_id, const Json& req) {
  Outcome err;
  std::string id;
  if (!containerIdOf(req, &id, &err)) return replyError(conn, req_id, err);
  bool force = false;
  getBool(req, "force", &force);
  std::vector<std::string> args = {"delete"};
  if (force) args.push_back("--force");
  args.push_back(id);
  err = runner_.start(args, RuntimeIo{}, opts_.runtime_timeout_ms,
                      [this, id, conn, req_id](const RuntimeResult& res) {
                        if (!res.success()) {
                          Outcome f = runtimeFailure("delete", id, res);
                          // Deleting an unknown container is not an error (idempotent).
                          if (f.code != Code::kNotFound) return replyError(conn, req_id, f);
                        }
                        // inits_ keeps an un-reaped init, so its exit is still recorded.
                        containers_.erase(id);
                        closeContainerIo(id);
                        // Its exit record says whether it was OOM-killed; an OOM event not
                        // acknowledged yet has nothing left to tell.
                        if (Outcome o = ooms_.remove(id); !o.ok()) {
                          SHIM_LOG_WARN("container %s: %s", id.c_str(), o.message.c_str());
                        }
                        SHIM_LOG_INFO("container %s deleted", id.c_str());
                        reply(conn, req_id, Json::object());
                      });
  if (!err.ok()) replyError(conn, req_id, err);
}

void Server::opState(uint64_t conn, uint64_t req_id, const Json& req) {
  Outcome err;
  std::string id;
  if (!containerIdOf(req, &id, &err)) return replyError(conn, req_id, err);
  RuntimeIo io;
  io.capture_stdout = true;
  err = runner_.start(
      {"state", id}, io, opts_.runtime_timeout_ms,
      [this, id, conn, req_id](const RuntimeResult& res) {
        if (!res.success()) {
          return replyError(conn, req_id, runtimeFailure("state", id, res));
        }
        Json st;
        std::string status;
        int64_t pid = 0;
        Outcome p = parseObject(res.stdout_text, &st);
        if (!p.ok() || !getString(st, "status", &status)) {
          return replyError(
              conn, req_id,
              Outcome::error(Code::kInternal, "container " + quote(id) +
                                                  ": cannot parse the runtime's state output"));
        }
        getInt(st, "pid", &pid);
        Json body = Json::object();
        body["status"] = status;
        body["pid"] = pid;
        reply(conn, req_id, std::move(body));
      });
  if (!err.ok()) replyError(conn, req_id, err);
}

void Server::opWait(uint64_t conn, uint64_t req_id, const Json& req) {
  Outcome err;
  std::string id;
  if (!containerIdOf(req, &id, &err)) return replyError(conn, req_id, err);
  auto c = containers_.find(id);
  const ExitRecord* rec = exits_.find(id);
  // A record belongs to the current container unless a newer incarnation is running.
  if (rec != nullptr && (c == containers_.end() || c->second.pid == rec->pid)) {
    return reply(conn, req_id, exitToJson(*rec));
  }
  bool pending = c != containers_.end();
  for (auto& [pid, cid] : inits_) pending = pending || cid == id;
  if (!pending) {
    return replyError(
        conn, req_id,
        Outcome::error(Code::kNotFound,
                       "container " + quote(id) + " not found in pod " + quote(opts_.pod_id)));
  }
  waiters_[id].push_back(Waiter{conn, req_id});
}

void Server::opExits(uint64_t conn, uint64_t req_id) {
  Json list = Json::array();
  for (auto& [id, rec] : exits_.all()) list.push_back(exitToJson(rec));
  Json body = Json::object();
  body["exits"] = std::move(list);
  reply(conn, req_id, std::move(body));
}

void Server::opAckExit(uint64_t conn, uint64_t req_id, const Json& req) {
  Outcome err;
  std::string id;
  if (!containerIdOf(req, &id, &err)) return replyError(conn, req_id, err);
  int64_t seq = 0;
  if (req.contains("seq") && (!getInt(req, "seq", &seq) || seq < 0)) {
    return replyError(conn, req_id, Outcome::error(Code::kInvalidArgument, "bad \"seq\""));
  }
  err = exits_.remove(id, static_cast<uint64_t>(seq));
  if (!err.ok()) return replyError(conn, req_id, err);
  reply(conn, req_id, Json::object());
}

void Server::opAckOom(uint64_t conn, uint64_t req_id, const Json& req) {
  Outcome err;
  std::string id;
  if (!containerIdOf(req, &id, &err)) return replyError(conn, req_id, err);
  int64_t seq = 0;
  if (!getInt(req, "seq", &seq) || seq <= 0) {
    return replyError(conn, req_id, Outcome::error(Code::kInvalidArgument, "bad \"seq\""));
  }
  err = ooms_.remove(id, static_cast<uint64_t>(seq));
  if (!err.ok()) return replyError(conn, req_id, err);
  reply(conn, req_id, Json::object());
}

void Server::opSubscribe(uint64_t conn, uint64_t req_id) {
  auto c = conns_.find(conn);
  if (c == conns_.end()) return;
  c->second->subscriber = true;
  reply(conn, req_id, Json::object());
  // Replay what the daemon has not acknowledged, oldest first: OOM kills, then exits (an OOM
  // kill of an init comes before its exit).
  auto replay = [&](const ExitStore& store, Json (*event)(const ExitRecord&)) {
    std::vector<const ExitRecord*> records;
    for (const auto& [id, rec] : store.all()) records.push_back(&rec);
    std::sort(records.begin(), records.end(),
              [](const ExitRecord* a, const ExitRecord* b) { return a->seq < b->seq; });
    for (const ExitRecord* rec : records) send(conn, event(*rec));
  };
  replay(ooms_, &Server::oomEvent);
  replay(exits_, &Server::exitEvent);
}

void Server::opShutdown(uint64_t conn, uint64_t req_id) {
  shutdown_waiters_.push_back(Waiter{conn, req_id});
  if (phase_ == Phase::kServing) {
    SHIM_LOG_INFO("shutdown requested");
    phase_ = Phase::kDraining;
  }
}

}  // namespace berth::shim
