// containerd's default Linux OCI spec, cgroupfs paths, and writing config.json into a bundle.
#include "oci/spec.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/fs.h"
#include "common/json_text.h"
#include "common/status.h"
#include "oci/capabilities.h"

namespace berth::oci {

using nlohmann::json;

json defaultSpec() {
  const auto& caps = defaultCapabilities();
  return json{
      {"ociVersion", "1.0.2-dev"},
      {"process",
       {
           {"terminal", false},
           {"user", {{"uid", 0}, {"gid", 0}}},
           {"args", json::array()},
           {"env", {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}},
           {"cwd", "/"},
           {"capabilities", {{"bounding", caps}, {"effective", caps}, {"permitted", caps}}},
           {"noNewPrivileges", true},
       }},
      {"root", {{"path", "rootfs"}, {"readonly", true}}},
      {"mounts",
       {
           {{"destination", "/proc"},
            {"type", "proc"},
            {"source", "proc"},
            {"options", {"nosuid", "noexec", "nodev"}}},
           {{"destination", "/dev"},
            {"type", "tmpfs"},
            {"source", "tmpfs"},
            {"options", {"nosuid", "strictatime", "mode=755", "size=65536k"}}},
           {{"destination", "/dev/pts"},
            {"type", "devpts"},
            {"source", "devpts"},
            {"options",
             {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}}},
           {{"destination", "/dev/shm"},
            {"type", "tmpfs"},
            {"source", "shm"},
            {"options", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}}},
           {{"destination", "/dev/mqueue"},
            {"type", "mqueue"},
            {"source", "mqueue"},
            {"options", {"nosuid", "noexec", "nodev"}}},
           {{"destination", "/sys"},
            {"type", "sysfs"},
            {"source", "sysfs"},
            {"options", {"nosuid", "noexec", "nodev", "ro"}}},
       }},
      {"linux",
       {
           {"resources", {{"devices", {{{"allow", false}, {"access", "rwm"}}}}}},
           {"namespaces",
            {{{"type", "pid"}},
             {{"type", "ipc"}},
             {{"type", "uts"}},
             {{"type", "mount"}},
             {{"type", "network"}}}},
           {"maskedPaths",
            {"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
             "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
             "/proc/scsi"}},
           {"readonlyPaths",
            {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}},
       }},
  };
}

void setUserNamespace(const sandbox::SandboxConfig::UserNamespace& userns, const std::string& path,
                      json& spec) {
  json& nss = spec["linux"]["namespaces"];
  for (auto it = nss.begin(); it != nss.end();) {
    it = (*it)["type"] == "user" ? nss.erase(it) : it + 1;
  }
  nss.push_back({{"type", "user"}, {"path", path}});
  auto maps = [](const IdMappings& m) {
    json out = json::array();
    for (const IdMapping& one : m) {
      out.push_back(
          {{"containerID", one.container_id}, {"hostID", one.host_id}, {"size", one.length}});
    }
    return out;
  };
  spec["linux"]["uidMappings"] = maps(userns.uids);
  spec["linux"]["gidMappings"] = maps(userns.gids);
}

absl::StatusOr<std::string> cgroupsPath(const std::string& parent, const std::string& id) {
  if (id.empty() || id.find('/') != std::string::npos || id == "." || id == "..") {
    return absl::InvalidArgumentError(
        absl::StrCat("sandbox id \"", id, "\": invalid in a cgroup path"));
  }
  if (parent.empty() || parent[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat(
        "cgroup parent \"", parent, "\" must be an absolute cgroupfs path (e.g. /kubepods)"));
  }
  std::vector<std::string> parts;
  for (absl::string_view part : absl::StrSplit(parent, '/', absl::SkipEmpty())) {
    if (part == "." || part == "..") {
      return absl::InvalidArgumentError(
          absl::StrCat("cgroup parent \"", parent, "\" must not contain \".\" or \"..\""));
    }
    parts.emplace_back(part);
  }
  parts.push_back(id);
  return absl::StrCat("/", absl::StrJoin(parts, "/"));
}

std::string cgroupsPathOf(const std::string& spec_json) {
  nlohmann::json spec = parseJsonObject(spec_json);
  auto lx = spec.find("linux");
  if (lx == spec.end() || !lx->is_object()) return "";
  auto path = lx->find("cgroupsPath");
  return path != lx->end() && path->is_string() ? path->get<std::string>() : "";
}

absl::Status writeBundle(const std::string& bundle_dir, const json& spec) {
  BERTH_RETURN_IF_ERROR(annotate(makeDirs(bundle_dir, 0700), "create bundle"));
  std::string text;
  try {
    text = spec.dump(2);
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("OCI spec for bundle ", bundle_dir, " cannot be serialized: ", e.what()));
  }
  text.push_back('\n');
  // runc reads it once, at create; the spec that outlasts a crash is the one in the store.
  return writeFileAtomic(absl::StrCat(bundle_dir, "/config.json"), text, 0600, Sync::kNo);
}

}  // namespace berth::oci
