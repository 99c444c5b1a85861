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
#include "common/crash_point.h"
#include "common/fs.h"
#include "common/idmap.h"
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

// Brings the loopback interface of the calling thread's network namespace up.
absl::Status loopbackUp(const std::string& what) {
  UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!s.valid()) return lastErrnoStatus(what + "socket");
  struct ifreq ifr {};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(s.get(), SIOCGIFFLAGS, &ifr) != 0) return lastErrnoStatus(what + "get flags of lo");
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
  if (::ioctl(s.get(), SIOCSIFFLAGS, &ifr) != 0) return lastErrnoStatus(what + "bring lo up");
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
    st = loopbackUp(what);
    if (!st.ok()) return;
    const char* ns = "/proc/thread-self/ns/net";
    if (::mount(ns, path.c_str(), "none", MS_BIND, nullptr) != 0) {
      st = lastErrnoStatus(absl::StrCat(what, "bind-mount ", ns));
    }
  });
  pinner.join();
  return st;
}

// Makes a user namespace with the pin's mappings and a network namespace it owns (a helper
// process unshares both: a thread of a many-threaded process cannot), brings the loopback up
// from a thread that joins the network namespace, and pins both on their (existing) files.
absl::Status pinNewUsernsNetns(const std::string& path, const UsernsPin& user) {
  const std::string what =
      absl::StrCat("create user and network namespaces ", user.path, ", ", path, ": ");
  auto holder = NamespaceHolder::start(user.uids, user.gids, CLONE_NEWNET);
  if (!holder.ok()) return annotate(holder.status(), what);
  UniqueFd net(::open(holder->nsPath("net").c_str(), O_RDONLY | O_CLOEXEC));
  if (!net.valid()) return lastErrnoStatus(what + "open the network namespace");
  absl::Status st;
  std::thread lo([&] {
    // This thread joins the namespace and ends with it: its namespaces die with it.
    if (::setns(net.get(), CLONE_NEWNET) != 0) {
      st = lastErrnoStatus(what + "join the network namespace");
      return;
    }
    st = loopbackUp(what);
  });
  lo.join();
  BERTH_RETURN_IF_ERROR(st);
  const std::string user_ns = holder->nsPath("user"), net_ns = holder->nsPath("net");
  if (::mount(user_ns.c_str(), user.path.c_str(), "none", MS_BIND, nullptr) != 0) {
    return lastErrnoStatus(absl::StrCat(what, "bind-mount ", user_ns));
  }
  crashPoint("pod.run.after_userns_pin");
  if (::mount(net_ns.c_str(), path.c_str(), "none", MS_BIND, nullptr) != 0) {
    st = lastErrnoStatus(absl::StrCat(what, "bind-mount ", net_ns));
    ::umount2(user.path.c_str(), MNT_DETACH);
    return st;
  }
  return absl::OkStatus();
}

// Creates the empty file a namespace is pinned on: AlreadyExists when `path` pins one already
// (a leftover file that pins nothing is replaced).
absl::Status preparePinFile(const std::string& path, const char* kind) {
  if (path.empty() || path[0] != '/' || path.back() == '/') {
    return absl::InvalidArgumentError(
        absl::StrCat(kind, " namespace path \"", path, "\" must be an absolute file path"));
  }
  {
    absl::MutexLock lock(&netnsMutex());
    BERTH_RETURN_IF_ERROR(prepareDirLocked(parentDir(path)));
  }
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444));
  if (!fd.valid() && errno == EEXIST) {
    if (!netnsClosed(path)) {
      return absl::AlreadyExistsError(absl::StrCat(kind, " namespace ", path, " already exists"));
    }
    // A file left by a crash between create and pin: take it over.
    if (::unlink(path.c_str()) != 0) {
      return lastErrnoStatus(absl::StrCat("remove stale ", kind, " namespace file ", path));
    }
    fd.reset(::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444));
  }
  if (!fd.valid()) return lastErrnoStatus(absl::StrCat("create ", kind, " namespace file ", path));
  return absl::OkStatus();
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

absl::Status createNetns(const std::string& path, const UsernsPin* user) {
  BERTH_RETURN_IF_ERROR(preparePinFile(path, "network"));
  if (user == nullptr) {
    absl::Status st = pinNewNetns(path);
    if (!st.ok()) ::unlink(path.c_str());
    return st;
  }
  absl::Status st = preparePinFile(user->path, "user");
  if (st.ok()) {
    st = pinNewUsernsNetns(path, *user);
    if (!st.ok()) (void)removeNetns(user->path);
  }
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
