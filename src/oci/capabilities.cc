// Capability name tables and the current bounding set.
#include "oci/capabilities.h"

#include <array>
#include <cstdlib>
#include <string_view>

#include "common/fs.h"

namespace berth::oci {
namespace {

// Indexed by capability number (linux/capability.h).
constexpr std::array<std::string_view, 41> kCapNames = {
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
};

// Parses the hex value of a "Name:\t<hex>" line of /proc/self/status.
bool statusMask(const std::string& status, std::string_view name, uint64_t* out) {
  size_t pos = 0;
  while (pos < status.size()) {
    size_t end = status.find('\n', pos);
    if (end == std::string::npos) end = status.size();
    std::string_view line(status.data() + pos, end - pos);
    pos = end + 1;
    if (line.size() > name.size() && line.substr(0, name.size()) == name &&
        line[name.size()] == ':') {
      std::string hex(line.substr(name.size() + 1));
      char* stop = nullptr;
      *out = std::strtoull(hex.c_str(), &stop, 16);
      return stop != hex.c_str();
    }
  }
  return false;
}

}  // namespace

const std::vector<std::string>& defaultCapabilities() {
  static const std::vector<std::string> kDefault = {
      "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
      "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
      "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
      "CAP_KILL",    "CAP_AUDIT_WRITE",
  };
  return kDefault;
}

std::vector<std::string> capabilityNames(uint64_t mask) {
  std::vector<std::string> out;
  for (size_t i = 0; i < kCapNames.size(); ++i) {
    if ((mask >> i) & 1U) out.emplace_back(kCapNames[i]);
  }
  return out;
}

std::vector<std::string> currentCapabilities() {
  auto status = readFile("/proc/self/status");
  uint64_t mask = 0;
  if (status.ok() && statusMask(*status, "CapBnd", &mask)) return capabilityNames(mask);
  int last = static_cast<int>(kCapNames.size()) - 1;
  if (auto s = readFile("/proc/sys/kernel/cap_last_cap"); s.ok()) {
    int v = std::atoi(s->c_str());
    if (v > 0 && v < last) last = v;
  }
  return capabilityNames(last >= 63 ? ~uint64_t{0} : (uint64_t{1} << (last + 1)) - 1);
}

}  // namespace berth::oci
