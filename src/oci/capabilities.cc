// Capability name tables and the current bounding set.
#include "oci/capabilities.h"

#include <array>
#include <cstdlib>
#include <string_view>

#include "common/capability_names.h"
#include "common/fs.h"

namespace berth::oci {
namespace {

constexpr const auto& kCapNames = kCapabilityNames;

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
