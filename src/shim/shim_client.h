// The daemon-side client of a pod's berth-shim: launches a shim (or reconnects to one after a
// berthd restart) and drives the pod's containers through it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/unique_fd.h"
#include "shim/protocol.h"

namespace berth::shim {

struct ShimConfig {
  std::string id;            // pod id
  std::string dir;           // per-pod state dir: shim.sock, shim.pid, shim.log, exits/
  std::string runtime_path;  // e.g. /usr/sbin/runc
  std::string runtime_root;  // the runtime's --root
  std::string shim_binary;   // path of berth-shim
  std::string log_level = "info";
  absl::Duration start_timeout = absl::Seconds(10);  // until the shim is listening
  absl::Duration call_timeout = absl::Seconds(30);   // every call except wait()
  bool exec_in_monitor = false;  // the shim starts execs itself where it can (--exec monitor)
};

// An exit as the shim recorded it (exit_code: the status, or 128 + signal).
using ExitInfo = ExitRecord;

struct CreateOptions {
  std::string container_id, bundle;
  bool terminal = false;  // a pty (runc --console-socket); its output is logged as stdout
  // The CRI log file (absolute; its directory must exist) the shim writes from the
  // container's stdout/stderr, also while berthd is down. Empty: no log; the shim still holds
  // the output for attach (and drops what nobody reads).
  std::string log_path;
  int max_log_line = 0;  // 0: the shim's default (16384); longer lines are split, tagged "P"
  bool stdin = false;    // the shim keeps a pipe to the container's stdin (for attach)
  bool stdin_once = false;
  // Started at once (`runtime run --detach`: one runtime process instead of create + start),
  // for a container nothing needs to see created first, such as a pod's pause.
  bool start = false;
};

struct ExecUser {
  int64_t uid = 0;
  int64_t gid = 0;
  std::vector<int64_t> additional_gids;
};

struct ExecOptions {
  std::string container_id;
  std::string exec_id;  // unique among the container's running execs; [A-Za-z0-9_.+-]
  std::vector<std::string> args;
  std::vector<std::string> env;  // laid over the container's env (same name: replaced)
  std::string cwd;               // "": the container's
  std::optional<ExecUser> user;  // unset: the container's
  bool tty = false;              // a terminal (execStreamed only)
  int64_t timeout_ms = 0;        // 0: none; when it passes: DeadlineExceeded, process tree killed
  int64_t output_limit = 16 << 20;  // bytes kept per stream (at most 16 MiB); the rest is read
                                    // and dropped
};

// Descriptors of a process's stdio handed over by the shim (streamed exec, attach); each is
// invalid when not requested or not available.
struct StdioFds {
  UniqueFd stdin;   // write end
  UniqueFd stdout;  // read end; with a terminal exec, the terminal (read, write and resize)
  UniqueFd stderr;  // read end
  UniqueFd pty;     // attach to a terminal container: its master, for resizing only
  bool tty = false;
};

// A process started in a container whose stdio the caller drives. It holds its own shim
// connection: destroying it before the process has exited kills the process and everything it
// started.
class StreamedProcess {
 public:
  StreamedProcess(UniqueFd conn, uint64_t request_id) : conn_(std::move(conn)), req_(request_id) {}
  StdioFds io;
  int pid = 0;
  // Readable once the shim reported the exit (or went away).
  int notifyFd() const { return conn_.get(); }
  // The exit code (status, or 128 + signal), waiting at most `timeout` for it.
  [[nodiscard]] absl::StatusOr<int> exitCode(absl::Duration timeout);

 private:
  UniqueFd conn_;
  uint64_t req_;
};

// A client attached to a running container's stdio; detached when destroyed.
struct Attachment {
  UniqueFd conn;
  StdioFds io;
};

struct ExecResult {
  int exit_code = 0;  // exit status, or 128 + signal
  std::string stdout;
  std::string stderr;
  bool truncated = false;  // a stream had more than output_limit bytes
};

// A task's process: what the OCI runtime reports (created, running, paused, stopped), and
// kDeleted once the runtime no longer knows it; kUnknown when it could not be told.
enum class ProcessStatus { kCreated, kRunning, kPaused, kStopped, kDeleted, kUnknown };
// containerd's words for it ("created", "running", ..., "deleted", "unknown").
const char* toString(ProcessStatus s);
// The runtime's word; anything else is kUnknown.
ProcessStatus processStatusOf(std::string_view word);

struct RuntimeState {
  ProcessStatus status = ProcessStatus::kUnknown;
  int pid = 0;
};

// What berthd asks of a pod's monitor about its tasks. ShimClient speaks to a real berth-shim;
// unit tests of failure paths put fakes behind it (a shim that dies mid-stop, a start that
// fails). A monitor that is gone answers Unavailable naming the pod.
class TaskApi {
 public:
  virtual ~TaskApi() = default;
  // Runs `runtime create`; returns the container init's pid.
  [[nodiscard]] virtual absl::StatusOr<int> create(const CreateOptions& opts) = 0;
  [[nodiscard]] virtual absl::Status start(const std::string& id) = 0;
  // Killing a stopped container is OK; NotFound if the runtime does not know it.
  [[nodiscard]] virtual absl::Status kill(const std::string& id, int signal, bool all) = 0;
  // Idempotent: removing an unknown container is OK.
  [[nodiscard]] virtual absl::Status remove(const std::string& id, bool force) = 0;
  // NotFound for an unknown container.
  [[nodiscard]] virtual absl::StatusOr<RuntimeState> state(const std::string& id) = 0;
  // Runs a process in a running container (with the container's process spec, overridden by
  // `opts`) and returns its exit code and output once it has exited. Uses its own connection;
  // no call timeout beyond opts.timeout_ms plus the call timeout as a margin. NotFound for an
  // unknown container, FailedPrecondition if it is not running, DeadlineExceeded on timeout.
  [[nodiscard]] virtual absl::StatusOr<ExecResult> exec(const ExecOptions& opts) = 0;
  // Starts a process like exec() but hands its stdio to the caller: pipes (stdin only with
  // `want_stdin`), or with opts.tty one terminal. No timeout applies.
  [[nodiscard]] virtual absl::StatusOr<std::unique_ptr<StreamedProcess>> execStreamed(
      const ExecOptions& opts, bool want_stdin) = 0;
  // Attaches to a running container's output (copies of what it writes from now on, logged or
  // not) and, when it was created with stdin, its stdin. FailedPrecondition when it is not
  // running or its stdin is gone (stdin_once).
  [[nodiscard]] virtual absl::StatusOr<std::unique_ptr<Attachment>> attach(const std::string& id,
                                                                           bool want_stdin,
                                                                           bool want_stdout,
                                                                           bool want_stderr) = 0;
  // An attached client ended its stdin: closes the container's stdin if it is stdin_once.
  [[nodiscard]] virtual absl::Status closeStdinOnce(const std::string& id) = 0;
  // Closes and reopens the container's CRI log file at the same path (after kubelet rotated
  // it). FailedPrecondition if the container is not running or has no log file.
  [[nodiscard]] virtual absl::Status reopenLog(const std::string& id) = 0;
  // The exit is persisted by the daemon: the monitor may forget its record (with `seq` > 0,
  // only the record of that number).
  [[nodiscard]] virtual absl::Status ackExit(const std::string& id, uint64_t seq = 0) = 0;
};

// What a pod's controller needs of the pod's monitor beyond its tasks: its events, its exit
// records, its end. A narrow seam, so that the controller's failure paths (a shim that dies, a
// launch that fails, a crash between two steps) are unit-tested with fakes.
class PodShim : public TaskApi {
 public:
  virtual int pid() const = 0;
  virtual const std::string& dir() const = 0;
  // A connection on which the shim pushes exit and OOM events (protocol.h: "subscribe"),
  // replaying first the records not yet acknowledged; EOF when the shim is gone.
  [[nodiscard]] virtual absl::StatusOr<UniqueFd> subscribe() = 0;
  // The OOM kill `seq` of container `id` (an "oom" event) is persisted by the daemon.
  [[nodiscard]] virtual absl::Status ackOom(const std::string& id, uint64_t seq) = 0;
  // Exit records not yet acknowledged.
  [[nodiscard]] virtual absl::StatusOr<std::vector<ExitInfo>> exits() = 0;
  // Kills and deletes what still runs and ends the shim; OK for a shim already gone.
  [[nodiscard]] virtual absl::Status shutdown() = 0;
  // Drops this client's connections; the shim keeps running.
  virtual void close() = 0;
};

// Starts pods' monitors and reaches running ones.
class ShimLauncher {
 public:
  virtual ~ShimLauncher() = default;
  // Starts a monitor for cfg.id and returns once it serves.
  [[nodiscard]] virtual absl::StatusOr<std::unique_ptr<PodShim>> launch(const ShimConfig& cfg) = 0;
  // The monitor serving `dir`: NotFound if none left a socket, Unavailable if it does not
  // answer.
  [[nodiscard]] virtual absl::StatusOr<std::unique_ptr<PodShim>> connect(
      const std::string& dir) = 0;
};

// berth-shim processes, through ShimClient::launch and ShimClient::connect.
std::shared_ptr<ShimLauncher> processShims();

// Thread-safe: any thread may call any method. Each call takes an idle connection from a small
// pool (or opens one), so a slow call does not hold up others; wait() uses its own connection.
// A shim that is gone maps to Unavailable naming the pod.
class ShimClient final : public PodShim {
 public:
  // Starts a shim for cfg.id (it daemonizes and outlives the caller) and waits, bounded by
  // cfg.start_timeout, until it listens. AlreadyExists if a shim already serves cfg.dir.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ShimClient>> launch(const ShimConfig& cfg);
  // Reconnects to the shim serving `dir`: NotFound if it left no socket, Unavailable if it does
  // not answer.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ShimClient>> connect(
      const std::string& dir, absl::Duration call_timeout = absl::Seconds(30));

  ShimClient(const ShimClient&) = delete;
  ShimClient& operator=(const ShimClient&) = delete;
  ~ShimClient();

  absl::StatusOr<int> create(const CreateOptions& opts) override;
  absl::Status start(const std::string& id) override;
  absl::Status kill(const std::string& id, int signal, bool all) override;
  absl::Status remove(const std::string& id, bool force) override;
  absl::StatusOr<RuntimeState> state(const std::string& id) override;
  // Blocks until the container's init has exited (at once if its exit is recorded); no timeout.
  [[nodiscard]] absl::StatusOr<ExitInfo> wait(const std::string& id);
  absl::StatusOr<ExecResult> exec(const ExecOptions& opts) override;
  absl::StatusOr<std::unique_ptr<StreamedProcess>> execStreamed(const ExecOptions& opts,
                                                                bool want_stdin) override;
  absl::StatusOr<std::unique_ptr<Attachment>> attach(const std::string& id, bool want_stdin,
                                                     bool want_stdout, bool want_stderr) override;
  absl::Status closeStdinOnce(const std::string& id) override;
  absl::Status reopenLog(const std::string& id) override;
  absl::Status ackExit(const std::string& id, uint64_t seq = 0) override;
  absl::Status ackOom(const std::string& id, uint64_t seq) override;
  absl::StatusOr<std::vector<ExitInfo>> exits() override;
  // A connection of its own on which the shim pushes exit events (protocol.h: "subscribe"),
  // replaying first the records not yet acknowledged. The caller reads it (non-blocking) with
  // a FrameReader; EOF means the shim closed it (it exited, or was killed).
  absl::StatusOr<UniqueFd> subscribe() override;
  // Kills and deletes the pod's remaining containers and stops the shim; returns once the shim
  // has closed its connections (it has exited). Idempotent: a shim already gone is OK.
  absl::Status shutdown() override;
  // The shim's pid and version (a liveness check).
  [[nodiscard]] absl::Status ping();

  int pid() const override { return pid_; }
  const std::string& dir() const override { return dir_; }
  const std::string& podId() const { return pod_id_; }
  void setCallTimeout(absl::Duration timeout);

  // Ends this client's connections, including waits in progress (which then return
  // Cancelled). The shim and its containers keep running. Further calls fail.
  void close() override;

 private:
  ShimClient(std::string dir, std::string pod_id, absl::Duration call_timeout);

  // Sends `op` with `fields` on a pooled connection and returns the ok reply; error replies
  // become their status. InfiniteDuration: no timeout.
  [[nodiscard]] absl::StatusOr<Json> call(absl::string_view op, Json fields,
                                          absl::Duration timeout);
  [[nodiscard]] absl::StatusOr<Json> callTimed(absl::string_view op, Json fields);
  // One request/reply exchange on `fd`.
  [[nodiscard]] absl::StatusOr<Json> exchange(int fd, absl::string_view op, Json fields,
                                              absl::Duration timeout,
                                              size_t max_frame = kMaxFrameSize);
  // A call on a connection of its own, which close() interrupts (long-running ops: wait, exec).
  [[nodiscard]] absl::StatusOr<Json> callAlone(absl::string_view op, Json fields,
                                               absl::Duration timeout, size_t max_frame);
  [[nodiscard]] absl::StatusOr<UniqueFd> takeConnection();
  // A new connection of the caller's own, and the call timeout now. Unavailable when the shim
  // does not answer, Cancelled after close().
  [[nodiscard]] absl::StatusOr<UniqueFd> ownConnection(absl::Duration* timeout);
  void giveBack(UniqueFd fd);
  // Sends `op` on a new connection of its own and reads the first reply with the descriptors
  // that came with it.
  [[nodiscard]] absl::StatusOr<Json> callWithFds(absl::string_view op, Json fields,
                                                 UniqueFd* conn, uint64_t* request_id,
                                                 std::vector<UniqueFd>* fds);
  // Maps a transport failure to a status naming the pod.
  absl::Status transportError(const Outcome& o, absl::string_view op) const;

  const std::string dir_;
  std::string pod_id_;
  int pid_ = 0;

  mutable absl::Mutex mu_;
  absl::Duration call_timeout_ ABSL_GUARDED_BY(mu_);
  std::vector<UniqueFd> idle_ ABSL_GUARDED_BY(mu_);
  std::vector<int> waiting_fds_ ABSL_GUARDED_BY(mu_);  // connections of callAlone()
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t next_request_id_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace berth::shim
