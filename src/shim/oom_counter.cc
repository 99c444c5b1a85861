// OOM counters: locating a container's memory cgroup and reading its oom_kill count.
#include "shim/oom_counter.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "shim/protocol.h"

namespace berth::shim {
namespace {

bool readSmall(const std::string& path, std::string* out, size_t cap) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  out->clear();
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out->append(buf, static_cast<size_t>(n));
    if (out->size() > cap) break;
  }
  ::close(fd);
  return true;
}

bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

bool listHas(std::string_view list, std::string_view item) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    if (list.substr(0, comma) == item) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

std::string findOomCounter(int pid, const std::string& cgroups_path) {
  std::string v1, v2, text;
  if (pid > 0 && readSmall("/proc/" + std::to_string(pid) + "/cgroup", &text, 1 << 16)) {
    std::string_view rest = text;
    while (!rest.empty()) {
      size_t nl = rest.find('\n');
      std::string_view line = rest.substr(0, nl);
      rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
      // "hierarchy-id:controller-list:path"
      size_t a = line.find(':');
      size_t b = a == std::string_view::npos ? a : line.find(':', a + 1);
      if (b == std::string_view::npos) continue;
      std::string_view ctrls = line.substr(a + 1, b - a - 1);
      std::string_view path = line.substr(b + 1);
      if (line.substr(0, a) == "0" && ctrls.empty()) {
        v2 = std::string(path);
      } else if (listHas(ctrls, "memory")) {
        v1 = std::string(path);
      }
    }
  }
  if (v1.empty() && v2.empty() && !cgroups_path.empty() && cgroups_path.front() == '/') {
    v1 = v2 = cgroups_path;
  }
  std::string candidates[3];
  if (!v1.empty()) candidates[0] = "/sys/fs/cgroup/memory" + v1 + "/memory.oom_control";
  if (!v2.empty()) {
    candidates[1] = "/sys/fs/cgroup" + v2 + "/memory.events";
    candidates[2] = "/sys/fs/cgroup/unified" + v2 + "/memory.events";
  }
  for (const std::string& c : candidates) {
    if (!c.empty() && exists(c)) return c;
  }
  return "";
}

int64_t readOomKills(const std::string& path) {
  std::string text;
  if (path.empty() || !readSmall(path, &text, 1 << 14)) return -1;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    if (text.compare(pos, 9, "oom_kill ") == 0) {
      return std::strtoll(text.c_str() + pos + 9, nullptr, 10);
    }
    pos = nl + 1;
  }
  return -1;
}

UniqueFd watchOomCounter(const std::string& counter, std::string* why) {
  auto fail = [why](const std::string& what) {
    *why = what + ": " + std::strerror(errno);
    return UniqueFd();
  };
  size_t slash = counter.rfind('/');
  if (counter.empty() || slash == std::string::npos) {
    *why = "no memory cgroup counter";
    return UniqueFd();
  }
  std::string_view name = std::string_view(counter).substr(slash + 1);
  if (name == "memory.events") {
    UniqueFd in(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
    if (!in.valid()) return fail("inotify_init1");
    if (::inotify_add_watch(in.get(), counter.c_str(), IN_MODIFY) < 0) {
      return fail("inotify_add_watch " + counter);
    }
    return in;
  }
  // cgroup v1: "<eventfd> <fd of memory.oom_control>" written to cgroup.event_control. The
  // kernel keeps what it needs; the file descriptors of the two files can be closed after.
  UniqueFd control(::open(counter.c_str(), O_RDONLY | O_CLOEXEC));
  if (!control.valid()) return fail("open " + counter);
  UniqueFd efd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!efd.valid()) return fail("eventfd");
  std::string event_control = counter.substr(0, slash) + "/cgroup.event_control";
  UniqueFd ec(::open(event_control.c_str(), O_WRONLY | O_CLOEXEC));
  if (!ec.valid()) return fail("open " + event_control);
  std::string line = std::to_string(efd.get()) + " " + std::to_string(control.get());
  if (::write(ec.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    return fail("register with " + event_control);
  }
  return efd;
}

void drainOomWatch(int fd) {
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) continue;
    if (n < 0 && errno == EINTR) continue;
    return;  // EAGAIN: drained (an eventfd is read whole; inotify events are dropped)
  }
}

std::string cgroupsPathOf(const std::string& bundle) {
  std::string text;
  if (!readSmall(bundle + "/config.json", &text, 4u << 20)) return "";
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return "";
  auto lx = j.find("linux");
  std::string path;
  if (lx != j.end() && lx->is_object()) getString(*lx, "cgroupsPath", &path);
  return path;
}

}  // namespace berth::shim
