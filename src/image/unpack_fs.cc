// Entry-name cleaning and symlink-proof directory resolution for the layer unpacker.
#include "image/unpack_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status.h"

namespace berth::image::unpack_internal {

std::optional<std::vector<std::string>> cleanEntryPath(absl::string_view name) {
  std::vector<std::string> parts;
  for (absl::string_view part : absl::StrSplit(name, '/')) {
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (parts.empty()) return std::nullopt;
      parts.pop_back();
      continue;
    }
    parts.emplace_back(part);
  }
  return parts;
}

std::string joinPath(const std::vector<std::string>& parts, size_t n) {
  return absl::StrJoin(parts.begin(), parts.begin() + static_cast<ptrdiff_t>(n), "/");
}

int openBeneath(int dir_fd, const std::string& rel, int flags) {
  struct open_how how {};
  how.flags = static_cast<uint64_t>(flags) | O_CLOEXEC | O_NOFOLLOW;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  return static_cast<int>(::syscall(SYS_openat2, dir_fd, rel.c_str(), &how, sizeof how));
}

absl::Status invalidEntry(absl::string_view entry, absl::string_view layer,
                          absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("layer entry \"", entry, "\" in ", layer, " ", what));
}

absl::Status removeAt(int dir_fd, const std::string& name, absl::string_view what) {
  if (::unlinkat(dir_fd, name.c_str(), 0) == 0 || errno == ENOENT) return absl::OkStatus();
  if (errno != EISDIR) return lastErrnoStatus(absl::StrCat("remove ", what));
  UniqueFd fd(::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return lastErrnoStatus(absl::StrCat("open ", what));
  int dup_fd = ::dup(fd.get());
  if (dup_fd < 0) return lastErrnoStatus(absl::StrCat("dup ", what));
  DIR* dir = ::fdopendir(dup_fd);
  if (dir == nullptr) {
    ::close(dup_fd);
    return lastErrnoStatus(absl::StrCat("read ", what));
  }
  std::vector<std::string> children;
  while (struct dirent* d = ::readdir(dir)) {
    std::string child = d->d_name;
    if (child != "." && child != "..") children.push_back(std::move(child));
  }
  ::closedir(dir);
  for (const std::string& child : children) {
    absl::Status st = removeAt(fd.get(), child, absl::StrCat(what, "/", child));
    if (!st.ok()) return st;
  }
  if (::unlinkat(dir_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return lastErrnoStatus(absl::StrCat("remove ", what));
  }
  return absl::OkStatus();
}

DirResolver::DirResolver(int root_fd, std::string layer)
    : root_fd_(root_fd), layer_(std::move(layer)) {}

absl::StatusOr<int> DirResolver::openDir(const std::vector<std::string>& parts, size_t n,
                                         absl::string_view entry, bool create) {
  if (n == 0) return root_fd_;
  std::string rel = joinPath(parts, n);
  if (cached_fd_.valid() && !cached_path_.empty() && rel == cached_path_) {
    return cached_fd_.get();
  }
  cached_fd_.reset();
  // Fast path: one syscall when the directory exists and no symlink is in the way.
  UniqueFd fd(openBeneath(root_fd_, rel, O_RDONLY | O_DIRECTORY));
  if (!fd.valid()) {
    BERTH_ASSIGN_OR_RETURN(fd, walk(parts, n, entry, create));
  }
  cached_path_ = std::move(rel);
  cached_fd_ = std::move(fd);
  return cached_fd_.get();
}

absl::StatusOr<UniqueFd> DirResolver::openDirCopy(const std::vector<std::string>& parts, size_t n,
                                                  absl::string_view entry) {
  if (n == 0) {
    UniqueFd fd(::fcntl(root_fd_, F_DUPFD_CLOEXEC, 0));
    if (!fd.valid()) return lastErrnoStatus("dup snapshot root");
    return fd;
  }
  UniqueFd fd(openBeneath(root_fd_, joinPath(parts, n), O_RDONLY | O_DIRECTORY));
  if (fd.valid()) return fd;
  return walk(parts, n, entry, /*create=*/false);
}

absl::StatusOr<UniqueFd> DirResolver::walk(const std::vector<std::string>& parts, size_t n,
                                           absl::string_view entry, bool create) {
  UniqueFd cur(::fcntl(root_fd_, F_DUPFD_CLOEXEC, 0));
  if (!cur.valid()) return lastErrnoStatus("dup snapshot root");
  for (size_t i = 0; i < n; ++i) {
    const std::string& name = parts[i];
    const int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    UniqueFd next(::openat(cur.get(), name.c_str(), flags));
    if (!next.valid() && errno == ENOENT && create) {
      std::string rel = joinPath(parts, i + 1);
      // mkdirat's mode is cut by the umask: chmod sets it whole.
      if (::mkdirat(cur.get(), name.c_str(), 0700) != 0) {
        return lastErrnoStatus(
            absl::StrCat("create directory ", rel, " for layer entry \"", entry, "\" in ", layer_));
      }
      next.reset(::openat(cur.get(), name.c_str(), flags));
      if (next.valid() && (::fchown(next.get(), 0, 0) != 0 || ::fchmod(next.get(), 0755) != 0)) {
        return lastErrnoStatus(absl::StrCat("set owner and mode of directory ", rel));
      }
      if (next.valid()) created_.insert(std::move(rel));
    }
    if (!next.valid()) {
      int err = errno;
      std::string rel = joinPath(parts, i + 1);
      struct stat st {};
      if (err == ENOENT) {
        return absl::NotFoundError(absl::StrCat("directory \"", rel, "\" for layer entry \"", entry,
                                                "\" in ", layer_, " is missing"));
      }
      if ((err == ELOOP || err == ENOTDIR) &&
          ::fstatat(cur.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISLNK(st.st_mode)) {
          return invalidEntry(entry, layer_, absl::StrCat("passes through symlink \"", rel, "\""));
        }
        return invalidEntry(entry, layer_,
                            absl::StrCat("passes through \"", rel, "\", which is not a directory"));
      }
      return errnoStatus(err, absl::StrCat("open directory ", rel, " for layer entry \"", entry,
                                           "\" in ", layer_));
    }
    cur = std::move(next);
  }
  return cur;
}

struct stat lowerDirAttributes(const std::vector<UniqueFd>& lowers, const std::string& rel) {
  struct stat out {};
  out.st_mode = S_IFDIR | 0755;
  for (const UniqueFd& lower : lowers) {
    UniqueFd fd(openBeneath(lower.get(), rel, O_PATH));
    if (!fd.valid()) {
      if (errno == ENOENT) continue;  // not in this layer: look further down
      break;                          // a symlink on the way: nothing to copy
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) == 0 && S_ISDIR(st.st_mode)) out = st;
    break;  // the topmost layer with this path decides (a file or whiteout hides the rest)
  }
  return out;
}

}  // namespace berth::image::unpack_internal
