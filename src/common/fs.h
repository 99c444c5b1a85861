// Small filesystem helpers used across berth (directories, whole-file reads, atomic writes).
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace berth {

// Creates `path` and its missing parents with `mode`; an existing directory is left as it is.
[[nodiscard]] absl::Status makeDirs(const std::string& path, mode_t mode);

// makeDirs(), then `path` itself gets exactly `mode` even if it existed (a directory made by an
// older berth with looser permissions is tightened).
[[nodiscard]] absl::Status makeDirWithMode(const std::string& path, mode_t mode);

// Reads a whole file.
[[nodiscard]] absl::StatusOr<std::string> readFile(const std::string& path);

// Writes `data` to a temp file beside `path` and renames it over `path`: readers see the old
// or the new whole file, also after berthd dies half-way. With Sync::kYes the data is fsynced
// before the rename, so that it survives a power loss too; files that only matter while the
// machine stays up (a pod's resolv.conf, a bundle's config.json: their pod does not outlive a
// reboot) skip that wait on the disk.
enum class Sync { kYes, kNo };
[[nodiscard]] absl::Status writeFileAtomic(const std::string& path, std::string_view data,
                                           mode_t mode, Sync sync = Sync::kYes);

// Starts writing `len` bytes of `fd` from `offset` back to the disk without waiting
// (sync_file_range SYNC_FILE_RANGE_WRITE), so that a later fsync or syncfs finds them on their
// way already. Advisory: failures are ignored.
void startWriteback(int fd, off_t offset, off_t len);

// Counts the bytes written to one file and starts their writeback every `step` bytes.
class WritebackPacer {
 public:
  explicit WritebackPacer(off_t step = off_t{8} << 20) : step_(step) {}
  // `len` more bytes were written to `fd` at its end.
  void wrote(int fd, size_t len);

 private:
  const off_t step_;
  off_t written_ = 0;
  off_t started_ = 0;  // bytes whose writeback has started
};

// Removes `path` and everything below it; a missing path is not an error. Never crosses into a
// mount: when something is mounted at or below `path` nothing is removed and the answer is
// FailedPrecondition naming the mount (a tree with a rootfs or a tmpfs still mounted below it
// is never deleted through the mount).
[[nodiscard]] absl::Status removeAll(const std::string& path);

// Mount points at or below `path` (a lexically clean absolute path), deepest first, read from
// `mountinfo` (the calling process's by default).
std::vector<std::string> mountsUnder(const std::string& path,
                                     const std::string& mountinfo = "/proc/self/mountinfo");

}  // namespace berth

namespace berth {

// Resolves a program name the way execvp would (absolute or relative paths are checked as
// they are; bare names are searched on PATH, then in /usr/sbin, /usr/bin, /sbin, /bin).
// NotFound names the program.
[[nodiscard]] absl::StatusOr<std::string> findExecutable(const std::string& name);

// True when `path` is a regular file this process may execute.
bool isExecutableFile(const std::string& path);

// True when `path` is a directory (following symlinks).
bool isDirectory(const std::string& path);

}  // namespace berth
