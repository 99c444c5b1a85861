// berthd's accept loop for the CRI unix socket. gRPC 1.51 stops listening for good after an
// unexpected accept error (EMFILE after a burst of connections), so berthd binds and accepts
// itself, hands every connection to gRPC, keeps a bound on the connections open at once, and
// never stops on an error.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/unique_fd.h"
#include "spdlog/spdlog.h"

namespace berth::daemon {

// Creates the unix socket `path` and listens on it: mode 0660 from the moment it exists (the
// mode is set on the socket before bind, so no process-wide umask is involved), owned by
// root:`gid`. The caller removes a stale file first. Non-blocking and close-on-exec.
[[nodiscard]] absl::StatusOr<UniqueFd> listenUnix(const std::string& path, gid_t gid);

// How many CRI connections may be open at once: `max_connections` (grpc.max_connections),
// but never so many that they leave no descriptors for berthd's own files, shim connections,
// pipes and plugins (a reserve of a quarter of `fd_soft_limit`, at least 256, at most half).
int connectionBound(int max_connections, rlim_t fd_soft_limit);

// The connections handed to gRPC, which closes them without telling: an entry is gone once
// its descriptor is closed or names another file (its number reused, so another inode).
// Used by one thread.
class ConnectionTracker {
 public:
  void add(int fd);
  // Forgets the connections that are gone; returns how many are left.
  size_t sweep();
  size_t size() const { return open_.size(); }

 private:
  std::unordered_map<int, ino_t> open_;  // fd → the socket's inode
};

struct CriListenerOptions {
  int max_connections = 1024;  // the effective bound (connectionBound())
  // After an accept error (EMFILE, ENFILE, ENOBUFS, ENOMEM, …): wait, doubling up to the max.
  absl::Duration min_backoff = absl::Milliseconds(50);
  absl::Duration max_backoff = absl::Seconds(1);
  // At the bound, a sweep is not repeated sooner than this (each is one fstat per connection).
  absl::Duration sweep_interval = absl::Milliseconds(20);
  // Warnings about refused connections and accept errors: at most one per kind this often.
  absl::Duration log_interval = absl::Seconds(10);
};

// Accepts on a listening socket in a thread of its own and hands each connection over. Created,
// stopped and destroyed by one owner thread; stats() may be called from any thread.
class CriListener {
 public:
  // Takes ownership of an accepted, non-blocking, close-on-exec connection.
  using Handoff = std::function<void(int fd)>;
  // accept4(2) by default; tests inject errors here. Returns the fd, or -1 with errno set.
  using AcceptFn = std::function<int(int listen_fd)>;

  [[nodiscard]] static absl::StatusOr<std::unique_ptr<CriListener>> start(
      UniqueFd listen_fd, Handoff handoff, CriListenerOptions options,
      AcceptFn accept_fn = nullptr);
  // stop().
  ~CriListener();
  CriListener(const CriListener&) = delete;
  CriListener& operator=(const CriListener&) = delete;

  // Wakes the loop, joins it and closes the listening socket: new connections are refused by
  // the kernel from then on. Handed-over connections are gRPC's. Idempotent.
  void stop();

  struct Stats {
    uint64_t accepted = 0;       // handed over
    uint64_t refused = 0;        // closed at once: the bound was reached
    uint64_t accept_errors = 0;  // accept failures other than EAGAIN/EINTR/ECONNABORTED
    size_t open = 0;             // handed over and not yet seen closed (as of the last look)
  };
  Stats stats() const;

 private:
  CriListener(UniqueFd listen_fd, UniqueFd wake_fd, Handoff handoff, CriListenerOptions options,
              AcceptFn accept_fn);
  void run();
  // Accepts until the backlog is empty or an error calls for a pause; false to stop.
  bool acceptAll();
  void onAccepted(int fd);
  // Sleeps `d` unless stop() is called; false when it was.
  bool pause(absl::Duration d);

  // Logs at most one warning of a kind per `log_interval`, with how many were left out.
  class Throttled {
   public:
    // True when a warning may go out now; `*skipped` is then the count left out before it.
    bool ready(absl::Time now, absl::Duration interval, uint64_t* skipped);

   private:
    absl::Time last_ = absl::InfinitePast();
    uint64_t skipped_ = 0;
  };

  const CriListenerOptions options_;
  const Handoff handoff_;
  const AcceptFn accept_;
  std::shared_ptr<spdlog::logger> log_;
  UniqueFd listen_fd_;
  UniqueFd wake_fd_;  // an eventfd: stop() writes it
  std::thread thread_;

  // State below is used only by the loop's thread.
  ConnectionTracker tracker_;
  absl::Time last_sweep_ = absl::InfinitePast();
  absl::Duration backoff_;
  Throttled refused_log_, error_log_;

  mutable absl::Mutex mu_;
  Stats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace berth::daemon
