// Leftover counting for crash and churn tests.
#include "leftovers.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace berth::testing {
namespace {

namespace fs = std::filesystem;

void entriesOf(const std::string& dir, const std::string& what, std::vector<std::string>* out) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    out->push_back(what + " " + e.path().string());
}

// Cgroup hierarchies: each v1 controller, the hybrid unified mount, or a pure v2 root.
std::vector<std::string> cgroupRoots() {
  std::vector<std::string> roots;
  std::error_code ec;
  if (fs::exists("/sys/fs/cgroup/cgroup.controllers", ec)) return {"/sys/fs/cgroup"};
  for (const auto& e : fs::directory_iterator("/sys/fs/cgroup", ec)) {
    if (e.is_directory(ec) && !e.is_symlink(ec)) roots.push_back(e.path().string());
  }
  return roots;
}

}  // namespace

std::vector<std::string> leftovers(const Berthd& d) {
  std::vector<std::string> out;
  std::error_code ec;
  // Shims of this daemon.
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    int fd = ::open((e.path() / "cmdline").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    std::string cmd;
    char buf[4096];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) cmd.append(buf, static_cast<size_t>(n));
    ::close(fd);
    if (cmd.find("berth-shim") != std::string::npos && cmd.find(d.dir()) != std::string::npos) {
      out.push_back("shim pid " + name);
    }
  }
  // Cgroups below the daemon's parent in every hierarchy, and the processes in them (pause,
  // containers) as one hierarchy sees them.
  bool counted_processes = false;
  for (const std::string& root : cgroupRoots()) {
    std::string parent = root + d.cgroupParent();
    if (!fs::exists(parent, ec)) continue;
    std::vector<std::string> dirs = {parent};
    for (auto it = fs::recursive_directory_iterator(parent, ec);
         it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) break;
      if (!it->is_directory(ec)) continue;
      out.push_back("cgroup " + it->path().string());
      dirs.push_back(it->path().string());
    }
    if (counted_processes) continue;
    counted_processes = true;
    for (const std::string& dir : dirs) {
      std::ifstream procs(dir + "/cgroup.procs");
      for (std::string pid; std::getline(procs, pid);) {
        if (!pid.empty()) out.push_back("process " + pid + " in " + dir);
      }
    }
  }
  entriesOf(d.state() + "/netns", "netns", &out);
  entriesOf(d.state() + "/userns", "userns", &out);
  if (!d.cniBridge().empty()) entriesOf("/sys/class/net/" + d.cniBridge() + "/brif", "veth", &out);
  for (auto it = fs::recursive_directory_iterator(d.cniLeaseDir(), ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    std::string name = it->path().filename().string();
    if (name.rfind("198.", 0) == 0) out.push_back("ip lease " + it->path().string());
  }
  std::ifstream mi("/proc/self/mountinfo");
  for (std::string line; std::getline(mi, line);) {
    std::istringstream f(line);
    std::string a, b, c, dd, target;
    f >> a >> b >> c >> dd >> target;
    // The netns dir itself is berthd's own bind mount (made private, as `ip netns` does).
    if (target == d.state() + "/netns" || target == d.state() + "/userns") continue;
    if (target.rfind(d.dir() + "/", 0) == 0) out.push_back("mount " + target);
  }
  for (const auto& rt : fs::directory_iterator(d.state() + "/runtime", ec)) {
    entriesOf(rt.path().string(), "runtime state", &out);
  }
  entriesOf(d.state() + "/pods", "pod dir", &out);
  entriesOf(d.state() + "/containers", "container dir", &out);
  return out;
}

}  // namespace berth::testing
