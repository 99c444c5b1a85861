// Namespaced-sysctl rules, as in Kubernetes' pkg/kubelet/sysctl.
#include "oci/sysctl.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace berth::oci {

std::string normalizeSysctlName(absl::string_view name) {
  std::string out(name);
  size_t sep = out.find_first_of("./");
  if (sep == std::string::npos || out[sep] != '/') return out;
  for (char& c : out) {
    if (c == '/') {
      c = '.';
    } else if (c == '.') {
      c = '/';
    }
  }
  return out;
}

SysctlNamespace sysctlNamespace(absl::string_view name) {
  if (name == "kernel.sem" || absl::StartsWith(name, "kernel.shm") ||
      absl::StartsWith(name, "kernel.msg") || absl::StartsWith(name, "fs.mqueue.")) {
    return SysctlNamespace::kIpc;
  }
  if (absl::StartsWith(name, "net.")) return SysctlNamespace::kNet;
  if (name == "kernel.hostname" || name == "kernel.domainname") return SysctlNamespace::kUts;
  return SysctlNamespace::kHost;
}

absl::Status validatePodSysctls(const std::map<std::string, std::string>& sysctls,
                                bool host_network, bool host_ipc,
                                std::map<std::string, std::string>* normalized) {
  normalized->clear();
  for (const auto& [raw, value] : sysctls) {
    std::string name = normalizeSysctlName(raw);
    if (name.empty() || name.find_first_of(" \t\n") != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("sysctl \"", raw, "\": invalid name"));
    }
    if (value.find('\n') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("sysctl \"", raw, "\": value contains a newline"));
    }
    switch (sysctlNamespace(name)) {
      case SysctlNamespace::kHost:
        return absl::InvalidArgumentError(absl::StrCat(
            "sysctl \"", raw, "\" is not namespaced: setting it would change the host"));
      case SysctlNamespace::kNet:
        if (host_network) {
          return absl::InvalidArgumentError(absl::StrCat(
              "sysctl \"", raw, "\" is not allowed with host network (network namespace NODE)"));
        }
        break;
      case SysctlNamespace::kUts:
        if (host_network) {
          return absl::InvalidArgumentError(absl::StrCat(
              "sysctl \"", raw,
              "\" is not allowed with host network (the host's UTS namespace is shared)"));
        }
        break;
      case SysctlNamespace::kIpc:
        if (host_ipc) {
          return absl::InvalidArgumentError(absl::StrCat(
              "sysctl \"", raw, "\" is not allowed with host IPC (ipc namespace NODE)"));
        }
        break;
    }
    (*normalized)[name] = value;
  }
  return absl::OkStatus();
}

}  // namespace berth::oci
