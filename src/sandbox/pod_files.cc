// Pod files: resolv.conf, hosts, hostname, and the /dev/shm tmpfs.
#include "sandbox/pod_files.h"

#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/fs.h"
#include "common/status.h"

namespace berth::sandbox {
namespace {

constexpr mode_t kPodFileMode = 0644;  // read by the pod's users (pause runs as 65535)
constexpr size_t kMaxHostname = 63;

// An entry that goes on a line of its own or between spaces: non-empty, no whitespace.
absl::Status checkWord(const char* what, const std::string& v) {
  if (v.empty() || v.find_first_of(" \t\r\n") != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " \"", v, "\" must be non-empty without whitespace"));
  }
  return absl::OkStatus();
}

absl::Status copyFile(const std::string& from, const std::string& to) {
  BERTH_ASSIGN_OR_RETURN(std::string data, readFile(from));
  return writeFileAtomic(to, data, kPodFileMode, Sync::kNo);
}

std::string parentDir(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// A tmpfs always has a device of its own, so a different st_dev from the parent means mounted.
bool isMounted(const std::string& path) {
  struct stat self {};
  struct stat parent {};
  if (::stat(path.c_str(), &self) != 0 || ::stat(parentDir(path).c_str(), &parent) != 0) {
    return false;
  }
  return self.st_dev != parent.st_dev;
}

}  // namespace

absl::Status writeResolvConf(const std::string& path, const SandboxConfig& c,
                             const std::string& host_resolv_conf) {
  if (c.dns_servers.empty() && c.dns_searches.empty() && c.dns_options.empty()) {
    return annotate(copyFile(host_resolv_conf, path), "copy host resolv.conf");
  }
  std::string out;
  for (const auto& s : c.dns_searches) BERTH_RETURN_IF_ERROR(checkWord("DNS search", s));
  for (const auto& s : c.dns_servers) BERTH_RETURN_IF_ERROR(checkWord("DNS server", s));
  for (const auto& s : c.dns_options) BERTH_RETURN_IF_ERROR(checkWord("DNS option", s));
  if (!c.dns_searches.empty())
    absl::StrAppend(&out, "search ", absl::StrJoin(c.dns_searches, " "), "\n");
  for (const auto& s : c.dns_servers) absl::StrAppend(&out, "nameserver ", s, "\n");
  if (!c.dns_options.empty())
    absl::StrAppend(&out, "options ", absl::StrJoin(c.dns_options, " "), "\n");
  return writeFileAtomic(path, out, kPodFileMode, Sync::kNo);
}

absl::Status writeHosts(const std::string& path, const std::string& hostname,
                        const std::string& ip) {
  std::string out =
      "# Kubernetes-managed hosts file (berth).\n"
      "127.0.0.1\tlocalhost\n"
      "::1\tlocalhost ip6-localhost ip6-loopback\n"
      "fe00::0\tip6-localnet\n"
      "fe00::0\tip6-mcastprefix\n"
      "fe00::1\tip6-allnodes\n"
      "fe00::2\tip6-allrouters\n";
  if (!ip.empty()) {
    BERTH_RETURN_IF_ERROR(checkWord("pod IP", ip));
    BERTH_RETURN_IF_ERROR(checkWord("hostname", hostname));
    absl::StrAppend(&out, ip, "\t", hostname, "\n");
  }
  return writeFileAtomic(path, out, kPodFileMode, Sync::kNo);
}

absl::Status copyHostHosts(const std::string& path, const std::string& host_hosts) {
  return annotate(copyFile(host_hosts, path), "copy host hosts file");
}

absl::Status writeHostname(const std::string& path, const std::string& hostname) {
  BERTH_RETURN_IF_ERROR(checkWord("hostname", hostname));
  return writeFileAtomic(path, absl::StrCat(hostname, "\n"), kPodFileMode, Sync::kNo);
}

absl::Status mountPodShm(const std::string& path, uint64_t size_bytes) {
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat("pod shm path \"", path, "\" is not absolute"));
  }
  BERTH_RETURN_IF_ERROR(annotate(makeDirs(path, 0755), "create pod shm"));
  if (isMounted(path)) return absl::OkStatus();
  std::string data = absl::StrCat("mode=1777,size=", size_bytes);
  if (::mount("shm", path.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, data.c_str()) != 0) {
    return lastErrnoStatus(absl::StrCat("mount pod shm tmpfs on ", path));
  }
  return absl::OkStatus();
}

absl::Status unmountPodShm(const std::string& path) {
  for (int i = 0; i < 8 && isMounted(path); ++i) {
    if (::umount2(path.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) != 0 && errno != EINVAL) {
      return lastErrnoStatus(absl::StrCat("unmount pod shm ", path));
    }
  }
  if (::rmdir(path.c_str()) != 0 && errno != ENOENT) {
    return lastErrnoStatus(absl::StrCat("remove pod shm directory ", path));
  }
  return absl::OkStatus();
}

std::string podHostname(const SandboxConfig& c) {
  if (!c.hostname.empty()) return c.hostname;
  if (c.network == NamespaceMode::kNode) {
    char buf[HOST_NAME_MAX + 1] = {};
    if (::gethostname(buf, sizeof buf - 1) == 0 && buf[0] != '\0') return buf;
  }
  std::string out;
  for (char ch : c.name) {
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
    bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '.';
    out.push_back(ok ? ch : '-');
  }
  auto trim = [&out] {
    size_t b = out.find_first_not_of("-.");
    if (b == std::string::npos) {
      out.clear();
      return;
    }
    out = out.substr(b, out.find_last_not_of("-.") - b + 1);
  };
  trim();
  if (out.size() > kMaxHostname) {
    out.resize(kMaxHostname);
    trim();
  }
  return out.empty() ? "pod" : out;
}

}  // namespace berth::sandbox
