// Built-in pause rootfs.
#include "sandbox/pause_rootfs.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/fs.h"
#include "common/status.h"

namespace berth::sandbox {

absl::Status preparePauseRootfs(const std::string& dir, const std::string& pause_binary) {
  BERTH_ASSIGN_OR_RETURN(std::string binary, readFile(pause_binary));
  // The files bound over: made here, as the root of a pod's own user namespace cannot create
  // them in this root-owned tree.
  constexpr const char* kTargets[] = {"etc/resolv.conf", "etc/hosts", "etc/hostname"};
  // Already there with the same program and targets: nothing to do (running pods keep using it).
  if (auto existing = readFile(dir + "/pause");
      existing.ok() && *existing == binary &&
      ::access((dir + "/etc/hostname").c_str(), F_OK) == 0) {
    return absl::OkStatus();
  }
  std::string tmp = absl::StrCat(dir, ".tmp.", ::getpid());
  BERTH_RETURN_IF_ERROR(removeAll(tmp));
  BERTH_RETURN_IF_ERROR(makeDirs(tmp, 0755));
  for (const char* d : {"dev", "proc", "sys", "etc", "tmp"}) {
    BERTH_RETURN_IF_ERROR(makeDirs(absl::StrCat(tmp, "/", d), 0755));
  }
  BERTH_RETURN_IF_ERROR(writeFileAtomic(tmp + "/pause", binary, 0755));
  for (const char* f : kTargets)
    BERTH_RETURN_IF_ERROR(writeFileAtomic(absl::StrCat(tmp, "/", f), "", 0644));
  // Replace the old rootfs; a pod running on it keeps its mount of the old inode tree.
  std::string old = absl::StrCat(dir, ".old.", ::getpid());
  if (::rename(dir.c_str(), old.c_str()) != 0 && errno != ENOENT) {
    return lastErrnoStatus(absl::StrCat("move aside ", dir));
  }
  if (::rename(tmp.c_str(), dir.c_str()) != 0) {
    return lastErrnoStatus(absl::StrCat("install pause rootfs ", dir));
  }
  return removeAll(old);
}

}  // namespace berth::sandbox
