#include "container/image_volumes.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/fs.h"
#include "common/status.h"
#include "common/unique_fd.h"
#include "image/snapshot_mount.h"

namespace berth::container {
namespace {

constexpr char kPrefix[] = "ImageVolumeMountFailed: ";

std::string volumesDir(const std::string& dir) { return dir + "/image-volumes"; }
std::string idmappedDir(const std::string& dir) { return dir + "/idmapped"; }
std::string snapshotKey(const std::string& id, const std::string& n) {
  return absl::StrCat(id, "-iv", n);
}

absl::Status failed(absl::StatusCode code, const ImageVolumeRequest& req, const std::string& why) {
  return absl::Status(code, absl::StrCat(kPrefix, "image volume at \"", req.container_path,
                                         "\" (image \"", req.image, "\"): ", why));
}

// As kubelet checks a sub path: relative, without "..".
absl::Status checkSubPath(const ImageVolumeRequest& req) {
  if (req.sub_path.empty()) return absl::OkStatus();
  if (req.sub_path.front() == '/') {
    return failed(absl::StatusCode::kInvalidArgument, req,
                  absl::StrCat("image_sub_path \"", req.sub_path, "\" is absolute"));
  }
  for (absl::string_view part : absl::StrSplit(req.sub_path, '/')) {
    if (part == "..") {
      return failed(absl::StatusCode::kInvalidArgument, req,
                    absl::StrCat("image_sub_path \"", req.sub_path, "\" leads out of the image"));
    }
  }
  if (req.sub_path.find('\0') != std::string::npos) {
    return failed(absl::StatusCode::kInvalidArgument, req, "image_sub_path has a NUL byte");
  }
  return absl::OkStatus();
}

// `sub_path` resolved inside the mount at `root` (symlinks taken relative to it, never out of
// it, and never across another mount), as the host path of what it names.
absl::StatusOr<std::string> resolveInside(const std::string& root, const ImageVolumeRequest& req) {
  UniqueFd dir(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) return lastErrnoStatus(absl::StrCat("open ", root));
  open_how how{};
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
  UniqueFd target(
      static_cast<int>(::syscall(SYS_openat2, dir.get(), req.sub_path.c_str(), &how, sizeof how)));
  if (!target.valid()) {
    int err = errno;
    if (err == ENOENT || err == ENOTDIR) {
      return failed(absl::StatusCode::kNotFound, req,
                    absl::StrCat("image_sub_path \"", req.sub_path, "\" is not in the image"));
    }
    return failed(absl::StatusCode::kInvalidArgument, req,
                  absl::StrCat("image_sub_path \"", req.sub_path, "\": ", std::strerror(err)));
  }
  char buf[PATH_MAX];
  std::string link = absl::StrCat("/proc/self/fd/", target.get());
  ssize_t len = ::readlink(link.c_str(), buf, sizeof buf - 1);
  if (len < 0) return lastErrnoStatus(absl::StrCat("read ", link));
  std::string resolved(buf, static_cast<size_t>(len));
  if (resolved != root && !absl::StartsWith(resolved, root + "/")) {
    return failed(absl::StatusCode::kInvalidArgument, req,
                  absl::StrCat("image_sub_path \"", req.sub_path, "\" leads out of the image"));
  }
  return resolved;
}

}  // namespace

absl::StatusOr<std::string> mountImageVolume(image::ImageManager& images,
                                             image::OverlaySnapshotter& snapshots,
                                             const std::string& id, const std::string& dir,
                                             size_t n, const ImageVolumeRequest& req, Undo& undo,
                                             const image::Idmap* idmap) {
  BERTH_RETURN_IF_ERROR(checkSubPath(req));
  if (req.image.empty()) return failed(absl::StatusCode::kInvalidArgument, req, "no image named");
  auto image = images.resolve(req.image);
  if (absl::IsNotFound(image.status())) {
    return failed(absl::StatusCode::kNotFound, req, "not found: pull it first");
  }
  if (!image.ok()) return failed(image.status().code(), req, std::string(image.status().message()));
  // The layers exist (or are unpacked again) and stay while this volume is made; then the
  // snapshot on them keeps them.
  auto lease = images.useImage(**image);
  if (!lease.ok()) {
    return failed(lease.status().code(), req, std::string(lease.status().message()));
  }
  const std::string name = std::to_string(n);
  const std::string target = volumesDir(dir) + "/" + name;
  const std::string key = snapshotKey(id, name);
  BERTH_RETURN_IF_ERROR(makeDirs(target, 0700));
  undo.arm("image volume folder " + target, [target] { return removeAll(target); });
  auto mounts = snapshots.prepare(key, (*image)->chain_id);
  if (!mounts.ok()) return annotate(mounts.status(), absl::StrCat(kPrefix, "snapshot ", key));
  undo.arm("image volume snapshot " + key, [&snapshots, key] { return snapshots.remove(key); });
  for (image::Mount& m : *mounts) m.options.push_back("ro");
  BERTH_RETURN_IF_ERROR(idmap == nullptr ? image::mountAll(*mounts, target)
                                         : image::mountAllIdmapped(*mounts, target, *idmap));
  undo.arm("image volume mount " + target,
           [target, count = mounts->size()] { return image::unmountAll(target, count); });
  if (req.sub_path.empty()) return target;
  return resolveInside(target, req);
}

absl::StatusOr<std::string> mountIdmappedVolume(const std::string& dir, size_t n,
                                                const std::string& host_path,
                                                const image::Idmap& idmap, bool slave, Undo& undo) {
  struct stat st {};
  if (::stat(host_path.c_str(), &st) != 0) {
    if (errno == ENOENT) return host_path;
    return lastErrnoStatus(absl::StrCat("stat mount host_path ", host_path));
  }
  BERTH_RETURN_IF_ERROR(makeDirs(idmappedDir(dir), 0700));
  const std::string target = absl::StrCat(idmappedDir(dir), "/", n);
  if (S_ISDIR(st.st_mode)) {
    if (::mkdir(target.c_str(), 0700) != 0 && errno != EEXIST) {
      return lastErrnoStatus(absl::StrCat("create ", target));
    }
  } else if (!UniqueFd(::open(target.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600)).valid()) {
    return lastErrnoStatus(absl::StrCat("create ", target));
  }
  BERTH_ASSIGN_OR_RETURN(UniqueFd tree,
                         idmappedTree(host_path, idmap.userns.get(), /*recursive=*/true,
                                      /*readonly=*/false, slave ? MS_SLAVE : MS_PRIVATE));
  BERTH_RETURN_IF_ERROR(attachTree(tree.get(), target));
  undo.arm("idmapped volume " + target, [target] { return image::unmountAll(target, 1); });
  return target;
}

absl::Status unmountImageVolumes(const std::string& dir) {
  for (const std::string& folder : {volumesDir(dir), idmappedDir(dir)}) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(folder, ec)) {
      absl::Status st = image::unmountAll(e.path().string(), 1);
      // EINVAL: not mounted (any more); NotFound: the folder went meanwhile.
      if (!st.ok() && !absl::IsInvalidArgument(st) && !absl::IsNotFound(st)) return st;
    }
  }
  return absl::OkStatus();
}

absl::Status removeImageVolumes(image::OverlaySnapshotter& snapshots, const std::string& id,
                                const std::string& dir) {
  BERTH_RETURN_IF_ERROR(unmountImageVolumes(dir));
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(volumesDir(dir), ec)) {
    BERTH_RETURN_IF_ERROR(snapshots.remove(snapshotKey(id, e.path().filename().string())));
  }
  return absl::OkStatus();
}

}  // namespace berth::container
