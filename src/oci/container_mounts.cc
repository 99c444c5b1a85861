// Container mounts and devices, following containerd's WithMounts / WithDevices /
// WithHostDevices (see container_mounts.h for the rules).
#include "oci/container_mounts.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <set>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/fs.h"
#include "common/logging.h"
#include "common/status.h"

namespace berth::oci {
namespace {

using nlohmann::json;

// A mount to add, from the pod's files (`pod_file`) or the CRI config.
struct PlannedMount {
  ContainerMount mount;
  bool pod_file = false;
};

// filepath.Clean for an absolute path: no ".", "..", duplicate or trailing slashes.
std::string cleanPath(const std::string& path) {
  std::vector<absl::string_view> out;
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (part == ".") continue;
    if (part == "..") {
      if (!out.empty()) out.pop_back();
      continue;
    }
    out.push_back(part);
  }
  return absl::StrCat("/", absl::StrJoin(out, "/"));
}

size_t depth(const std::string& clean) {
  return clean == "/" ? 0 : static_cast<size_t>(std::count(clean.begin(), clean.end(), '/'));
}

// Undoes mountinfo's octal escapes (\040 for a space).
std::string unescapeMountinfo(absl::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3') {
      out.push_back(
          static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

struct MountPoint {
  std::string path;
  std::vector<std::string> optional;  // "shared:N", "master:N", …
};

// The mount that `path` (resolved, absolute) lives on, from a mountinfo file.
absl::StatusOr<MountPoint> lookupMount(const std::string& mountinfo, const std::string& path) {
  BERTH_ASSIGN_OR_RETURN(std::string text, readFile(mountinfo));
  MountPoint best;
  bool found = false;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ');
    if (f.size() < 7) continue;
    std::string mp = unescapeMountinfo(f[4]);
    bool covers = mp == "/" || path == mp || absl::StartsWith(path, absl::StrCat(mp, "/"));
    // The last mount at the longest covering mount point is the visible one.
    if (!covers || (found && mp.size() < best.path.size())) continue;
    MountPoint m{mp, {}};
    for (size_t i = 6; i < f.size() && f[i] != "-"; ++i) m.optional.emplace_back(f[i]);
    best = std::move(m);
    found = true;
  }
  if (!found) return absl::NotFoundError(absl::StrCat("no mount found for ", path));
  return best;
}

absl::Status checkPropagation(const std::string& mountinfo, const std::string& src,
                              MountPropagation p) {
  if (p == MountPropagation::kPrivate) return absl::OkStatus();
  BERTH_ASSIGN_OR_RETURN(MountPoint m, lookupMount(mountinfo, src));
  bool shared = false;
  bool slave = false;
  for (const auto& o : m.optional) {
    shared |= absl::StartsWith(o, "shared:");
    slave |= absl::StartsWith(o, "master:");
  }
  if (p == MountPropagation::kBidirectional && !shared) {
    return absl::FailedPreconditionError(absl::StrCat("path \"", src, "\" is mounted on \"", m.path,
                                                      "\" but it is not a shared mount"));
  }
  if (p == MountPropagation::kHostToContainer && !shared && !slave) {
    return absl::FailedPreconditionError(absl::StrCat("path \"", src, "\" is mounted on \"", m.path,
                                                      "\" but it is not a shared or slave mount"));
  }
  return absl::OkStatus();
}

// The pod's files, as containerd's containerMounts(): bound read-only when the rootfs is.
std::vector<PlannedMount> podFileMounts(const ContainerSpecInput& in) {
  const ContainerSecurityContext& sc = in.config->security;
  std::vector<PlannedMount> out;
  auto add = [&out](const std::string& host, const std::string& dest, bool ro) {
    if (host.empty()) return;
    out.push_back({ContainerMount{.container_path = dest, .host_path = host, .readonly = ro},
                   /*pod_file=*/true});
  };
  add(in.hostname_path, "/etc/hostname", sc.readonly_rootfs);
  add(in.hosts_path, "/etc/hosts", sc.readonly_rootfs);
  add(in.resolv_conf_path, "/etc/resolv.conf", sc.readonly_rootfs);
  add(sc.ipc == sandbox::NamespaceMode::kNode ? std::string("/dev/shm") : in.shm_path, "/dev/shm",
      false);
  add(in.termination_log_host_path, in.termination_message_path, false);
  return out;
}

void logSelinuxIgnoredOnce(const std::string& id) {
  static std::atomic<bool> logged{false};
  if (!logged.exchange(true)) {
    logging::get("oci")->info(
        "container {}: selinux_relabel on a mount is ignored: SELinux is not supported "
        "(logged once)",
        id);
  }
}

// Validates a CRI (or pod file) mount and returns its OCI form.
absl::StatusOr<json> ociMount(const ContainerSpecInput& in, const PlannedMount& pm, json& spec) {
  const ContainerMount& m = pm.mount;
  const std::string& src = m.host_path;
  if (src.empty() || src[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat(
        "mount at \"", m.container_path, "\": host_path \"", src, "\" is not an absolute path"));
  }
  struct stat st {};
  if (::stat(src.c_str(), &st) != 0) {
    if (errno != ENOENT)
      return aboutObject(lastErrnoStatus(absl::StrCat("stat mount host_path ", src)));
    if (pm.pod_file) {
      return absl::FailedPreconditionError(absl::StrCat("pod file ", src, " is missing"));
    }
    if (!in.create_missing_host_paths) {
      return absl::InvalidArgumentError(absl::StrCat("mount at \"", m.container_path,
                                                     "\": host_path \"", src, "\" does not exist"));
    }
    BERTH_RETURN_IF_ERROR(makeDirs(src, 0755));
  }
  char resolved[PATH_MAX];
  if (::realpath(src.c_str(), resolved) == nullptr) {
    return aboutObject(lastErrnoStatus(absl::StrCat("resolve mount host_path ", src)));
  }
  if (m.recursive_read_only) {
    // As containerd and CRI-O: only a read-only mount with private propagation.
    if (!m.readonly) {
      return absl::InvalidArgumentError(
          absl::StrCat("mount at \"", m.container_path, "\": recursive_read_only needs readonly"));
    }
    if (m.propagation != MountPropagation::kPrivate) {
      return absl::InvalidArgumentError(absl::StrCat(
          "mount at \"", m.container_path, "\": recursive_read_only needs private propagation"));
    }
    if (!in.recursive_read_only_supported) {
      return absl::FailedPreconditionError(absl::StrCat(
          "mount at \"", m.container_path, "\": runtime handler \"", in.runtime_handler,
          "\" cannot make mounts recursively read-only (see its features in RuntimeStatus)"));
    }
  }
  BERTH_RETURN_IF_ERROR(checkPropagation(in.mountinfo_path, resolved, m.propagation));
  json options = {"rbind"};
  switch (m.propagation) {
    case MountPropagation::kBidirectional:
      options.push_back("rshared");
      spec["linux"]["rootfsPropagation"] = "rshared";
      break;
    case MountPropagation::kHostToContainer:
      options.push_back("rslave");
      if (spec["linux"].value("rootfsPropagation", "") != "rshared") {
        spec["linux"]["rootfsPropagation"] = "rslave";
      }
      break;
    case MountPropagation::kPrivate:
      options.push_back("rprivate");
      break;
  }
  // As containerd: a read-only rootfs does not make the volumes read-only.
  options.push_back(m.readonly ? "ro" : "rw");
  if (m.recursive_read_only) options.push_back("rro");
  if (m.selinux_relabel) logSelinuxIgnoredOnce(in.id);
  return json{{"destination", m.container_path},
              {"type", "bind"},
              {"source", resolved},
              {"options", std::move(options)}};
}

absl::Status checkPermissions(const std::string& perms, const std::string& host_path) {
  for (char c : perms) {
    if (c != 'r' && c != 'w' && c != 'm') {
      return absl::InvalidArgumentError(absl::StrCat("device \"", host_path, "\": permissions \"",
                                                     perms, "\" are not letters of \"rwm\""));
    }
  }
  return absl::OkStatus();
}

// containerd's getDevices: a device node, or every device node below a directory.
absl::Status collectDevices(const std::string& host_path, const std::string& container_path,
                            std::vector<json>* out) {
  struct stat st {};
  if (::stat(host_path.c_str(), &st) != 0) {
    return aboutObject(lastErrnoStatus(absl::StrCat("device ", host_path)));
  }
  if (!S_ISDIR(st.st_mode)) {
    BERTH_ASSIGN_OR_RETURN(json dev, deviceFromPath(host_path, container_path));
    out->push_back(std::move(dev));
    return absl::OkStatus();
  }
  DIR* dir = ::opendir(host_path.c_str());
  if (dir == nullptr)
    return aboutObject(lastErrnoStatus(absl::StrCat("open device directory ", host_path)));
  std::vector<std::string> names;
  while (dirent* e = ::readdir(dir)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
  }
  ::closedir(dir);
  std::sort(names.begin(), names.end());
  static const std::set<std::string> kSkipDirs = {"pts",  "shm",         "fd",   "mqueue",
                                                  ".lxc", ".lxd-mounts", ".udev"};
  for (const std::string& name : names) {
    std::string child = absl::StrCat(host_path, "/", name);
    std::string dest = absl::StrCat(container_path, "/", name);
    struct stat cst {};
    if (::lstat(child.c_str(), &cst) != 0) continue;  // gone meanwhile
    if (S_ISDIR(cst.st_mode)) {
      if (kSkipDirs.count(name) != 0) continue;
      BERTH_RETURN_IF_ERROR(collectDevices(child, dest, out));
      continue;
    }
    if (name == "console" || !(S_ISCHR(cst.st_mode) || S_ISBLK(cst.st_mode))) continue;
    auto dev = deviceFromPath(child, dest);
    if (dev.ok()) out->push_back(*std::move(dev));
  }
  return absl::OkStatus();
}

// Adds or replaces (same path) a linux.devices entry.
void setDevice(json& spec, json dev) {
  json& devices = spec["linux"]["devices"];
  if (!devices.is_array()) devices = json::array();
  for (json& d : devices) {
    if (d["path"] == dev["path"]) {
      d = std::move(dev);
      return;
    }
  }
  devices.push_back(std::move(dev));
}

}  // namespace

absl::StatusOr<json> deviceFromPath(const std::string& host_path,
                                    const std::string& container_path) {
  struct stat st {};
  if (::lstat(host_path.c_str(), &st) != 0) {
    return aboutObject(lastErrnoStatus(absl::StrCat("device ", host_path)));
  }
  const char* type = nullptr;
  if (S_ISCHR(st.st_mode)) {
    type = "c";
  } else if (S_ISBLK(st.st_mode)) {
    type = "b";
  } else if (S_ISFIFO(st.st_mode)) {
    type = "p";
  } else {
    return absl::FailedPreconditionError(absl::StrCat(host_path, " is not a device node"));
  }
  return json{{"path", container_path.empty() ? host_path : container_path},
              {"type", type},
              {"major", major(st.st_rdev)},
              {"minor", minor(st.st_rdev)},
              {"fileMode", st.st_mode & ~S_IFMT},
              {"uid", st.st_uid},
              {"gid", st.st_gid}};
}

absl::Status setContainerMounts(const ContainerSpecInput& in, json& spec) {
  const ContainerConfig& c = *in.config;
  std::vector<PlannedMount> planned;
  std::set<std::string> cri_dests;
  for (const ContainerMount& m : c.mounts) {
    if (m.container_path.empty() || m.container_path[0] != '/') {
      return absl::InvalidArgumentError(absl::StrCat("mount of \"", m.host_path,
                                                     "\": container_path \"", m.container_path,
                                                     "\" is not an absolute path"));
    }
    if (!cri_dests.insert(cleanPath(m.container_path)).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("two mounts at container_path \"", m.container_path, "\""));
    }
    planned.push_back({m, false});
  }
  // A CRI mount at the same place wins over a pod file.
  for (PlannedMount& pm : podFileMounts(in)) {
    if (cri_dests.count(cleanPath(pm.mount.container_path)) == 0) planned.push_back(pm);
  }
  std::stable_sort(
      planned.begin(), planned.end(), [](const PlannedMount& a, const PlannedMount& b) {
        return depth(cleanPath(a.mount.container_path)) < depth(cleanPath(b.mount.container_path));
      });

  std::set<std::string> dests;
  for (const auto& pm : planned) dests.insert(cleanPath(pm.mount.container_path));
  const bool dev_mounted = dests.count("/dev") != 0;

  json defaults = spec.value("mounts", json::array());
  defaults.push_back(
      {{"destination", "/sys/fs/cgroup"},
       {"type", "cgroup"},
       {"source", "cgroup"},
       {"options",
        {"nosuid", "noexec", "nodev", "relatime", c.security.privileged ? "rw" : "ro"}}});
  json mounts = json::array();
  for (json& m : defaults) {
    std::string dst = cleanPath(m.value("destination", ""));
    if (dests.count(dst) != 0) continue;
    if (dev_mounted && absl::StartsWith(dst, "/dev/")) continue;
    mounts.push_back(std::move(m));
  }
  for (const PlannedMount& pm : planned) {
    auto m = ociMount(in, pm, spec);
    if (!m.ok()) return m.status();
    mounts.push_back(*std::move(m));
  }
  spec["mounts"] = std::move(mounts);
  return absl::OkStatus();
}

absl::Status addContainerDevices(const ContainerSpecInput& in, json& spec) {
  for (const ContainerDevice& d : in.config->devices) {
    if (d.host_path.empty() || d.host_path[0] != '/') {
      return absl::InvalidArgumentError(
          absl::StrCat("device host_path \"", d.host_path, "\" is not an absolute path"));
    }
    if (!d.container_path.empty() && d.container_path[0] != '/') {
      return absl::InvalidArgumentError(absl::StrCat("device \"", d.host_path,
                                                     "\": container_path \"", d.container_path,
                                                     "\" is not an absolute path"));
    }
    const std::string perms = d.permissions.empty() ? "rwm" : d.permissions;
    BERTH_RETURN_IF_ERROR(checkPermissions(perms, d.host_path));
    char resolved[PATH_MAX];
    if (::realpath(d.host_path.c_str(), resolved) == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("device \"", d.host_path, "\" does not exist"));
    }
    std::vector<json> found;
    auto st =
        collectDevices(resolved, d.container_path.empty() ? d.host_path : d.container_path, &found);
    if (!st.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("device \"", d.host_path, "\": ", st.message()));
    }
    for (json& dev : found) {
      spec["linux"]["resources"]["devices"].push_back({{"allow", true},
                                                       {"type", dev["type"]},
                                                       {"major", dev["major"]},
                                                       {"minor", dev["minor"]},
                                                       {"access", perms}});
      setDevice(spec, std::move(dev));
    }
  }
  return absl::OkStatus();
}

absl::Status addHostDevices(const std::string& dev_dir, json& spec) {
  std::vector<json> found;
  BERTH_RETURN_IF_ERROR(collectDevices(dev_dir, "/dev", &found));
  for (json& dev : found) setDevice(spec, std::move(dev));
  spec["linux"]["resources"]["devices"] = json::array({{{"allow", true}, {"access", "rwm"}}});
  return absl::OkStatus();
}

}  // namespace berth::oci
