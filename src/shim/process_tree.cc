// killProcessTree: a /proc scan of parent links, freeze by SIGSTOP, then SIGKILL.
#include "shim/process_tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace berth::shim {
namespace {

constexpr int kMaxRounds = 50;

// The parent pid from /proc/<pid>/stat (0 if unreadable).
pid_t parentOf(const char* pid) {
  char path[sizeof "/proc//stat" + 256];  // d_name is at most 255 bytes
  std::snprintf(path, sizeof path, "/proc/%s/stat", pid);
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[512];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses; the last ')' ends it.
  char* paren = std::strrchr(buf, ')');
  if (paren == nullptr || paren[1] == '\0' || paren[2] == '\0') return 0;
  return static_cast<pid_t>(std::strtol(paren + 4, nullptr, 10));
}

std::multimap<pid_t, pid_t> childrenIndex() {
  std::multimap<pid_t, pid_t> children;
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return children;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    pid_t ppid = parentOf(e->d_name);
    if (ppid > 0) children.emplace(ppid, static_cast<pid_t>(std::atoi(e->d_name)));
  }
  ::closedir(d);
  return children;
}

}  // namespace

int killProcessTree(pid_t root) {
  if (root <= 1) return 0;
  std::set<pid_t> tree = {root};
  ::kill(root, SIGSTOP);
  for (int round = 0; round < kMaxRounds; ++round) {
    std::multimap<pid_t, pid_t> children = childrenIndex();
    std::vector<pid_t> todo(tree.begin(), tree.end());
    bool grew = false;
    while (!todo.empty()) {
      pid_t p = todo.back();
      todo.pop_back();
      auto [b, e] = children.equal_range(p);
      for (auto it = b; it != e; ++it) {
        if (tree.insert(it->second).second) {
          ::kill(it->second, SIGSTOP);
          todo.push_back(it->second);
          grew = true;
        }
      }
    }
    if (!grew) break;
  }
  for (pid_t p : tree) ::kill(p, SIGKILL);
  return static_cast<int>(tree.size());
}

}  // namespace berth::shim
