// The directory walk behind writable-layer stats. Every level is opened relative to its parent
// with O_NOFOLLOW, so a container that swaps a directory for a symlink cannot lead us out.
#include "stats/disk_usage.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/unique_fd.h"

namespace berth::stats {
namespace {

class Walker {
 public:
  Walker(dev_t dev, const std::atomic<bool>* cancel) : dev_(dev), cancel_(cancel) {}

  void count(const struct stat& st) {
    // Directories always have several links; only other files can be hard links.
    if (!S_ISDIR(st.st_mode) && st.st_nlink > 1 && !seen_.insert({st.st_dev, st.st_ino}).second) {
      return;
    }
    usage_.bytes += static_cast<uint64_t>(st.st_blocks) * 512;
    usage_.inodes++;
  }

  // Counts the entries of the open directory `fd` and walks its subdirectories.
  absl::Status walk(UniqueFd fd, int depth) {
    std::vector<std::string> subdirs;
    {
      // fdopendir takes the descriptor it is given; keep our own for the openat calls below.
      UniqueFd for_dir(::dup(fd.get()));
      if (!for_dir.valid()) return absl::OkStatus();
      std::unique_ptr<DIR, int (*)(DIR*)> d(::fdopendir(for_dir.get()), ::closedir);
      if (!d) return absl::OkStatus();
      for_dir.release();
      while (struct dirent* e = ::readdir(d.get())) {
        if (cancelled()) return absl::CancelledError("disk usage walk stopped");
        std::string_view name = e->d_name;
        if (name == "." || name == "..") continue;
        struct stat st {};
        if (::fstatat(fd.get(), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        count(st);
        if (S_ISDIR(st.st_mode) && st.st_dev == dev_ && depth < kMaxDepth) {
          subdirs.emplace_back(name);
        }
      }
    }
    // The directory stream is closed before descending, so a level costs one descriptor.
    for (const std::string& name : subdirs) {
      UniqueFd child(
          ::openat(fd.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!child.valid()) continue;  // removed or replaced meanwhile
      BERTH_RETURN_IF_ERROR(walk(std::move(child), depth + 1));
    }
    return absl::OkStatus();
  }

  const DiskUsage& usage() const { return usage_; }

 private:
  bool cancelled() const { return cancel_ != nullptr && cancel_->load(std::memory_order_relaxed); }

  const dev_t dev_;
  const std::atomic<bool>* const cancel_;
  std::set<std::pair<dev_t, ino_t>> seen_;
  DiskUsage usage_;
};

}  // namespace

absl::StatusOr<DiskUsage> diskUsage(const std::string& dir, const std::atomic<bool>* cancel) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return lastErrnoStatus(absl::StrCat("open ", dir));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return lastErrnoStatus(absl::StrCat("stat ", dir));
  Walker walker(st.st_dev, cancel);
  walker.count(st);
  BERTH_RETURN_IF_ERROR(walker.walk(std::move(fd), 0));
  return walker.usage();
}

}  // namespace berth::stats
