// Safe path handling for layer unpacking: cleaning tar entry names, and reaching directories
// under a snapshot root through file descriptors without ever following a symlink.
// Internal to unpack.cc (and its tests).
#pragma once

#include <sys/stat.h>

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/unique_fd.h"

namespace berth::image::unpack_internal {

// The components of a tar entry name, cleaned the way tar does: leading "/" and "./" are
// dropped, empty and "." components removed and ".." applied lexically. nullopt when ".."
// climbs above the root. An empty vector is the root itself.
std::optional<std::vector<std::string>> cleanEntryPath(absl::string_view name);

// The first `n` components joined with '/' ("" for n == 0).
std::string joinPath(const std::vector<std::string>& parts, size_t n);

// openat2(2) with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS: opens `rel`
// under `dir_fd` only if no symlink is met on the way. Returns -1 and sets errno on failure
// (ENOSYS where the kernel lacks openat2).
int openBeneath(int dir_fd, const std::string& rel, int flags);

// InvalidArgument `layer entry "<entry>" in <layer> <what>`: a layer that must not be applied.
[[nodiscard]] absl::Status invalidEntry(absl::string_view entry, absl::string_view layer,
                                        absl::string_view what);

// Removes `name` in `dir_fd` and everything below it, never following a symlink.
// A missing entry is not an error. `what` names the entry in errors.
[[nodiscard]] absl::Status removeAt(int dir_fd, const std::string& name, absl::string_view what);

// The owner and mode a directory created at `rel` gets: those of the same path in the topmost
// of `lowers` (lower layers' roots, top first) that has it, if that is a directory there (as
// containerd does, so that e.g. /tmp keeps its sticky bit), else root-owned 0755.
struct stat lowerDirAttributes(const std::vector<UniqueFd>& lowers, const std::string& rel);

// Opens directories below a snapshot root, rejecting any path that passes through a symlink or
// a non-directory. Missing directories can be created, root-owned 0755; created() names them,
// so that they can be given their lower layers' owner and mode once those are known
// (adoptLowerAttributes), since a layer may be unpacked before the layers below it.
//
// Keeps the last directory it opened, because consecutive tar entries mostly share a parent.
// Whoever removes a directory under the root calls forgetCache(): the cached one may have been
// inside it.
//
// Not thread-safe; one per unpack.
class DirResolver {
 public:
  // `layer` names the layer in errors.
  DirResolver(int root_fd, std::string layer);

  // The directory made of the first `n` of `parts`; `entry` names the tar entry in errors.
  // The fd is owned by the resolver and valid until the next call.
  // InvalidArgument if the path passes through a symlink or a non-directory; NotFound if
  // (with `create` false) a directory is missing.
  [[nodiscard]] absl::StatusOr<int> openDir(const std::vector<std::string>& parts, size_t n,
                                            absl::string_view entry, bool create);

  // Stops reusing the cached directory. The fd last returned stays valid until the next call.
  void forgetCache() { cached_path_.clear(); }

  // As openDir with create == false, but returns a new fd owned by the caller.
  [[nodiscard]] absl::StatusOr<UniqueFd> openDirCopy(const std::vector<std::string>& parts,
                                                     size_t n, absl::string_view entry);

  // The layer lists directory `rel` itself: its own owner and mode apply, not the lowers'.
  void listed(const std::string& rel) { created_.erase(rel); }
  // Directories created because an entry needed them and the layer (so far) does not list,
  // by path relative to the root. Some may since have been replaced by other entries.
  const std::set<std::string>& created() const { return created_; }

 private:
  // Opens the path component by component, creating what is missing when `create`.
  [[nodiscard]] absl::StatusOr<UniqueFd> walk(const std::vector<std::string>& parts, size_t n,
                                              absl::string_view entry, bool create);

  int root_fd_;
  std::string layer_;
  std::string cached_path_;
  UniqueFd cached_fd_;
  std::set<std::string> created_;
};

}  // namespace berth::image::unpack_internal
