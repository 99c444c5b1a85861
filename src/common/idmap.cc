// User namespace holders and idmapped mount trees.
#include "common/idmap.h"

#include <fcntl.h>
#include <linux/mount.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/fs.h"
#include "common/random_id.h"
#include "common/status.h"

namespace berth {
namespace {

constexpr size_t kMaxMappings = 340;  // the kernel's limit per map (Linux 4.15)

bool overlapping(uint64_t a, uint64_t a_len, uint64_t b, uint64_t b_len) {
  return a < b + b_len && b < a + a_len;
}

absl::Status writeMap(pid_t pid, const char* file, const IdMappings& maps) {
  const std::string path = absl::StrCat("/proc/", pid, "/", file);
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return lastErrnoStatus(absl::StrCat("open ", path));
  const std::string text = formatIdMap(maps);
  ssize_t n = ::write(fd.get(), text.data(), text.size());
  if (n < 0) return lastErrnoStatus(absl::StrCat("write ", path, " (", text.substr(0, 64), ")"));
  if (static_cast<size_t>(n) != text.size()) {
    return absl::InternalError(absl::StrCat("short write to ", path));
  }
  return absl::OkStatus();
}

// Closes every descriptor but the two given, from 3 up (close_range, Linux 5.9).
void closeAllBut(int a, int b) {
  unsigned lo = static_cast<unsigned>(std::min(a, b));
  unsigned hi = static_cast<unsigned>(std::max(a, b));
  if (lo > 3) ::syscall(SYS_close_range, 3U, lo - 1, 0U);
  if (hi > lo + 1) ::syscall(SYS_close_range, lo + 1, hi - 1, 0U);
  ::syscall(SYS_close_range, hi + 1, ~0U, 0U);
}

}  // namespace

absl::Status validateIdMappings(const IdMappings& maps, std::string_view what) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(what), ": ", std::string(why)));
  };
  if (maps.empty()) return bad("no mappings");
  if (maps.size() > kMaxMappings) return bad(absl::StrCat("more than ", kMaxMappings, " mappings"));
  constexpr uint64_t kIds = uint64_t{1} << 32;
  for (size_t i = 0; i < maps.size(); ++i) {
    const IdMapping& m = maps[i];
    const std::string one = absl::StrCat("mapping ", m.container_id, ":", m.host_id, ":", m.length);
    if (m.length == 0) return bad(one + " is empty");
    if (uint64_t{m.container_id} + m.length > kIds || uint64_t{m.host_id} + m.length > kIds) {
      return bad(one + " goes past 4294967295");
    }
    for (size_t j = 0; j < i; ++j) {
      const IdMapping& o = maps[j];
      if (overlapping(m.container_id, m.length, o.container_id, o.length) ||
          overlapping(m.host_id, m.length, o.host_id, o.length)) {
        return bad(
            absl::StrCat(one, " overlaps mapping ", o.container_id, ":", o.host_id, ":", o.length));
      }
    }
  }
  if (!hostIdOf(maps, 0).has_value()) return bad("id 0 is not mapped");
  return absl::OkStatus();
}

std::optional<uint32_t> hostIdOf(const IdMappings& maps, uint32_t id) {
  for (const IdMapping& m : maps) {
    if (id >= m.container_id && uint64_t{id} < uint64_t{m.container_id} + m.length) {
      return m.host_id + (id - m.container_id);
    }
  }
  return std::nullopt;
}

std::string formatIdMap(const IdMappings& maps) {
  std::string out;
  for (const IdMapping& m : maps)
    absl::StrAppend(&out, m.container_id, " ", m.host_id, " ", m.length, "\n");
  return out;
}

absl::StatusOr<NamespaceHolder> NamespaceHolder::start(const IdMappings& uids,
                                                       const IdMappings& gids, int more_flags) {
  int ready[2], release[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) return lastErrnoStatus("user namespace: pipe");
  UniqueFd ready_r(ready[0]), ready_w(ready[1]);
  if (::pipe2(release, O_CLOEXEC) != 0) return lastErrnoStatus("user namespace: pipe");
  UniqueFd release_r(release[0]), release_w(release[1]);
  pid_t pid = ::fork();
  if (pid < 0) return lastErrnoStatus("user namespace: fork");
  if (pid == 0) {
    // The child of a many-threaded process: system calls only.
    closeAllBut(ready_w.get(), release_r.get());
    int err = ::unshare(CLONE_NEWUSER | more_flags) == 0 ? 0 : errno;
    (void)!::write(ready_w.get(), &err, sizeof err);
    if (err != 0) ::_exit(1);
    char c;
    while (::read(release_r.get(), &c, 1) < 0 && errno == EINTR) {
    }
    ::_exit(0);
  }
  ready_w.reset();
  release_r.reset();
  NamespaceHolder holder(pid, std::move(release_w));
  int err = 0;
  ssize_t n;
  while ((n = ::read(ready_r.get(), &err, sizeof err)) < 0 && errno == EINTR) {
  }
  if (n != sizeof err) return absl::InternalError("user namespace: the helper process died");
  if (err != 0) return errnoStatus(err, "user namespace: unshare");
  BERTH_RETURN_IF_ERROR(writeMap(pid, "uid_map", uids));
  BERTH_RETURN_IF_ERROR(writeMap(pid, "gid_map", gids));
  return holder;
}

NamespaceHolder::NamespaceHolder(NamespaceHolder&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), release_(std::move(other.release_)) {}

NamespaceHolder& NamespaceHolder::operator=(NamespaceHolder&& other) noexcept {
  if (this != &other) {
    end();
    pid_ = std::exchange(other.pid_, -1);
    release_ = std::move(other.release_);
  }
  return *this;
}

NamespaceHolder::~NamespaceHolder() { end(); }

void NamespaceHolder::end() {
  if (pid_ <= 0) return;
  release_.reset();
  while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

std::string NamespaceHolder::nsPath(std::string_view type) const {
  return absl::StrCat("/proc/", pid_, "/ns/", std::string(type));
}

absl::Status letMappedRootThrough(const std::string& dir, const IdMappings& gids) {
  auto gid = hostIdOf(gids, 0);
  if (!gid) return absl::InvalidArgumentError(absl::StrCat(dir, ": gid 0 is not mapped"));
  if (::chown(dir.c_str(), 0, *gid) != 0) return lastErrnoStatus(absl::StrCat("chown ", dir));
  if (::chmod(dir.c_str(), 0710) != 0) return lastErrnoStatus(absl::StrCat("chmod ", dir));
  return absl::OkStatus();
}

absl::StatusOr<UniqueFd> openUserns(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return lastErrnoStatus(absl::StrCat("open user namespace ", path));
  return fd;
}

absl::StatusOr<UniqueFd> idmappedTree(const std::string& path, int userns_fd, bool recursive,
                                      bool readonly, unsigned long propagation) {
  unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0);
  UniqueFd tree(static_cast<int>(::syscall(SYS_open_tree, AT_FDCWD, path.c_str(), flags)));
  if (!tree.valid()) return lastErrnoStatus(absl::StrCat("open_tree ", path));
  struct mount_attr attr {};
  attr.attr_set = MOUNT_ATTR_IDMAP | (readonly ? MOUNT_ATTR_RDONLY : 0);
  attr.userns_fd = static_cast<uint64_t>(userns_fd);
  attr.propagation = propagation;
  if (::syscall(SYS_mount_setattr, tree.get(), "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0),
                &attr, sizeof attr) != 0) {
    int err = errno;
    if (err == EINVAL) {
      return absl::InvalidArgumentError(absl::StrCat(
          "idmapped mount of ", path,
          ": its filesystem (or one mounted below it) cannot be idmapped, or it is idmapped "
          "already"));
    }
    return errnoStatus(err, absl::StrCat("idmapped mount of ", path));
  }
  return tree;
}

absl::Status attachTree(int tree_fd, const std::string& target) {
  if (::syscall(SYS_move_mount, tree_fd, "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) !=
      0) {
    return lastErrnoStatus(absl::StrCat("attach mount on ", target));
  }
  return absl::OkStatus();
}

std::string unreachableByOthers(const std::string& dir) {
  std::string at;
  for (size_t i = 0; i <= dir.size(); ++i) {
    if (i < dir.size() && dir[i] != '/') continue;
    at = i == 0 ? "/" : dir.substr(0, i);
    struct stat st {};
    if (::stat(at.c_str(), &st) != 0) return absl::StrCat(at, " cannot be read");
    if ((st.st_mode & S_IXOTH) == 0) {
      char mode[16];
      std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
      return absl::StrCat(at, " cannot be searched by others (mode ", mode,
                          "): a pod's own root could not reach its rootfs below it");
    }
  }
  return "";
}

std::string idmappedOverlayUnsupported(const std::string& dir) {
  const IdMappings maps = {{.container_id = 0, .host_id = 1U << 30, .length = 65536}};
  auto holder = NamespaceHolder::start(maps, maps);
  if (!holder.ok()) return std::string(holder.status().message());
  auto userns = openUserns(holder->nsPath("user"));
  if (!userns.ok()) return std::string(userns.status().message());
  const std::string probe = absl::StrCat(dir, "/.idmap-probe-", newObjectId().substr(0, 12));
  std::string why;
  if (absl::Status st = makeDirs(probe + "/lower", 0700); !st.ok())
    return std::string(st.message());
  for (const char* d : {"/upper", "/work", "/merged"}) {
    if (::mkdir((probe + d).c_str(), 0700) != 0) why = "mkdir failed";
  }
  if (why.empty() &&
      !UniqueFd(::open((probe + "/lower/f").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600))
           .valid()) {
    why = "create a file to probe with failed";
  }
  if (why.empty()) {
    auto tree = idmappedTree(probe + "/lower", userns->get(), false, true, MS_PRIVATE);
    if (!tree.ok()) {
      why = std::string(tree.status().message());
    } else {
      const std::string opts = absl::StrCat("lowerdir=/proc/self/fd/", tree->get(),
                                            ",upperdir=", probe, "/upper,workdir=", probe, "/work");
      if (::mount("overlay", (probe + "/merged").c_str(), "overlay", 0, opts.c_str()) != 0) {
        why = std::string(lastErrnoStatus("overlayfs on an idmapped layer").message());
      } else {
        struct stat st {};
        if (::stat((probe + "/merged/f").c_str(), &st) != 0 || st.st_uid != maps[0].host_id) {
          why = "overlayfs on an idmapped layer does not show the mapped owner";
        }
        ::umount2((probe + "/merged").c_str(), MNT_DETACH);
      }
    }
  }
  (void)removeAll(probe);
  return why;
}

}  // namespace berth
