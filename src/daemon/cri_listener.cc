// The CRI socket's accept loop: poll, accept until the backlog is empty, hand over or refuse,
// back off on errors.
#include "daemon/cri_listener.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "common/status.h"

namespace berth::daemon {

absl::StatusOr<UniqueFd> listenUnix(const std::string& path, gid_t gid) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return lastErrnoStatus(absl::StrCat("create socket for ", path));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("socket path ", path, " is too long"));
  }
  path.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
  // Linux creates the socket file with the socket's own mode minus the umask: set it first, so
  // that the file never exists with looser permissions. Without that (an old kernel), a
  // process-wide umask is the fallback, as gRPC's own listener needed.
  bool premoded = ::fchmod(fd.get(), 0660) == 0;
  mode_t old_mask = premoded ? 0 : ::umask(0117);
  int rc = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  int bind_errno = errno;
  if (!premoded) ::umask(old_mask);
  if (rc != 0) return errnoStatus(bind_errno, absl::StrCat("bind ", path));
  if (::chown(path.c_str(), 0, gid) != 0 || ::chmod(path.c_str(), 0660) != 0) {
    absl::Status st = lastErrnoStatus(absl::StrCat("set owner and mode of ", path));
    ::unlink(path.c_str());
    return st;
  }
  if (::listen(fd.get(), SOMAXCONN) != 0) {
    absl::Status st = lastErrnoStatus(absl::StrCat("listen on ", path));
    ::unlink(path.c_str());
    return st;
  }
  return fd;
}

int connectionBound(int max_connections, rlim_t fd_soft_limit) {
  rlim_t reserve = std::min<rlim_t>(std::max<rlim_t>(256, fd_soft_limit / 4), fd_soft_limit / 2);
  rlim_t room = fd_soft_limit - reserve;
  rlim_t bound = std::min<rlim_t>(static_cast<rlim_t>(std::max(max_connections, 1)), room);
  return static_cast<int>(std::max<rlim_t>(bound, 1));
}

void ConnectionTracker::add(int fd) {
  struct stat st {};
  // A number already here was closed and reused by this very connection: replace it.
  open_[fd] = ::fstat(fd, &st) == 0 ? st.st_ino : 0;
}

size_t ConnectionTracker::sweep() {
  for (auto it = open_.begin(); it != open_.end();) {
    struct stat st {};
    bool same = ::fstat(it->first, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_ino == it->second;
    it = same ? std::next(it) : open_.erase(it);
  }
  return open_.size();
}

bool CriListener::Throttled::ready(absl::Time now, absl::Duration interval, uint64_t* skipped) {
  if (now - last_ < interval) {
    ++skipped_;
    return false;
  }
  *skipped = skipped_;
  skipped_ = 0;
  last_ = now;
  return true;
}

CriListener::CriListener(UniqueFd listen_fd, UniqueFd wake_fd, Handoff handoff,
                         CriListenerOptions options, AcceptFn accept_fn)
    : options_(options),
      handoff_(std::move(handoff)),
      accept_(std::move(accept_fn)),
      log_(logging::get("daemon")),
      listen_fd_(std::move(listen_fd)),
      wake_fd_(std::move(wake_fd)),
      backoff_(options.min_backoff) {}

absl::StatusOr<std::unique_ptr<CriListener>> CriListener::start(UniqueFd listen_fd, Handoff handoff,
                                                                CriListenerOptions options,
                                                                AcceptFn accept_fn) {
  UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake.valid()) return lastErrnoStatus("create the CRI listener's wake-up eventfd");
  if (!accept_fn) {
    accept_fn = [](int lfd) {
      return ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    };
  }
  std::unique_ptr<CriListener> l(new CriListener(
      std::move(listen_fd), std::move(wake), std::move(handoff), options, std::move(accept_fn)));
  l->thread_ = std::thread([raw = l.get()] { raw->run(); });
  return l;
}

CriListener::~CriListener() { stop(); }

void CriListener::stop() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    (void)!::write(wake_fd_.get(), &one, sizeof one);
    thread_.join();
  }
  listen_fd_.reset();
}

CriListener::Stats CriListener::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

void CriListener::run() {
  pollfd fds[2] = {{listen_fd_.get(), POLLIN, 0}, {wake_fd_.get(), POLLIN, 0}};
  for (;;) {
    fds[0].revents = fds[1].revents = 0;
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      // Not expected with two valid descriptors; never spin, never give up.
      log_->error("CRI socket: poll: {}", std::strerror(errno));
      if (!pause(options_.max_backoff)) return;
      continue;
    }
    if (fds[1].revents != 0) return;
    if (fds[0].revents != 0 && !acceptAll()) return;
  }
}

bool CriListener::acceptAll() {
  for (;;) {
    int fd = accept_(listen_fd_.get());
    if (fd >= 0) {
      backoff_ = options_.min_backoff;
      onAccepted(fd);
      continue;
    }
    int err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK) return true;
    // A signal, or a client that gave up while it waited in the backlog.
    if (err == EINTR || err == ECONNABORTED) continue;
    // Out of descriptors (EMFILE, ENFILE) or memory (ENOBUFS, ENOMEM), or anything else: the
    // connection stays in the backlog; try again after a pause, longer each time.
    size_t open = tracker_.sweep();
    last_sweep_ = absl::Now();
    {
      absl::MutexLock lock(&mu_);
      ++stats_.accept_errors;
      stats_.open = open;
    }
    uint64_t skipped = 0;
    if (error_log_.ready(absl::Now(), options_.log_interval, &skipped)) {
      log_->warn(
          "CRI socket: accept: {} ({} connections open); retrying in {} ({} more such errors "
          "since the last warning)",
          std::strerror(err), open, absl::FormatDuration(backoff_), skipped);
    }
    if (!pause(backoff_)) return false;
    backoff_ = std::min(backoff_ * 2, options_.max_backoff);
    return true;
  }
}

void CriListener::onAccepted(int fd) {
  auto bound = static_cast<size_t>(options_.max_connections);
  if (tracker_.size() >= bound && absl::Now() - last_sweep_ >= options_.sweep_interval) {
    tracker_.sweep();
    last_sweep_ = absl::Now();
  }
  if (tracker_.size() >= bound) {
    ::close(fd);
    {
      absl::MutexLock lock(&mu_);
      ++stats_.refused;
      stats_.open = tracker_.size();
    }
    uint64_t skipped = 0;
    if (refused_log_.ready(absl::Now(), options_.log_interval, &skipped)) {
      log_->warn(
          "CRI socket: {} connections are open, the bound (grpc.max_connections); refusing new "
          "ones until some close ({} more refused since the last warning)",
          bound, skipped);
    }
    return;
  }
  tracker_.add(fd);
  {
    absl::MutexLock lock(&mu_);
    ++stats_.accepted;
    stats_.open = tracker_.size();
  }
  handoff_(fd);
}

bool CriListener::pause(absl::Duration d) {
  pollfd wake{wake_fd_.get(), POLLIN, 0};
  auto ms = static_cast<int>(std::max<int64_t>(absl::ToInt64Milliseconds(d), 1));
  int rc = ::poll(&wake, 1, ms);
  return !(rc > 0 && wake.revents != 0);
}

}  // namespace berth::daemon
