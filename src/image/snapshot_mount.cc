// mount(2) for snapshot mounts: option strings to flags and data, read-only bind remounts.
#include "image/snapshot_mount.h"

#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/logging.h"
#include "common/status.h"

namespace berth::image {
namespace {

struct FlagOption {
  const char* name;
  bool clear;  // the option removes the flag instead of setting it
  unsigned long flag;
};

// The options mount(8) turns into flags (as in containerd's mount_linux.go).
constexpr auto kFlags = std::to_array<FlagOption>({
    {"async", true, MS_SYNCHRONOUS},
    {"atime", true, MS_NOATIME},
    {"bind", false, MS_BIND},
    {"defaults", false, 0},
    {"dev", true, MS_NODEV},
    {"diratime", true, MS_NODIRATIME},
    {"dirsync", false, MS_DIRSYNC},
    {"exec", true, MS_NOEXEC},
    {"noatime", false, MS_NOATIME},
    {"nodev", false, MS_NODEV},
    {"nodiratime", false, MS_NODIRATIME},
    {"noexec", false, MS_NOEXEC},
    {"nosuid", false, MS_NOSUID},
    {"rbind", false, MS_BIND | MS_REC},
    {"relatime", false, MS_RELATIME},
    {"norelatime", true, MS_RELATIME},
    {"ro", false, MS_RDONLY},
    {"rw", true, MS_RDONLY},
    {"strictatime", false, MS_STRICTATIME},
    {"suid", true, MS_NOSUID},
    {"sync", false, MS_SYNCHRONOUS},
});

absl::Status mountOne(const Mount& m, const std::string& target) {
  unsigned long flags = 0;
  std::vector<std::string> data;
  for (const std::string& option : m.options) {
    const FlagOption* found = nullptr;
    for (const FlagOption& f : kFlags) {
      if (option == f.name) found = &f;
    }
    if (found == nullptr) {
      data.push_back(option);
    } else if (found->clear) {
      flags &= ~found->flag;
    } else {
      flags |= found->flag;
    }
  }
  std::string joined = absl::StrJoin(data, ",");
  const auto page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  if (joined.size() >= page) {
    return absl::InvalidArgumentError(absl::StrCat("mount options for ", target, " are ",
                                                   joined.size(), " bytes, over the page size"));
  }
  const std::string context = absl::StrCat("mount ", m.type, " ", m.source, " on ", target);
  const bool bind = (flags & MS_BIND) != 0;
  const char* type = bind ? "" : m.type.c_str();
  if (::mount(m.source.c_str(), target.c_str(), type, flags,
              joined.empty() ? nullptr : joined.c_str()) != 0) {
    return lastErrnoStatus(context);
  }
  // A bind mount ignores the other flags until it is remounted.
  const unsigned long rest = flags & ~(MS_BIND | MS_REC);
  if (bind && rest != 0 &&
      ::mount("", target.c_str(), "", MS_REMOUNT | MS_BIND | rest, nullptr) != 0) {
    absl::Status st = lastErrnoStatus(absl::StrCat("remount ", target, " with flags"));
    ::umount2(target.c_str(), MNT_DETACH);
    return st;
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status mountAll(const std::vector<Mount>& mounts, const std::string& target) {
  for (size_t i = 0; i < mounts.size(); ++i) {
    absl::Status st = mountOne(mounts[i], target);
    if (!st.ok()) {
      absl::Status undo = unmountAll(target, i);
      if (!undo.ok()) logging::get("snapshot")->error("{}", undo.message());
      return st;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Idmap> Idmap::open(const std::string& path, const IdMappings& uids,
                                  const IdMappings& gids) {
  Idmap out;
  BERTH_ASSIGN_OR_RETURN(out.userns, openUserns(path));
  auto uid = hostIdOf(uids, 0);
  auto gid = hostIdOf(gids, 0);
  if (!uid || !gid) {
    return absl::InvalidArgumentError(
        absl::StrCat("user namespace ", path, ": root is not mapped"));
  }
  out.root_uid = *uid;
  out.root_gid = *gid;
  return out;
}

namespace {

absl::Status mountOneIdmapped(const Mount& m, const std::string& target, const Idmap& idmap) {
  const bool readonly = std::find(m.options.begin(), m.options.end(), "ro") != m.options.end();
  if (m.type == "bind") {
    const bool recursive =
        std::find(m.options.begin(), m.options.end(), "rbind") != m.options.end();
    BERTH_ASSIGN_OR_RETURN(
        UniqueFd tree, idmappedTree(m.source, idmap.userns.get(), recursive, readonly, MS_PRIVATE));
    return attachTree(tree.get(), target);
  }
  if (m.type != "overlay") {
    return absl::InvalidArgumentError(
        absl::StrCat("mount ", m.type, " on ", target, " cannot be idmapped"));
  }
  Mount mapped = m;
  std::vector<UniqueFd> layers;  // held until the overlay is mounted
  for (std::string& option : mapped.options) {
    if (absl::StartsWith(option, "upperdir=")) {
      const std::string upper = option.substr(std::strlen("upperdir="));
      if (::lchown(upper.c_str(), idmap.root_uid, idmap.root_gid) != 0) {
        return lastErrnoStatus(absl::StrCat("give ", upper, " to the mapped root"));
      }
    }
    if (!absl::StartsWith(option, "lowerdir=")) continue;
    std::vector<std::string> fds;
    for (absl::string_view lower :
         absl::StrSplit(absl::string_view(option).substr(std::strlen("lowerdir=")), ':')) {
      BERTH_ASSIGN_OR_RETURN(UniqueFd tree, idmappedTree(std::string(lower), idmap.userns.get(),
                                                         false, true, MS_PRIVATE));
      fds.push_back(absl::StrCat("/proc/self/fd/", tree.get()));
      layers.push_back(std::move(tree));
    }
    option = absl::StrCat("lowerdir=", absl::StrJoin(fds, ":"));
  }
  return mountOne(mapped, target);
}

}  // namespace

absl::Status mountAllIdmapped(const std::vector<Mount>& mounts, const std::string& target,
                              const Idmap& idmap) {
  for (size_t i = 0; i < mounts.size(); ++i) {
    absl::Status st = mountOneIdmapped(mounts[i], target, idmap);
    if (!st.ok()) {
      absl::Status undo = unmountAll(target, i);
      if (!undo.ok()) logging::get("snapshot")->error("{}", undo.message());
      return st;
    }
  }
  return absl::OkStatus();
}

absl::Status unmountAll(const std::string& target, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    if (::umount2(target.c_str(), MNT_DETACH) != 0) {
      return lastErrnoStatus(absl::StrCat("unmount ", target));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ScopedMount> ScopedMount::mount(const std::vector<Mount>& mounts,
                                               const std::string& target) {
  BERTH_RETURN_IF_ERROR(mountAll(mounts, target));
  return ScopedMount(target, mounts.size());
}

ScopedMount::ScopedMount(ScopedMount&& other) noexcept
    : target_(std::move(other.target_)), count_(std::exchange(other.count_, 0)) {}

ScopedMount& ScopedMount::operator=(ScopedMount&& other) noexcept {
  if (this != &other) {
    absl::Status st = unmount();
    if (!st.ok()) logging::get("snapshot")->error("{}", st.message());
    target_ = std::move(other.target_);
    count_ = std::exchange(other.count_, 0);
  }
  return *this;
}

ScopedMount::~ScopedMount() {
  absl::Status st = unmount();
  if (!st.ok()) logging::get("snapshot")->error("{}", st.message());
}

absl::Status ScopedMount::unmount() {
  size_t count = std::exchange(count_, 0);
  return unmountAll(target_, count);
}

}  // namespace berth::image
