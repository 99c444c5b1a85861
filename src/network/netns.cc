// Pinned network namespaces: create (fork + unshare + bind mount), remove, check.
#include "network/netns.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/fs.h"
#include "common/status.h"
#include "common/unique_fd.h"

namespace berth::network {
namespace {

// Serializes directory preparation and the fork in createNetns, so that no child of ours
// inherits another createNetns's pipe ends.
absl::Mutex& netnsMutex() {
  static absl::Mutex mu(absl::kConstInit);
  return mu;
}

std::string parentDir(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// True when `path` is the root of a mount (statx STATX_ATTR_MOUNT_ROOT, kernel >= 5.8; older
// kernels: a different device from the parent, which misses same-filesystem bind mounts).
bool isMountRoot(const std::string& path) {
  struct statx stx {};
  if (::statx(AT_FDCWD, path.c_str(), AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &stx) != 0) {
    return false;
  }
  if (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) {
    return (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
  }
  struct stat self {};
  struct stat parent {};
  if (::stat(path.c_str(), &self) != 0 || ::stat(parentDir(path).c_str(), &parent) != 0) {
    return false;
  }
  return self.st_dev != parent.st_dev;
}

absl::Status prepareDirLocked(const std::string& dir) {
  BERTH_RETURN_IF_ERROR(makeDirs(dir, 0700));
  if (isMountRoot(dir)) return absl::OkStatus();
  if (::mount(dir.c_str(), dir.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
    return lastErrnoStatus(absl::StrCat("bind-mount netns directory ", dir, " onto itself"));
  }
  if (::mount(nullptr, dir.c_str(), nullptr, MS_PRIVATE, nullptr) != 0) {
    absl::Status st = lastErrnoStatus(absl::StrCat("set propagation of netns directory ", dir));
    ::umount2(dir.c_str(), MNT_DETACH);
    return st;
  }
  return absl::OkStatus();
}

// What the child reports through the pipe: 0, or (step << 16) | errno.
enum ChildStep { kUnshare = 1, kSocket = 2, kGetFlags = 3, kSetFlags = 4 };

[[noreturn]] void childMain(int ready_fd, int go_fd, struct ifreq ifr) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  int code = 0;
  if (::unshare(CLONE_NEWNET) != 0) {
    code = (kUnshare << 16) | errno;
  } else {
    int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
      code = (kSocket << 16) | errno;
    } else if (::ioctl(s, SIOCGIFFLAGS, &ifr) != 0) {
      code = (kGetFlags << 16) | errno;
    } else {
      ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
      if (::ioctl(s, SIOCSIFFLAGS, &ifr) != 0) code = (kSetFlags << 16) | errno;
    }
  }
  if (::write(ready_fd, &code, sizeof code) != static_cast<ssize_t>(sizeof code)) _exit(2);
  // Stay alive (holding the namespace) until the parent has pinned it.
  char b;
  while (::read(go_fd, &b, 1) < 0 && errno == EINTR) {
  }
  _exit(0);
}

absl::Status childError(int code, const std::string& path) {
  const char* step = "?";
  switch (code >> 16) {
    case kUnshare:
      step = "unshare(CLONE_NEWNET)";
      break;
    case kSocket:
      step = "socket";
      break;
    case kGetFlags:
      step = "get flags of lo";
      break;
    case kSetFlags:
      step = "bring lo up";
      break;
  }
  return errnoStatus(code & 0xffff, absl::StrCat("create network namespace ", path, ": ", step));
}

void reap(pid_t pid) {
  while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

// Forks the namespace's first holder and pins its namespace on `path` (an existing file).
absl::Status pinNewNetns(const std::string& path) {
  int ready[2], go[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) return lastErrnoStatus("create netns: pipe");
  UniqueFd ready_r(ready[0]), ready_w(ready[1]);
  if (::pipe2(go, O_CLOEXEC) != 0) return lastErrnoStatus("create netns: pipe");
  UniqueFd go_r(go[0]), go_w(go[1]);

  struct ifreq ifr {};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  pid_t pid = ::fork();
  if (pid < 0) return lastErrnoStatus(absl::StrCat("create network namespace ", path, ": fork"));
  if (pid == 0) {
    // Only async-signal-safe calls from here: the parent may have other threads.
    ::close(ready[0]);
    ::close(go[1]);
    childMain(ready[1], go[0], ifr);
  }
  ready_w.reset();
  go_r.reset();

  int code = 0;
  ssize_t n;
  while ((n = ::read(ready_r.get(), &code, sizeof code)) < 0 && errno == EINTR) {
  }
  absl::Status st;
  if (n != static_cast<ssize_t>(sizeof code)) {
    st = absl::InternalError(
        absl::StrCat("create network namespace ", path, ": helper process ", pid, " died"));
  } else if (code != 0) {
    st = childError(code, path);
  } else {
    std::string ns = absl::StrCat("/proc/", pid, "/ns/net");
    if (::mount(ns.c_str(), path.c_str(), "none", MS_BIND, nullptr) != 0) {
      st = lastErrnoStatus(absl::StrCat("create network namespace ", path, ": bind-mount ", ns));
    }
  }
  char b = 'x';
  (void)!::write(go_w.get(), &b, 1);
  go_w.reset();
  reap(pid);
  return st;
}

}  // namespace

absl::Status prepareNetnsDir(const std::string& dir) {
  absl::MutexLock lock(&netnsMutex());
  return prepareDirLocked(dir);
}

absl::Status releaseNetnsDir(const std::string& dir) {
  absl::MutexLock lock(&netnsMutex());
  if (!isMountRoot(dir)) return absl::OkStatus();
  if (::umount2(dir.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
    return lastErrnoStatus(absl::StrCat("unmount netns directory ", dir));
  }
  return absl::OkStatus();
}

absl::Status createNetns(const std::string& path) {
  if (path.empty() || path[0] != '/' || path.back() == '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("network namespace path \"", path, "\" must be an absolute file path"));
  }
  absl::MutexLock lock(&netnsMutex());
  BERTH_RETURN_IF_ERROR(prepareDirLocked(parentDir(path)));

  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444));
  if (!fd.valid() && errno == EEXIST) {
    if (!netnsClosed(path)) {
      return absl::AlreadyExistsError(absl::StrCat("network namespace ", path, " already exists"));
    }
    // A file left by a crash between create and pin: take it over.
    if (::unlink(path.c_str()) != 0) {
      return lastErrnoStatus(absl::StrCat("remove stale network namespace file ", path));
    }
    fd.reset(::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444));
  }
  if (!fd.valid()) return lastErrnoStatus(absl::StrCat("create network namespace file ", path));
  fd.reset();

  absl::Status st = pinNewNetns(path);
  if (!st.ok()) ::unlink(path.c_str());
  return st;
}

absl::Status removeNetns(const std::string& path) {
  // Stacked pins (should not happen) are removed too; the bound keeps a bad path from looping.
  for (int i = 0; i < 8; ++i) {
    if (::umount2(path.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) == 0) continue;
    if (errno == EINVAL || errno == ENOENT) break;
    return lastErrnoStatus(absl::StrCat("unmount network namespace ", path));
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return lastErrnoStatus(absl::StrCat("remove network namespace file ", path));
  }
  return absl::OkStatus();
}

bool netnsClosed(const std::string& path) {
  struct statfs fs {};
  if (::statfs(path.c_str(), &fs) != 0) return true;
  return static_cast<unsigned long>(fs.f_type) != NSFS_MAGIC;
}

}  // namespace berth::network
