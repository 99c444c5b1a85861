// Mount descriptions returned by the snapshotter (containerd's mount.Mount) and the code that
// mounts them with mount(2), with an RAII guard that unmounts.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/idmap.h"
#include "common/unique_fd.h"

namespace berth::image {

// One mount: e.g. {"overlay", "overlay", {"index=off", "workdir=…", "upperdir=…",
// "lowerdir=a:b"}} or {"bind", "/path", {"ro", "rbind"}}. Options that are mount flags ("ro",
// "rbind", "nosuid", …) become flags; the rest are joined with ',' into the data string.
struct Mount {
  std::string type;
  std::string source;
  std::vector<std::string> options;

  bool operator==(const Mount&) const = default;
};

// Mounts each of `mounts` on `target` in order; on failure, unmounts the ones already done.
[[nodiscard]] absl::Status mountAll(const std::vector<Mount>& mounts, const std::string& target);

// A user namespace that mounts are idmapped through, and the host ids of its root.
struct Idmap {
  UniqueFd userns;
  uint32_t root_uid = 0;
  uint32_t root_gid = 0;

  // Opens the user namespace pinned at `path` whose mappings are `uids` and `gids`.
  [[nodiscard]] static absl::StatusOr<Idmap> open(const std::string& path, const IdMappings& uids,
                                                  const IdMappings& gids);
};

// mountAll() for a pod with a user namespace of its own, the same number of mounts on
// `target`: an overlay's lower layers are idmapped (detached trees, named to overlayfs as
// /proc/self/fd/N, gone with their descriptors: nothing to leak) and its upper directory
// belongs to the mapped root (overlayfs itself cannot be idmapped); a bind is attached as an
// idmapped tree. Files owned by host id X show inside as the id that maps to X: the image's
// root-owned files as the namespace's root, without copying or chowning them.
[[nodiscard]] absl::Status mountAllIdmapped(const std::vector<Mount>& mounts,
                                            const std::string& target, const Idmap& idmap);

// Detaches (MNT_DETACH) `count` mounts stacked on `target`, top first.
[[nodiscard]] absl::Status unmountAll(const std::string& target, size_t count);

// Holds mounts on a target and detaches them when destroyed (or on unmount()).
// Not thread-safe.
class ScopedMount {
 public:
  [[nodiscard]] static absl::StatusOr<ScopedMount> mount(const std::vector<Mount>& mounts,
                                                         const std::string& target);
  ScopedMount(ScopedMount&& other) noexcept;
  ScopedMount& operator=(ScopedMount&& other) noexcept;
  ScopedMount(const ScopedMount&) = delete;
  ScopedMount& operator=(const ScopedMount&) = delete;
  ~ScopedMount();

  const std::string& target() const { return target_; }
  // Unmounts now; later calls (and the destructor) do nothing.
  [[nodiscard]] absl::Status unmount();

 private:
  ScopedMount(std::string target, size_t count) : target_(std::move(target)), count_(count) {}
  std::string target_;
  size_t count_ = 0;
};

}  // namespace berth::image
