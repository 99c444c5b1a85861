// cgroup v1 and v2 readers. File names and keys follow what kubelet/cadvisor read, so the
// numbers berth reports match theirs.
#include "stats/cgroup_reader.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <initializer_list>
#include <memory>
#include <vector>

#include "common/fs.h"
#include "stats/text_files.h"

namespace berth::stats {
namespace {

bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

std::vector<std::string> subdirNames(const std::string& dir) {
  std::vector<std::string> names;
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
  if (!d) return names;
  while (struct dirent* e = ::readdir(d.get())) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    // Some distributions add "cpuacct" as a symlink to "cpu,cpuacct"; stat follows it.
    if (isDirectory(dir + "/" + name)) names.push_back(std::move(name));
  }
  std::sort(names.begin(), names.end());  // the same choice every time
  return names;
}

// Working set and available bytes from usage, the limit (if any) and inactive_file.
MemorySample finishMemory(uint64_t usage, std::optional<uint64_t> limit, uint64_t inactive_file,
                          int64_t now_ns) {
  MemorySample m;
  m.timestamp_ns = now_ns;
  m.usage_bytes = usage;
  m.working_set_bytes = usage > inactive_file ? usage - inactive_file : 0;
  if (limit && *limit > m.working_set_bytes) m.available_bytes = *limit - m.working_set_bytes;
  return m;
}

// The first of `keys` present in memory.stat, else 0.
uint64_t statValue(std::string_view stat, std::initializer_list<std::string_view> keys) {
  for (std::string_view key : keys) {
    if (std::optional<uint64_t> v = keyedValue(stat, key)) return *v;
  }
  return 0;
}

std::optional<MemorySample> readMemoryV1(const std::string& dir, int64_t now_ns,
                                         FileSource& files) {
  std::optional<uint64_t> usage = files.readUint(dir + "/memory.usage_in_bytes");
  if (!usage) return std::nullopt;
  std::optional<uint64_t> limit = files.readUint(dir + "/memory.limit_in_bytes");
  if (limit && *limit >= kV1NoLimit) limit.reset();
  std::string stat = files.read(dir + "/memory.stat").value_or("");
  // total_* include descendants (a pod cgroup holds its containers); plain keys are the
  // fallback for kernels or fakes that lack them.
  MemorySample m = finishMemory(*usage, limit,
                                statValue(stat, {"total_inactive_file", "inactive_file"}), now_ns);
  m.rss_bytes = statValue(stat, {"total_rss", "rss"});
  m.page_faults = statValue(stat, {"total_pgfault", "pgfault"});
  m.major_page_faults = statValue(stat, {"total_pgmajfault", "pgmajfault"});
  return m;
}

std::optional<MemorySample> readMemoryV2(const std::string& dir, int64_t now_ns,
                                         FileSource& files) {
  std::optional<uint64_t> usage = files.readUint(dir + "/memory.current");
  if (!usage) return std::nullopt;
  std::optional<uint64_t> limit;
  if (std::optional<std::string> max = files.read(dir + "/memory.max")) {
    limit = parseUint(*max);  // "max" does not parse: no limit
  }
  std::string stat = files.read(dir + "/memory.stat").value_or("");
  MemorySample m = finishMemory(*usage, limit, statValue(stat, {"inactive_file"}), now_ns);
  m.rss_bytes = statValue(stat, {"anon"});
  m.page_faults = statValue(stat, {"pgfault"});
  m.major_page_faults = statValue(stat, {"pgmajfault"});
  return m;
}

}  // namespace

CgroupLayout detectCgroupLayout(const std::string& cgroup_root) {
  CgroupLayout layout;
  if (exists(cgroup_root + "/cgroup.controllers")) {
    layout.unified = cgroup_root;
    return layout;
  }
  for (const std::string& name : subdirNames(cgroup_root)) {
    std::string dir = cgroup_root + "/" + name;
    if (name == "unified") {
      if (exists(dir + "/cgroup.controllers")) layout.unified = dir;
      continue;
    }
    for (std::string_view controller : splitNonEmpty(name, ",")) {
      if (controller == "cpuacct" && layout.cpuacct.empty()) layout.cpuacct = dir;
      if (controller == "memory" && layout.memory.empty()) layout.memory = dir;
      if (controller == "pids" && layout.pids.empty()) layout.pids = dir;
    }
  }
  return layout;
}

std::optional<std::string> cleanCgroupPath(std::string_view path) {
  std::string out;
  for (std::string_view part : splitNonEmpty(path, "/")) {
    if (part == "." || part == "..") return std::nullopt;
    out += '/';
    out.append(part.data(), part.size());
  }
  if (out.empty()) return std::nullopt;
  return out;
}

std::optional<CpuSample> readCpu(const CgroupLayout& layout, const std::string& cgroup_path,
                                 int64_t now_ns, FileSource& files) {
  std::optional<uint64_t> ns;
  if (!layout.cpuacct.empty()) {
    ns = files.readUint(layout.cpuacct + cgroup_path + "/cpuacct.usage");
  }
  if (!ns && !layout.unified.empty()) {
    // cpu.stat with usage_usec exists in every v2 cgroup, even without the cpu controller.
    if (std::optional<std::string> stat = files.read(layout.unified + cgroup_path + "/cpu.stat")) {
      if (std::optional<uint64_t> usec = keyedValue(*stat, "usage_usec")) ns = *usec * 1000;
    }
  }
  if (!ns) return std::nullopt;
  CpuSample cpu;
  cpu.timestamp_ns = now_ns;
  cpu.usage_core_nano_seconds = *ns;
  return cpu;
}

std::optional<MemorySample> readMemory(const CgroupLayout& layout, const std::string& cgroup_path,
                                       int64_t now_ns, FileSource& files) {
  std::optional<MemorySample> m;
  if (!layout.memory.empty()) m = readMemoryV1(layout.memory + cgroup_path, now_ns, files);
  if (!m && !layout.unified.empty()) {
    m = readMemoryV2(layout.unified + cgroup_path, now_ns, files);
  }
  return m;
}

std::optional<uint64_t> readProcessCount(const CgroupLayout& layout, const std::string& cgroup_path,
                                         FileSource& files) {
  std::optional<uint64_t> n;
  if (!layout.pids.empty()) n = files.readUint(layout.pids + cgroup_path + "/pids.current");
  if (!n && !layout.unified.empty()) {
    n = files.readUint(layout.unified + cgroup_path + "/pids.current");
  }
  return n;
}

}  // namespace berth::stats
