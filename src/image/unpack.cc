// Layer unpacking: reads a tar with libarchive and writes each entry relative to directory fds
// (see unpack_fs.h), converting OCI whiteouts to overlayfs ones.
#include "image/unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <memory>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/fs.h"
#include "common/logging.h"
#include "common/status.h"
#include "image/digest.h"
#include "image/unpack_fs.h"

namespace berth::image {
namespace {

using unpack_internal::cleanEntryPath;
using unpack_internal::DirResolver;
using unpack_internal::invalidEntry;
using unpack_internal::removeAt;

constexpr absl::string_view kWhiteoutPrefix = ".wh.";
constexpr absl::string_view kWhiteoutMetaPrefix = ".wh..wh.";
constexpr absl::string_view kOpaqueMarker = ".wh..wh..opq";
constexpr const char* kOpaqueXattr = "trusted.overlay.opaque";

const std::shared_ptr<spdlog::logger>& log() {
  static const std::shared_ptr<spdlog::logger> logger = logging::get("unpack");
  return logger;
}

struct ArchiveReadFree {
  void operator()(struct archive* a) const { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<struct archive, ArchiveReadFree>;

// An error from libarchive: I/O errors keep their errno class, anything else means the layer is
// not a valid archive.
absl::Status archiveError(struct archive* a, absl::string_view layer) {
  const char* msg = archive_error_string(a);
  std::string text =
      absl::StrCat("read layer ", layer, ": ", msg != nullptr ? msg : "unknown error");
  int err = archive_errno(a);
  if (err > 0 && err != EILSEQ && err != EINVAL) return errnoStatus(err, text);
  return absl::InvalidArgumentError(text);
}

using Times = std::array<struct timespec, 2>;  // atime, mtime: as utimensat wants them

// The entry's access and modification times; false when the tar has none.
bool entryTimes(struct archive_entry* e, Times& ts) {
  if (archive_entry_mtime_is_set(e) == 0) return false;
  ts[1] = {archive_entry_mtime(e), archive_entry_mtime_nsec(e)};
  ts[0] = ts[1];
  if (archive_entry_atime_is_set(e) != 0)
    ts[0] = {archive_entry_atime(e), archive_entry_atime_nsec(e)};
  return true;
}

// A directory whose times are set once everything inside it has been written.
struct DirTimes {
  std::vector<std::string> parts;
  Times times;
  dev_t dev;
  ino_t ino;
};

// One unpack run. Not thread-safe.
class Unpacker {
 public:
  Unpacker(struct archive* a, std::string layer, UniqueFd root_fd, uint64_t max_entries)
      : archive_(a),
        layer_(std::move(layer)),
        root_fd_(std::move(root_fd)),
        dirs_(root_fd_.get(), layer_),
        max_entries_(max_entries) {}

  absl::StatusOr<UnpackStats> run() {
    for (;;) {
      struct archive_entry* e = nullptr;
      int r = archive_read_next_header(archive_, &e);
      if (r == ARCHIVE_EOF) break;
      if (r == ARCHIVE_RETRY) continue;
      if (r < ARCHIVE_WARN) return archiveError(archive_, layer_);
      if (r == ARCHIVE_WARN) log()->warn("layer {}: {}", layer_, archive_error_string(archive_));
      if (max_entries_ > 0 && stats_.entries >= max_entries_) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "layer ", layer_, " has more than ", max_entries_, " entries, the limit"));
      }
      BERTH_RETURN_IF_ERROR(applyEntry(e));
      ++stats_.entries;
    }
    BERTH_RETURN_IF_ERROR(fixDirTimes());
    stats_.implicit_dirs.assign(dirs_.created().begin(), dirs_.created().end());
    return stats_;
  }

 private:
  absl::Status applyEntry(struct archive_entry* e) {
    const char* raw = archive_entry_pathname(e);
    const std::string entry = raw != nullptr ? raw : "";
    std::optional<std::vector<std::string>> parts = cleanEntryPath(entry);
    if (!parts) return invalidEntry(entry, layer_, "leaves the snapshot root");
    if (parts->empty()) {
      if (archive_entry_hardlink(e) == nullptr && archive_entry_filetype(e) == AE_IFDIR) {
        return applyDirMetadata(e, root_fd_.get(), entry, {});
      }
      return invalidEntry(entry, layer_, "replaces the snapshot root with a non-directory");
    }
    const std::string& base = parts->back();
    BERTH_ASSIGN_OR_RETURN(int parent, dirs_.openDir(*parts, parts->size() - 1, entry, true));
    if (absl::StartsWith(base, kWhiteoutPrefix)) return applyWhiteout(e, parent, base, entry);
    if (const char* target = archive_entry_hardlink(e)) {
      return applyHardlink(parent, *parts, target, entry);
    }
    switch (archive_entry_filetype(e)) {
      case AE_IFDIR:
        return applyDir(e, parent, *parts, entry);
      case AE_IFREG:
        return applyFile(e, parent, base, entry);
      case AE_IFLNK:
        return applySymlink(e, parent, base, entry);
      case AE_IFCHR:
      case AE_IFBLK:
      case AE_IFIFO:
        return applyNode(e, parent, base, entry);
      default:
        log()->warn("layer {}: skipping entry \"{}\" of unsupported type {:o}", layer_, entry,
                    archive_entry_filetype(e));
        return absl::OkStatus();
    }
  }

  // `dir/.wh.name` → whiteout `dir/name`; `dir/.wh..wh..opq` → `dir` is opaque.
  absl::Status applyWhiteout(struct archive_entry* e, int parent, const std::string& base,
                             const std::string& entry) {
    if (base == kOpaqueMarker) {
      if (::fsetxattr(parent, kOpaqueXattr, "y", 1, 0) != 0) {
        return lastErrnoStatus(
            absl::StrCat("mark directory of layer entry \"", entry, "\" in ", layer_, " opaque"));
      }
      return absl::OkStatus();
    }
    if (absl::StartsWith(base, kWhiteoutMetaPrefix)) {
      log()->debug("layer {}: ignoring whiteout metadata entry \"{}\"", layer_, entry);
      return absl::OkStatus();
    }
    std::string name = base.substr(kWhiteoutPrefix.size());
    if (name == "." || name == "..") return invalidEntry(entry, layer_, "is not a valid whiteout");
    BERTH_ASSIGN_OR_RETURN(bool kept, makeRoom(parent, name, entry, false));
    (void)kept;
    if (::mknodat(parent, name.c_str(), S_IFCHR, makedev(0, 0)) != 0 ||
        ::fchownat(parent, name.c_str(), archive_entry_uid(e), archive_entry_gid(e),
                   AT_SYMLINK_NOFOLLOW) != 0) {
      return lastErrnoStatus(
          absl::StrCat("create whiteout for layer entry \"", entry, "\" in ", layer_));
    }
    return absl::OkStatus();
  }

  // A hard link to an entry already unpacked from this layer.
  absl::Status applyHardlink(int parent, const std::vector<std::string>& parts,
                             const std::string& target, const std::string& entry) {
    std::optional<std::vector<std::string>> tparts = cleanEntryPath(target);
    if (!tparts || tparts->empty()) {
      return invalidEntry(entry, layer_,
                          absl::StrCat("links to \"", target, "\" outside the snapshot root"));
    }
    absl::Status missing = invalidEntry(
        entry, layer_, absl::StrCat("links to \"", target, "\", which is not in the layer"));
    absl::StatusOr<UniqueFd> tdir = dirs_.openDirCopy(*tparts, tparts->size() - 1, entry);
    if (absl::IsNotFound(tdir.status())) return missing;
    if (!tdir.ok()) return tdir.status();
    const std::string& tname = tparts->back();
    struct stat tst {};
    if (::fstatat(tdir->get(), tname.c_str(), &tst, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) return missing;
      return lastErrnoStatus(absl::StrCat("stat hard link target of layer entry \"", entry, "\""));
    }
    if (S_ISDIR(tst.st_mode)) {
      return invalidEntry(entry, layer_, absl::StrCat("links to directory \"", target, "\""));
    }
    const std::string& name = parts.back();
    struct stat st {};
    if (::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev == tst.st_dev &&
        st.st_ino == tst.st_ino) {
      return absl::OkStatus();  // already that file
    }
    BERTH_ASSIGN_OR_RETURN(bool kept, makeRoom(parent, name, entry, false));
    (void)kept;
    if (::linkat(tdir->get(), tname.c_str(), parent, name.c_str(), 0) != 0) {
      return lastErrnoStatus(absl::StrCat("hard-link layer entry \"", entry, "\" in ", layer_));
    }
    return absl::OkStatus();
  }

  absl::Status applyDir(struct archive_entry* e, int parent, const std::vector<std::string>& parts,
                        const std::string& entry) {
    const std::string& name = parts.back();
    dirs_.listed(unpack_internal::joinPath(parts, parts.size()));
    BERTH_ASSIGN_OR_RETURN(bool kept, makeRoom(parent, name, entry, true));
    if (!kept && ::mkdirat(parent, name.c_str(), 0700) != 0) {
      return lastErrnoStatus(
          absl::StrCat("create directory for layer entry \"", entry, "\" in ", layer_));
    }
    UniqueFd fd(::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) {
      return lastErrnoStatus(
          absl::StrCat("open directory of layer entry \"", entry, "\" in ", layer_));
    }
    return applyDirMetadata(e, fd.get(), entry, parts);
  }

  absl::Status applyDirMetadata(struct archive_entry* e, int fd, const std::string& entry,
                                const std::vector<std::string>& parts) {
    BERTH_RETURN_IF_ERROR(setOwnerAndMode(e, fd, entry));
    BERTH_RETURN_IF_ERROR(applyXattrs(e, fd, "", entry));
    DirTimes d{.parts = parts};
    struct stat st {};
    if (entryTimes(e, d.times) && ::fstat(fd, &st) == 0) {
      d.dev = st.st_dev;
      d.ino = st.st_ino;
      dir_times_.push_back(std::move(d));
    }
    return absl::OkStatus();
  }

  absl::Status applyFile(struct archive_entry* e, int parent, const std::string& name,
                         const std::string& entry) {
    BERTH_ASSIGN_OR_RETURN(bool kept, makeRoom(parent, name, entry, false));
    (void)kept;
    UniqueFd fd(
        ::openat(parent, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd.valid()) {
      return lastErrnoStatus(
          absl::StrCat("create file for layer entry \"", entry, "\" in ", layer_));
    }
    BERTH_RETURN_IF_ERROR(writeData(e, fd.get(), entry));
    BERTH_RETURN_IF_ERROR(setOwnerAndMode(e, fd.get(), entry));
    BERTH_RETURN_IF_ERROR(applyXattrs(e, fd.get(), "", entry));
    Times ts;
    if (entryTimes(e, ts) && ::futimens(fd.get(), ts.data()) != 0) {
      return lastErrnoStatus(absl::StrCat("set times of layer entry \"", entry, "\" in ", layer_));
    }
    return absl::OkStatus();
  }

  // Copies the entry's data; sparse files keep their holes.
  absl::Status writeData(struct archive_entry* e, int fd, const std::string& entry) {
    int64_t end = 0;
    WritebackPacer pacer;  // big files reach the disk while they unpack, not all at the sync
    for (;;) {
      const void* buf = nullptr;
      size_t size = 0;
      la_int64_t offset = 0;
      int r = archive_read_data_block(archive_, &buf, &size, &offset);
      if (r == ARCHIVE_EOF) break;
      if (r < ARCHIVE_WARN) return archiveError(archive_, layer_);
      const char* p = static_cast<const char*>(buf);
      size_t done = 0;
      while (done < size) {
        ssize_t n = ::pwrite(fd, p + done, size - done,
                             static_cast<off_t>(offset) + static_cast<off_t>(done));
        if (n < 0) {
          if (errno == EINTR) continue;
          return lastErrnoStatus(absl::StrCat("write layer entry \"", entry, "\" from ", layer_));
        }
        done += static_cast<size_t>(n);
      }
      stats_.bytes += size;
      pacer.wrote(fd, size);
      end = std::max<int64_t>(end, offset + static_cast<int64_t>(size));
    }
    if (archive_entry_size_is_set(e) != 0 && archive_entry_size(e) > end &&
        ::ftruncate(fd, archive_entry_size(e)) != 0) {
      return lastErrnoStatus(absl::StrCat("extend layer entry \"", entry, "\" from ", layer_));
    }
    return absl::OkStatus();
  }

  absl::Status applySymlink(struct archive_entry* e, int parent, const std::string& name,
                            const std::string& entry) {
    const char* target = archive_entry_symlink(e);
    if (target == nullptr) return invalidEntry(entry, layer_, "is a symlink with no target");
    BERTH_ASSIGN_OR_RETURN(bool kept, makeRoom(parent, name, entry, false));
    (void)kept;
    // The target is stored verbatim: it is resolved inside the container, never here.
    if (::symlinkat(target, parent, name.c_str()) != 0) {
      return lastErrnoStatus(
          absl::StrCat("create symlink for layer entry \"", entry, "\" in ", layer_));
    }
    return finishNode(e, parent, name, entry, /*chmod=*/false);
  }

  absl::Status applyNode(struct archive_entry* e, int parent, const std::string& name,
                         const std::string& entry) {
    mode_t type = archive_entry_filetype(e) == AE_IFCHR   ? S_IFCHR
                  : archive_entry_filetype(e) == AE_IFBLK ? S_IFBLK
                                                          : S_IFIFO;
    BERTH_ASSIGN_OR_RETURN(bool kept, makeRoom(parent, name, entry, false));
    (void)kept;
    dev_t dev =
        type == S_IFIFO ? 0 : makedev(archive_entry_rdevmajor(e), archive_entry_rdevminor(e));
    if (::mknodat(parent, name.c_str(), type | 0600, dev) != 0) {
      return lastErrnoStatus(
          absl::StrCat("create node for layer entry \"", entry, "\" in ", layer_));
    }
    return finishNode(e, parent, name, entry, /*chmod=*/true);
  }

  // Owner, mode, xattrs and times of something that must not be opened (symlink, device, fifo).
  absl::Status finishNode(struct archive_entry* e, int parent, const std::string& name,
                          const std::string& entry, bool chmod) {
    const std::string context = absl::StrCat("layer entry \"", entry, "\" in ", layer_);
    if (::fchownat(parent, name.c_str(), archive_entry_uid(e), archive_entry_gid(e),
                   AT_SYMLINK_NOFOLLOW) != 0) {
      return lastErrnoStatus(absl::StrCat("set owner of ", context));
    }
    // The node was just created by us, and nothing else writes under the root: chmod may
    // follow the (non-symlink) name.
    if (chmod && ::fchmodat(parent, name.c_str(), archive_entry_perm(e) & 07777, 0) != 0) {
      return lastErrnoStatus(absl::StrCat("set mode of ", context));
    }
    BERTH_RETURN_IF_ERROR(
        applyXattrs(e, -1, absl::StrCat("/proc/self/fd/", parent, "/", name), entry));
    Times ts;
    if (entryTimes(e, ts) &&
        ::utimensat(parent, name.c_str(), ts.data(), AT_SYMLINK_NOFOLLOW) != 0) {
      return lastErrnoStatus(absl::StrCat("set times of ", context));
    }
    return absl::OkStatus();
  }

  // chown first: it clears setuid/setgid, which the chmod then sets.
  absl::Status setOwnerAndMode(struct archive_entry* e, int fd, const std::string& entry) {
    if (::fchown(fd, archive_entry_uid(e), archive_entry_gid(e)) != 0 ||
        ::fchmod(fd, archive_entry_perm(e) & 07777) != 0) {
      return lastErrnoStatus(
          absl::StrCat("set owner and mode of layer entry \"", entry, "\" in ", layer_));
    }
    return absl::OkStatus();
  }

  // Sets the entry's xattrs on `fd`, or on `path` (not following a final symlink) when fd < 0.
  // A filesystem without xattr support is logged once and tolerated; overlayfs' own
  // trusted.overlay.* attributes are never taken from a layer.
  absl::Status applyXattrs(struct archive_entry* e, int fd, const std::string& path,
                           const std::string& entry) {
    if (archive_entry_xattr_reset(e) == 0) return absl::OkStatus();
    const char* name = nullptr;
    const void* value = nullptr;
    size_t size = 0;
    while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
      if (absl::StartsWith(name, "trusted.overlay.")) {
        log()->warn("layer {}: ignoring xattr {} of entry \"{}\"", layer_, name, entry);
        continue;
      }
      int r = fd >= 0 ? ::fsetxattr(fd, name, value, size, 0)
                      : ::lsetxattr(path.c_str(), name, value, size, 0);
      if (r == 0) continue;
      if (errno == ENOTSUP) {
        if (!warned_xattrs_)
          log()->warn(
              "layer {}: filesystem refuses xattr {} of entry \"{}\"; skipping unsupported xattrs",
              layer_, name, entry);
        warned_xattrs_ = true;
        continue;
      }
      return lastErrnoStatus(
          absl::StrCat("set xattr ", name, " of layer entry \"", entry, "\" in ", layer_));
    }
    return absl::OkStatus();
  }

  // Clears `name` in `parent` for a new entry, as tar does; returns true (and keeps it) when
  // both it and the new entry are directories.
  absl::StatusOr<bool> makeRoom(int parent, const std::string& name, const std::string& entry,
                                bool keep_dir) {
    struct stat st {};
    if (::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) return false;
      return lastErrnoStatus(absl::StrCat("stat layer entry \"", entry, "\" in ", layer_));
    }
    if (keep_dir && S_ISDIR(st.st_mode)) return true;
    if (S_ISDIR(st.st_mode)) dirs_.forgetCache();
    BERTH_RETURN_IF_ERROR(
        removeAt(parent, name, absl::StrCat("layer entry \"", entry, "\" in ", layer_)));
    return false;
  }

  // Directory times last: writing inside a directory changes its mtime.
  absl::Status fixDirTimes() {
    for (const DirTimes& d : dir_times_) {
      struct stat st {};
      if (d.parts.empty()) {
        if (::futimens(root_fd_.get(), d.times.data()) != 0)
          return lastErrnoStatus("set times of snapshot root");
        continue;
      }
      absl::StatusOr<int> parent = dirs_.openDir(d.parts, d.parts.size() - 1, "", false);
      const char* name = d.parts.back().c_str();
      // Skip a directory that a later entry replaced.
      if (!parent.ok() || ::fstatat(*parent, name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
          !S_ISDIR(st.st_mode) || st.st_dev != d.dev || st.st_ino != d.ino) {
        continue;
      }
      if (::utimensat(*parent, name, d.times.data(), AT_SYMLINK_NOFOLLOW) != 0) {
        return lastErrnoStatus(absl::StrCat("set times of directory ",
                                            unpack_internal::joinPath(d.parts, d.parts.size())));
      }
    }
    return absl::OkStatus();
  }

  struct archive* archive_;
  std::string layer_;
  UniqueFd root_fd_;
  DirResolver dirs_;
  std::vector<DirTimes> dir_times_;
  UnpackStats stats_;
  bool warned_xattrs_ = false;
  const uint64_t max_entries_;
};

// The decompressed layer, read through a second archive in raw format: the tar reader takes
// its input from here, so every byte of the uncompressed stream is hashed and counted once.
class TarStream {
 public:
  TarStream(struct archive* raw, std::string layer, uint64_t max_bytes)
      : raw_(raw), layer_(std::move(layer)), max_bytes_(max_bytes), buf_(1 << 17) {}

  // libarchive's read callback for the tar reader.
  static la_ssize_t read(struct archive* tar, void* self, const void** out) {
    auto* t = static_cast<TarStream*>(self);
    la_ssize_t n = t->next();
    if (n < 0) archive_set_error(tar, EIO, "%s", std::string(t->error_.message()).c_str());
    *out = t->buf_.data();
    return n;
  }

  // Reads what the tar reader left (the end of the stream after its end-of-archive blocks).
  absl::Status drain() {
    for (;;) {
      la_ssize_t n = next();
      if (n < 0) return error_;
      if (n == 0) return absl::OkStatus();
    }
  }

  // The error that made a read fail, if it was ours or the decompressor's.
  const absl::Status& error() const { return error_; }
  uint64_t bytes() const { return bytes_; }
  Digest digest() { return hash_.finish(); }

 private:
  la_ssize_t next() {
    if (!error_.ok()) return -1;
    if (eof_) return 0;
    la_ssize_t n = archive_read_data(raw_, buf_.data(), buf_.size());
    if (n < 0) {
      error_ = archiveError(raw_, layer_);
      return -1;
    }
    if (n == 0) {
      eof_ = true;
      return 0;
    }
    bytes_ += static_cast<uint64_t>(n);
    if (max_bytes_ > 0 && bytes_ > max_bytes_) {
      error_ = absl::ResourceExhaustedError(absl::StrCat(
          "layer ", layer_, " uncompresses to more than ", max_bytes_, " bytes, the limit"));
      return -1;
    }
    hash_.update(buf_.data(), static_cast<size_t>(n));
    return n;
  }

  struct archive* raw_;
  std::string layer_;
  const uint64_t max_bytes_;
  std::vector<char> buf_;
  Sha256 hash_;
  uint64_t bytes_ = 0;
  bool eof_ = false;
  absl::Status error_;
};

// libarchive's read callback over a LayerSource; keeps the source's error, the real cause of
// a failed read.
struct SourceReader {
  LayerSource& source;
  absl::Status error;

  static la_ssize_t read(struct archive* a, void* self, const void** out) {
    auto* r = static_cast<SourceReader*>(self);
    absl::StatusOr<absl::string_view> chunk = r->source.read();
    if (!chunk.ok()) {
      r->error = chunk.status();
      archive_set_error(a, EIO, "%s", std::string(r->error.message()).c_str());
      return -1;
    }
    *out = chunk->data();
    return static_cast<la_ssize_t>(chunk->size());
  }
};

// Reads what is left of the source, up to its end.
absl::Status drainSource(SourceReader& reader) {
  if (!reader.error.ok()) return reader.error;
  for (;;) {
    absl::StatusOr<absl::string_view> chunk = reader.source.read();
    if (!chunk.ok()) return chunk.status();
    if (chunk->empty()) return absl::OkStatus();
  }
}

absl::StatusOr<UnpackStats> unpackFrom(SourceReader& reader, const std::string& name,
                                       const std::string& root, const UnpackOptions& options) {
  UniqueFd root_fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!root_fd.valid()) return lastErrnoStatus(absl::StrCat("open snapshot directory ", root));
  // The layer, decompressed (gzip, zstd or none, detected from the content) as one raw stream.
  ArchivePtr raw(archive_read_new());
  if (!raw) return absl::ResourceExhaustedError("allocate archive reader");
  if (archive_read_support_filter_gzip(raw.get()) != ARCHIVE_OK ||
      archive_read_support_filter_zstd(raw.get()) != ARCHIVE_OK ||
      archive_read_support_filter_none(raw.get()) != ARCHIVE_OK ||
      archive_read_support_format_raw(raw.get()) != ARCHIVE_OK) {
    return absl::InternalError(
        absl::StrCat("set up archive reader: ", archive_error_string(raw.get())));
  }
  if (archive_read_open(raw.get(), &reader, nullptr, &SourceReader::read, nullptr) != ARCHIVE_OK) {
    if (!reader.error.ok()) return reader.error;
    return archiveError(raw.get(), name);
  }
  struct archive_entry* whole = nullptr;
  if (archive_read_next_header(raw.get(), &whole) != ARCHIVE_OK) {
    if (!reader.error.ok()) return reader.error;
    return archiveError(raw.get(), name);
  }
  TarStream stream(raw.get(), name, options.max_tar_bytes);

  // The tar inside it: ustar, pax and GNU tar.
  ArchivePtr a(archive_read_new());
  if (!a) return absl::ResourceExhaustedError("allocate archive reader");
  if (archive_read_support_filter_none(a.get()) != ARCHIVE_OK ||
      archive_read_support_format_tar(a.get()) != ARCHIVE_OK) {
    return absl::InternalError(
        absl::StrCat("set up archive reader: ", archive_error_string(a.get())));
  }
  if (archive_read_open(a.get(), &stream, nullptr, &TarStream::read, nullptr) != ARCHIVE_OK) {
    if (!reader.error.ok()) return reader.error;
    if (!stream.error().ok()) return stream.error();
    return archiveError(a.get(), name);
  }
  Unpacker unpacker(a.get(), name, std::move(root_fd), options.max_entries);
  absl::StatusOr<UnpackStats> stats = unpacker.run();
  // The real cause of a failed read: the source's, else the decompressor's.
  if (!reader.error.ok()) return reader.error;
  if (!stream.error().ok()) return stream.error();
  if (!stats.ok()) return stats.status();
  BERTH_RETURN_IF_ERROR(stream.drain());
  stats->tar_bytes = stream.bytes();
  stats->diff_id = stream.digest().str();
  if (!options.expected_diff_id.empty() && stats->diff_id != options.expected_diff_id) {
    return absl::DataLossError(absl::StrCat("layer ", name, " uncompresses to content ",
                                            stats->diff_id, ", not ", options.expected_diff_id,
                                            " as the image config says"));
  }
  return stats;
}

}  // namespace

FileLayerSource::FileLayerSource(std::string path) : path_(std::move(path)) {}

absl::StatusOr<absl::string_view> FileLayerSource::read() {
  if (!fd_.valid()) {
    fd_.reset(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd_.valid()) return lastErrnoStatus(absl::StrCat("open layer ", path_));
    buf_.resize(1 << 17);
  }
  for (;;) {
    ssize_t n = ::read(fd_.get(), buf_.data(), buf_.size());
    if (n >= 0) return absl::string_view(buf_.data(), static_cast<size_t>(n));
    if (errno != EINTR) return lastErrnoStatus(absl::StrCat("read layer ", path_));
  }
}

absl::StatusOr<UnpackStats> unpackLayer(LayerSource& source, const std::string& name,
                                        const std::string& root, const UnpackOptions& options) {
  SourceReader reader{.source = source};
  absl::StatusOr<UnpackStats> stats = unpackFrom(reader, name, root, options);
  if (!stats.ok()) return stats;
  // A layer is whole only once its source has ended well (a download: its digest checked),
  // even if the archive ended before.
  BERTH_RETURN_IF_ERROR(drainSource(reader));
  return stats;
}

absl::StatusOr<UnpackStats> unpackLayer(const std::string& layer_path, const std::string& root,
                                        const UnpackOptions& options) {
  FileLayerSource source(layer_path);
  return unpackLayer(source, layer_path, root, options);
}

absl::Status adoptLowerAttributes(const std::string& root,
                                  const std::vector<std::string>& implicit_dirs,
                                  const std::vector<std::string>& lower_dirs) {
  if (implicit_dirs.empty() || lower_dirs.empty()) return absl::OkStatus();
  UniqueFd root_fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!root_fd.valid()) return lastErrnoStatus(absl::StrCat("open snapshot directory ", root));
  std::vector<UniqueFd> lowers;
  for (const std::string& dir : lower_dirs) {
    lowers.emplace_back(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!lowers.back().valid()) return lastErrnoStatus(absl::StrCat("open lower layer ", dir));
  }
  for (const std::string& rel : implicit_dirs) {
    UniqueFd fd(unpack_internal::openBeneath(root_fd.get(), rel, O_RDONLY | O_DIRECTORY));
    if (!fd.valid()) continue;  // replaced by a later entry of the layer
    struct stat want = unpack_internal::lowerDirAttributes(lowers, rel);
    // chown first: it clears setgid, which the chmod then sets.
    if (::fchown(fd.get(), want.st_uid, want.st_gid) != 0 ||
        ::fchmod(fd.get(), want.st_mode & 07777) != 0) {
      return lastErrnoStatus(absl::StrCat("set owner and mode of directory ", rel, " in ", root));
    }
  }
  return absl::OkStatus();
}

}  // namespace berth::image
