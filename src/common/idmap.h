// User namespaces and idmapped mounts: the id mappings a pod asks for, a process that holds a
// new user namespace with them, and detached mount trees whose ids are mapped through one
// (open_tree + mount_setattr(MOUNT_ATTR_IDMAP), Linux 5.12; overlayfs on idmapped layers 5.19).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/unique_fd.h"

namespace berth {

// One line of /proc/<pid>/uid_map: ids [container_id, container_id + length) inside are
// [host_id, host_id + length) outside.
struct IdMapping {
  uint32_t container_id = 0;
  uint32_t host_id = 0;
  uint32_t length = 0;

  bool operator==(const IdMapping&) const = default;
};
using IdMappings = std::vector<IdMapping>;

// InvalidArgument naming `what` unless the mappings are ones the kernel takes: 1 to 340 of
// them, none empty, none past 2^32 - 1 on either side, no two overlapping on either side,
// and id 0 inside mapped (the pod's root must be someone).
[[nodiscard]] absl::Status validateIdMappings(const IdMappings& maps, std::string_view what);

// The host id that `id` inside maps to, or nullopt.
std::optional<uint32_t> hostIdOf(const IdMappings& maps, uint32_t id);

// The text written to /proc/<pid>/uid_map: "container host length\n" per mapping.
std::string formatIdMap(const IdMappings& maps);

// A child process in a new user namespace with the given mappings (setgroups left allowed),
// plus the namespaces `more_flags` asks for (CLONE_NEWNET, …), which the new user namespace
// owns. It waits until this object is destroyed; meanwhile its namespaces are at nsPath().
// The child makes no system call but unshare, read and _exit: safe to fork from a daemon's
// many threads. Move-only.
class NamespaceHolder {
 public:
  [[nodiscard]] static absl::StatusOr<NamespaceHolder> start(const IdMappings& uids,
                                                             const IdMappings& gids,
                                                             int more_flags = 0);
  NamespaceHolder(NamespaceHolder&& other) noexcept;
  NamespaceHolder& operator=(NamespaceHolder&& other) noexcept;
  NamespaceHolder(const NamespaceHolder&) = delete;
  NamespaceHolder& operator=(const NamespaceHolder&) = delete;
  ~NamespaceHolder();

  pid_t pid() const { return pid_; }
  // /proc/<pid>/ns/<type>, e.g. type "user" or "net".
  std::string nsPath(std::string_view type) const;

 private:
  NamespaceHolder(pid_t pid, UniqueFd release) : pid_(pid), release_(std::move(release)) {}
  void end();
  pid_t pid_ = -1;
  UniqueFd release_;  // closing it lets the child exit
};

// Lets the root group of a user namespace with `gids` search `dir` and nobody else: owner root,
// group the host gid of gid 0 inside, mode 0710. Its runtime then reaches a rootfs below.
[[nodiscard]] absl::Status letMappedRootThrough(const std::string& dir, const IdMappings& gids);

// Opens the user namespace at `path` (a pin or /proc/<pid>/ns/user).
[[nodiscard]] absl::StatusOr<UniqueFd> openUserns(const std::string& path);

// A detached copy of the mount at `path` (with its submounts when `recursive`), its ids
// mapped through user namespace `userns_fd`, read-only when asked, with `propagation`
// (MS_PRIVATE or MS_SLAVE). The tree vanishes when the descriptor is closed unless
// attachTree() put it somewhere; "/proc/self/fd/<fd>" reaches it meanwhile (overlayfs takes
// such a path as a layer). InvalidArgument when the filesystem cannot be idmapped.
[[nodiscard]] absl::StatusOr<UniqueFd> idmappedTree(const std::string& path, int userns_fd,
                                                    bool recursive, bool readonly,
                                                    unsigned long propagation);

// Attaches the detached tree `tree_fd` on `target` (move_mount).
[[nodiscard]] absl::Status attachTree(int tree_fd, const std::string& target);

// Why idmapped overlay roots cannot be made under `dir` on this host, or "" when they can:
// makes a throwaway user namespace, an idmapped layer and an overlay on it below `dir`, and
// removes them. Used once at start-up to decide whether pods may have user namespaces.
std::string idmappedOverlayUnsupported(const std::string& dir);

// Why the root of a pod's user namespace (anyone, outside it) cannot reach folders below
// `dir`, or "": names the first folder from "/" down to `dir` that others cannot search.
std::string unreachableByOthers(const std::string& dir);

}  // namespace berth
