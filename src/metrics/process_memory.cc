// /proc/<pid>/statm reading.
#include "metrics/process_memory.h"

#include <unistd.h>

#include <fstream>

namespace berth::metrics {

std::optional<uint64_t> residentBytes(const std::string& proc_root, int pid) {
  if (pid <= 0) return std::nullopt;
  std::ifstream in(proc_root + "/" + std::to_string(pid) + "/statm");
  uint64_t size_pages = 0;
  uint64_t resident_pages = 0;
  if (!(in >> size_pages >> resident_pages)) return std::nullopt;
  static const uint64_t kPageSize = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  return resident_pages * kPageSize;
}

}  // namespace berth::metrics
