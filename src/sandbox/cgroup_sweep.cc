// killCgroup: SIGKILL what cgroup.procs lists until it is empty, then rmdir deepest first.
#include "sandbox/cgroup_sweep.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status.h"

namespace berth::sandbox {
namespace {

namespace fs = std::filesystem;

// The dirs of this cgroup in every hierarchy that has it, each followed by its descendants.
std::vector<std::string> cgroupDirs(const std::string& root, const std::string& path) {
  std::vector<std::string> hierarchies;
  std::error_code ec;
  if (fs::exists(root + "/cgroup.controllers", ec)) {
    hierarchies.push_back(root);  // pure v2
  } else {
    for (const auto& e : fs::directory_iterator(root, ec)) {
      if (e.is_directory(ec) && !e.is_symlink(ec)) hierarchies.push_back(e.path().string());
    }
  }
  std::vector<std::string> dirs;
  for (const std::string& h : hierarchies) {
    std::string dir = h + path;
    if (!fs::is_directory(dir, ec)) continue;
    dirs.push_back(dir);
    for (auto it = fs::recursive_directory_iterator(dir, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_directory(ec) && !it->is_symlink(ec)) dirs.push_back(it->path().string());
    }
  }
  return dirs;
}

// Kills every process listed; returns how many were listed.
size_t killListed(const std::vector<std::string>& dirs) {
  size_t listed = 0;
  for (const std::string& dir : dirs) {
    std::ifstream procs(dir + "/cgroup.procs");
    for (std::string line; std::getline(procs, line);) {
      if (line.empty()) continue;
      pid_t pid = static_cast<pid_t>(std::stol(line));
      if (pid <= 1) continue;
      ++listed;
      ::kill(pid, SIGKILL);
    }
  }
  return listed;
}

}  // namespace

absl::Status killCgroup(const std::string& cgroup_path, absl::Duration bound,
                        const std::string& cgroup_root, size_t* killed) {
  if (cgroup_path.empty() || cgroup_path[0] != '/' || cgroup_path.find("..") != std::string::npos ||
      cgroup_path == "/") {
    return absl::InvalidArgumentError(
        absl::StrCat("cgroup \"", cgroup_path, "\" is not a cgroupfs path berth can clear"));
  }
  const absl::Time deadline = absl::Now() + bound;
  std::vector<std::string> dirs = cgroupDirs(cgroup_root, cgroup_path);
  // Exited processes leave cgroup.procs at once (zombies are not listed), so an empty list
  // means nothing of the pod runs any more.
  for (size_t n; (n = killListed(dirs)) > 0;) {
    if (killed != nullptr) *killed += n;
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat("processes are left in cgroup ", cgroup_path,
                                                      " after SIGKILL for ",
                                                      absl::FormatDuration(bound)));
    }
    absl::SleepFor(absl::Milliseconds(10));
    dirs = cgroupDirs(cgroup_root, cgroup_path);
  }
  // Deepest first; a dir that is gone already (runc removed it) is fine.
  std::stable_sort(dirs.begin(), dirs.end(),
                   [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  for (const std::string& dir : dirs) {
    if (::rmdir(dir.c_str()) != 0 && errno != ENOENT) {
      return lastErrnoStatus(absl::StrCat("remove cgroup ", dir));
    }
  }
  return absl::OkStatus();
}

}  // namespace berth::sandbox
