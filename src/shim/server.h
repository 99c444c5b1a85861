// berth-shim's server: one single-threaded poll loop over the listening socket, client
// connections and a signalfd (SIGCHLD, SIGTERM, SIGINT). It runs the OCI runtime for the pod's
// containers through RuntimeRunner, reaps every child (it is a subreaper), and records each
// container init's exit durably in ExitStore before telling anyone. It also holds every
// container's stdio (output pipes or a pty, copied to attached clients and, with a log_path,
// to a CRI log file; a stdin pipe) and runs execs, capturing their output.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/unique_fd.h"
#include "shim/console.h"
#include "shim/cri_log.h"
#include "shim/exit_store.h"
#include "shim/pipe_reader.h"
#include "shim/protocol.h"
#include "shim/runtime_runner.h"
#include "shim/seccomp_filter.h"

namespace berth::shim {

// A wait status as an exit code: the status, or 128 + the signal.
int exitCodeOf(int wait_status);

struct ServerOptions {
  std::string pod_id;
  std::string dir;  // holds shim.sock, shim.pid, exits/
  std::string runtime_path;
  std::string runtime_root;
  int64_t runtime_timeout_ms = 120000;  // a runtime command running longer is killed
  // Execs are started by the shim itself (monitor_exec.h) where it can do exactly what
  // `runtime exec` would; otherwise, and when false, by `runtime exec`.
  bool exec_in_monitor = false;
};

// Everything runs on the shim's one thread.
class Server {
 public:
  explicit Server(ServerOptions opts);
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Blocks the signals, opens the exit store, writes shim.pid and listens on shim.sock.
  [[nodiscard]] Outcome init();
  // Serves until a shutdown request (or SIGTERM with no container running) completes.
  // Returns the process exit code.
  int run();

 private:
  struct Connection {
    uint64_t id = 0;
    UniqueFd fd;
    FrameReader reader;
    std::string out;  // encoded frames not yet sent
    // Descriptors that go with the first byte of `out` (SCM_RIGHTS); set only when a frame is
    // queued on an empty `out`.
    std::vector<UniqueFd> out_fds;
    bool subscriber = false;
    bool closed = false;
    bool close_after_flush = false;
  };
  struct Container {
    std::string bundle;
    int pid = 0;  // 0 until `runtime create` has finished
    bool exited = false;
    std::string oom_counter;  // the memory cgroup's oom_kill count file ("" if not found)
    int64_t oom_base = -1;    // its value when the container was created
    int64_t oom_seen = -1;    // its value when an OOM event was last recorded
    UniqueFd oom_watch;       // readable when the count may have grown (watchOomCounter)
    // cgroup v1 signals an OOM before its kill is counted: the count is read again, a few
    // times with growing gaps, until it grows (-1: no recheck due).
    int64_t oom_recheck_ms = -1;
    int oom_rechecks = 0;
    // The seccomp filter execs started by the shim load, built at the first such exec (the
    // container's config does not change); or why it is runc's to load.
    std::optional<SeccompProgram> seccomp;
    std::string seccomp_refused;
  };
  // A client attached to a container's stdio (the attach op): copies of the output go to its
  // pipes; the attach lasts as long as its connection.
  struct Attacher {
    UniqueFd out[2];  // write ends (non-blocking) of the attacher's stdout and stderr pipes
    bool stdin = false;
  };
  // The stdio the shim holds for every container, logged or not. Lives from create to delete.
  struct ContainerIo {
    CriLogWriter log;            // not open without a log_path: output goes to attachers only
    uint64_t pipes[2] = {0, 0};  // PipeReader handles of stdout, stderr (0: none)
    UniqueFd stdin_w;            // the shim's end of the container's stdin, kept for attach
    bool stdin_once = false;
    bool terminal = false;
    UniqueFd pty;  // a terminal's master, for attachers to resize
    std::map<uint64_t, Attacher> attachers;  // by connection
  };
  // An init exit held back (bounded) until the container's output pipes are drained, so that
  // its last lines are in the log before the exit is reported.
  struct PendingExit {
    ExitRecord rec;
    int64_t deadline_ms = 0;
  };
  // A process started by the exec op, from `runtime exec` to its reply.
  struct Exec {
    std::string container_id, exec_id;
    uint64_t conn = 0, req = 0;
    std::string process_file, pid_file;
    int pid = 0;  // 0 until `runtime exec` has finished
    bool exited = false;
    int wait_status = 0;
    int64_t timeout_ms = 0;
    int64_t deadline_ms = -1;        // kill when passed (-1: no timeout)
    int64_t drain_deadline_ms = -1;  // after the exit: stop waiting for the pipes then
    bool timed_out = false;
    bool cancelled = false;  // its requester went away: kill it, reply to nobody
    size_t limit = 0;        // bytes kept per stream
    bool truncated = false;
    std::string output[2];
    uint64_t pipes[2] = {0, 0};
    // A streamed exec (the requester does the I/O): the requester's ends of the process's
    // stdio — stdin's write end, stdout's and stderr's read ends, or a terminal's master in
    // give[1] — handed over with the "started" reply; the exit is a second reply.
    bool stream = false;
    bool tty = false;
    UniqueFd give[3];
    std::shared_ptr<ConsoleSocket> console;
  };
  struct Waiter {
    uint64_t conn = 0;
    uint64_t req = 0;
  };
  // A reaped child that was not (yet) known: possibly a container init that exited before its
  // `create` finished and its pid file was read.
  struct Orphan {
    int wait_status = 0;
    int64_t exited_at_ns = 0;
    int64_t reaped_ms = 0;
  };
  enum class Phase { kServing, kDraining, kDeleting, kDone };
  // An exit (of an init or an exec) waits at most this long for the output pipes to reach EOF:
  // a grandchild may hold them open.
  static constexpr int64_t kOutputDrainMs = 2000;
  // Rechecks of an OOM counter after a notice: 20, 40, 80, ... ms after it.
  static constexpr int64_t kOomRecheckMs = 20;
  static constexpr int kOomRechecks = 7;

  // Event loop pieces (server.cc).
  void acceptClients();
  void readClient(Connection& c);
  void flushClient(Connection& c);
  void onSignals();
  void reap();
  void send(uint64_t conn_id, const Json& msg, size_t max_frame = kMaxFrameSize);
  void reply(uint64_t conn_id, uint64_t req_id, Json body, size_t max_frame = kMaxFrameSize);
  void replyError(uint64_t conn_id, uint64_t req_id, const Outcome& error);
  // A reply carrying descriptors. The connection must have nothing queued (true for the
  // connections of exec and attach, which carry one request); else it is dropped.
  void replyWithFds(uint64_t conn_id, uint64_t req_id, Json body, std::vector<UniqueFd> fds);
  // A container init was reaped: decides OOM, then records the exit now or once its output is
  // drained.
  void onInitExit(const std::string& container_id, int pid, int wait_status, int64_t at_ns);
  void recordExit(ExitRecord rec);
  // The container's OOM counter may have grown: an OOM kill in its cgroup is recorded durably
  // (one unacknowledged record per container) and pushed to subscribers as an "oom" event.
  void onOomNotice(const std::string& container_id);
  // Reads the container's OOM counter; records and pushes an OOM event if it grew. False when
  // it did not.
  bool checkOom(const std::string& container_id, Container& c);
  // Starts watching the container's OOM counter (after its create).
  void watchOom(const std::string& container_id, Container& c);
  void progressShutdown();
  void finish();
  bool anyContainerRunning() const;
  // OK for a container this shim runs; NotFound or FailedPrecondition (not running) naming it.
  [[nodiscard]] Outcome checkRunning(const std::string& id) const;
  // Fires due timers (held-back exits, exec timeouts and drains); returns the poll timeout
  // until the next one (-1: none).
  int onTimers();

  // Container stdio (server_io.cc).
  // Output pipes for every container (a stdin pipe when asked), and the CRI log when the
  // request has a log_path. With `terminal`, no pipes are made: the container's stdio is the
  // pty whose master the runtime hands over through the console socket (takeConsole()).
  [[nodiscard]] Outcome openContainerIo(const std::string& id, const Json& req, bool terminal,
                                        RuntimeIo* io, UniqueFd child_ends[3]);
  // Receives the pty master the runtime sent to `console` and reads it as the container's
  // stdout (a tty has one output stream); with stdin, input is written to it too.
  [[nodiscard]] Outcome takeConsole(const std::string& id, int console, bool want_stdin);
  void onContainerOutput(const std::string& id, LogStream stream, std::string_view data, bool eof);
  bool outputOpen(const ContainerIo& io) const;
  // Reads what is left in the pipes, writes partial lines, closes the log and stdin.
  void closeContainerIo(const std::string& id);
  void opReopenLog(uint64_t conn, uint64_t req_id, const Json& req);
  // Attaches the requesting connection to a running container's output (and stdin).
  void opAttach(uint64_t conn, uint64_t req_id, const Json& req);
  void detachConnection(uint64_t conn);
  // An attached client ended its stdin: a stdin_once container's stdin closes.
  void opCloseStdin(uint64_t conn, uint64_t req_id, const Json& req);

  // Execs (server_exec.cc).
  void opExec(uint64_t conn, uint64_t req_id, const Json& req);
  // The stdio of a streamed exec: pipes, or a console socket for a terminal.
  [[nodiscard]] Outcome openStreamIo(Exec& e, bool want_stdin, RuntimeIo* io,
                                     UniqueFd child_ends[3]);
  void afterExec(uint64_t serial, const RuntimeResult& res);
  // The exec's process runs as `pid` (from either way of starting it): reply to a streamed
  // exec, and handle an exit or a cancellation that came first.
  void execStarted(uint64_t serial, int pid);
  void onExecOutput(uint64_t serial, int stream, std::string_view data, bool eof);
  void onExecExit(uint64_t serial, int wait_status);
  // Replies and forgets the exec once it has exited and its output is drained (or the drain
  // time is up).
  void maybeFinishExec(uint64_t serial);
  void failExec(uint64_t serial, const Outcome& error);
  void cancelExecsOf(uint64_t conn);
  void timeOutExec(Exec& e);

  // Requests (server_ops.cc).
  void handleFrame(Connection& c, const std::string& body);
  void dispatch(Connection& c, uint64_t req_id, const std::string& op, const Json& req);
  void opCreate(uint64_t conn, uint64_t req_id, const Json& req);
  void opStart(uint64_t conn, uint64_t req_id, const Json& req);
  void opKill(uint64_t conn, uint64_t req_id, const Json& req);
  void opDelete(uint64_t conn, uint64_t req_id, const Json& req);
  void opState(uint64_t conn, uint64_t req_id, const Json& req);
  void opWait(uint64_t conn, uint64_t req_id, const Json& req);
  void opExits(uint64_t conn, uint64_t req_id);
  void opAckExit(uint64_t conn, uint64_t req_id, const Json& req);
  void opAckOom(uint64_t conn, uint64_t req_id, const Json& req);
  void opSubscribe(uint64_t conn, uint64_t req_id);
  // The frames pushed to subscribers for an exit record and an OOM record.
  static Json exitEvent(const ExitRecord& rec);
  static Json oomEvent(const ExitRecord& rec);
  void pushToSubscribers(const Json& event);
  void opShutdown(uint64_t conn, uint64_t req_id);
  void afterCreate(const std::string& id, const std::string& bundle, uint64_t conn, uint64_t req_id,
                   const RuntimeResult& res);
  // Names the runtime failure and classifies it (NotFound, AlreadyExists, FailedPrecondition,
  // Internal).
  Outcome runtimeFailure(const std::string& verb, const std::string& id,
                         const RuntimeResult& res) const;

  ServerOptions opts_;
  std::string sock_path_;
  std::string pid_path_;
  UniqueFd dir_fd_;  // the shim dir, for short socket addresses
  UniqueFd listen_fd_;
  UniqueFd signal_fd_;
  uint64_t next_conn_id_ = 1;
  std::map<uint64_t, std::unique_ptr<Connection>> conns_;
  // Containers this shim created and has not deleted.
  std::map<std::string, Container> containers_;
  // Container init pids not reaped yet → container id. Outlives a delete, so that the exit of
  // a force-deleted container is still recorded.
  std::map<pid_t, std::string> inits_;
  std::map<pid_t, Orphan> orphans_;
  std::map<std::string, std::vector<Waiter>> waiters_;
  std::map<std::string, ContainerIo> ios_;
  std::map<std::string, PendingExit> pending_exits_;
  std::map<uint64_t, Exec> execs_;       // by serial number
  std::map<pid_t, uint64_t> exec_pids_;  // exec'd processes not reaped yet → serial
  uint64_t next_exec_ = 1;
  PipeReader pipes_;
  std::vector<Waiter> shutdown_waiters_;
  ExitStore exits_;
  // OOM kills not yet acknowledged, one per container (DIR/ooms/); exit_code is unused.
  ExitStore ooms_;
  RuntimeRunner runner_;
  Phase phase_ = Phase::kServing;
  int deletes_pending_ = 0;
};

}  // namespace berth::shim
