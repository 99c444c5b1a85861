// Pinned network namespaces: create (a thread's unshare + bind mount), remove, check.
#include "network/netns.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/fs.h"
#include "common/status.h"
#include "common/unique_fd.h"

namespace berth::network {
namespace {

// Serializes preparing the netns directory (a bind mount of itself, made once).
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

// Makes a network namespace with its loopback up and pins it on `path` (an existing file).
// A thread of its own enters the new namespace (unshare(CLONE_NEWNET) is per thread), pins it
// through /proc/thread-self and ends: cheaper than forking berthd, and no other thread ever
// runs in the namespace.
absl::Status pinNewNetns(const std::string& path) {
  absl::Status st;
  std::thread pinner([&] {
    const std::string what = absl::StrCat("create network namespace ", path, ": ");
    if (::unshare(CLONE_NEWNET) != 0) {
      st = lastErrnoStatus(what + "unshare(CLONE_NEWNET)");
      return;
    }
    UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    struct ifreq ifr {};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    if (!s.valid()) {
      st = lastErrnoStatus(what + "socket");
      return;
    }
    if (::ioctl(s.get(), SIOCGIFFLAGS, &ifr) != 0) {
      st = lastErrnoStatus(what + "get flags of lo");
      return;
    }
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
    if (::ioctl(s.get(), SIOCSIFFLAGS, &ifr) != 0) {
      st = lastErrnoStatus(what + "bring lo up");
      return;
    }
    const char* ns = "/proc/thread-self/ns/net";
    if (::mount(ns, path.c_str(), "none", MS_BIND, nullptr) != 0) {
      st = lastErrnoStatus(absl::StrCat(what, "bind-mount ", ns));
    }
  });
  pinner.join();
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
  {
    absl::MutexLock lock(&netnsMutex());
    BERTH_RETURN_IF_ERROR(prepareDirLocked(parentDir(path)));
  }

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
