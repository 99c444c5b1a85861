// berth-shim's server: one single-threaded poll loop over the listening socket, client
// connections and a signalfd (SIGCHLD, SIGTERM, SIGINT). It runs the OCI runtime for the pod's
// containers through RuntimeRunner, reaps every child (it is a subreaper), and records each
// container init's exit durably in ExitStore before telling anyone.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "shim/exit_store.h"
#include "shim/protocol.h"
#include "shim/runtime_runner.h"

namespace berth::shim {

struct ServerOptions {
  std::string pod_id;
  std::string dir;  // holds shim.sock, shim.pid, exits/
  std::string runtime_path;
  std::string runtime_root;
  int64_t runtime_timeout_ms = 120000;  // a runtime command running longer is killed
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
    bool subscriber = false;
    bool closed = false;
    bool close_after_flush = false;
  };
  struct Container {
    std::string bundle;
    int pid = 0;  // 0 until `runtime create` has finished
    bool exited = false;
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

  // Event loop pieces (server.cc).
  void acceptClients();
  void readClient(Connection& c);
  void flushClient(Connection& c);
  void onSignals();
  void reap();
  void send(uint64_t conn_id, const Json& msg);
  void reply(uint64_t conn_id, uint64_t req_id, Json body);
  void replyError(uint64_t conn_id, uint64_t req_id, const Outcome& error);
  void recordExit(const std::string& container_id, int pid, int wait_status, int64_t at_ns);
  void progressShutdown();
  void finish();
  bool anyContainerRunning() const;

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
  std::vector<Waiter> shutdown_waiters_;
  ExitStore exits_;
  RuntimeRunner runner_;
  Phase phase_ = Phase::kServing;
  int deletes_pending_ = 0;
};

}  // namespace berth::shim
