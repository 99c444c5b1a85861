// Application container spec building, following containerd's CRI containerSpec() and its
// spec options (see container_spec.h for the rules, container_mounts.cc for mounts/devices).
#include "oci/container_spec.h"

#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <functional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/fs.h"
#include "common/logging.h"
#include "common/status.h"
#include "oci/capabilities.h"
#include "oci/container_mounts.h"
#include "oci/oom.h"
#include "oci/seccomp_default.h"
#include "oci/spec.h"
#include "oci/user.h"

namespace berth::oci {
namespace {

using nlohmann::json;
using sandbox::NamespaceMode;

constexpr char kProfileNamePrefix[] = "localhost/";
constexpr int64_t kCgroup2SuperMagic = 0x63677270;

// Logs `message` the first time only (per call site's flag).
void logOnce(std::atomic<bool>& flag, const std::string& message) {
  if (!flag.exchange(true)) logging::get("oci")->info("{} (logged once)", message);
}

// ---- process --------------------------------------------------------------------------------

std::vector<std::string> stringsAt(const json& obj, const char* key) {
  std::vector<std::string> out;
  if (!obj.is_object()) return out;
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_array()) return out;
  for (const json& v : *it) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

std::string stringAt(const json& obj, const char* key) {
  if (!obj.is_object()) return "";
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : "";
}

const json& imageConfigObject(const ContainerSpecInput& in) {
  static const json kEmpty = json::object();
  if (in.image_config == nullptr || !in.image_config->is_object()) return kEmpty;
  auto it = in.image_config->find("config");
  return it != in.image_config->end() && it->is_object() ? *it : kEmpty;
}

// containerd's WithProcessArgs (moby's rules).
absl::StatusOr<std::vector<std::string>> processArgs(const ContainerConfig& c, const json& image) {
  std::vector<std::string> command = c.command;
  std::vector<std::string> args = c.args;
  if (command.empty()) {
    if (args.empty()) args = stringsAt(image, "Cmd");
    std::vector<std::string> entrypoint = stringsAt(image, "Entrypoint");
    // An Entrypoint of [""] means "reset" (docker build's ENTRYPOINT []).
    if (!(entrypoint.size() == 1 && entrypoint[0].empty())) command = std::move(entrypoint);
  }
  if (command.empty() && args.empty()) return absl::InvalidArgumentError("no command specified");
  command.insert(command.end(), args.begin(), args.end());
  return command;
}

// containerd's WithEnv: a "KEY=value" replaces KEY in place or appends; a bare "KEY" unsets it.
void mergeEnv(std::vector<std::string>& env, const std::string& entry) {
  size_t eq = entry.find('=');
  std::string key = entry.substr(0, eq);
  auto same = [&key](const std::string& e) {
    return e.compare(0, key.size(), key) == 0 && (e.size() == key.size() || e[key.size()] == '=');
  };
  auto it = std::find_if(env.begin(), env.end(), same);
  if (eq == std::string::npos) {
    if (it != env.end()) env.erase(it);
  } else if (it != env.end()) {
    *it = entry;
  } else {
    env.push_back(entry);
  }
}

std::string podHostname(const ContainerSpecInput& in) {
  if (!in.hostname.empty()) return in.hostname;
  if (!in.sandbox->hostname.empty()) return in.sandbox->hostname;
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "";
  return buf;
}

absl::Status setProcess(const ContainerSpecInput& in, const json& image, json& spec) {
  const ContainerConfig& c = *in.config;
  json& process = spec["process"];
  BERTH_ASSIGN_OR_RETURN(process["args"], processArgs(c, image));

  std::vector<std::string> env = process["env"].get<std::vector<std::string>>();
  mergeEnv(env, absl::StrCat("HOSTNAME=", podHostname(in)));
  for (const std::string& e : stringsAt(image, "Env")) mergeEnv(env, e);
  for (const auto& [key, value] : c.envs) {
    if (key.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("env with an empty name (value \"", value, "\")"));
    }
    mergeEnv(env, absl::StrCat(key, "=", value));
  }
  process["env"] = env;

  std::string cwd = c.working_dir;
  const char* cwd_from = "working_dir";
  if (cwd.empty()) {
    cwd = stringAt(image, "WorkingDir");
    cwd_from = "image WorkingDir";
  }
  if (cwd.empty()) cwd = "/";
  if (cwd[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat(cwd_from, " \"", cwd, "\" is not an absolute path"));
  }
  process["cwd"] = cwd;
  process["terminal"] = c.tty;

  const ContainerSecurityContext& sc = c.security;
  UserRequest req{.run_as_user = sc.run_as_user,
                  .run_as_username = sc.run_as_username,
                  .run_as_group = sc.run_as_group,
                  .supplemental_groups = sc.supplemental_groups,
                  .image_user = stringAt(image, "User"),
                  .strict_groups = sc.strict_supplemental_groups};
  BERTH_ASSIGN_OR_RETURN(ResolvedUser user, resolveUser(in.rootfs, req));
  process["user"] = {{"uid", user.uid}, {"gid", user.gid}};
  if (!user.additional_gids.empty()) process["user"]["additionalGids"] = user.additional_gids;
  return absl::OkStatus();
}

// ---- security -------------------------------------------------------------------------------

absl::StatusOr<std::string> normalizeCapability(const std::string& name) {
  static const std::vector<std::string> kKnown = capabilityNames(~uint64_t{0});
  std::string upper = absl::AsciiStrToUpper(name);
  if (!absl::StartsWith(upper, "CAP_")) upper = absl::StrCat("CAP_", upper);
  if (std::find(kKnown.begin(), kKnown.end(), upper) == kKnown.end()) {
    return absl::InvalidArgumentError(absl::StrCat("capability \"", name, "\" is unknown"));
  }
  return upper;
}

bool isAll(const std::string& name) { return absl::EqualsIgnoreCase(name, "ALL"); }

void setSysWritable(json& spec) {
  for (json& m : spec["mounts"]) {
    if (m["destination"] != "/sys") continue;
    json opts = json::array();
    for (const json& o : m["options"]) {
      if (o != "ro") opts.push_back(o);
    }
    opts.push_back("rw");
    m["options"] = std::move(opts);
  }
}

absl::Status setCapabilitiesAndPaths(const ContainerSpecInput& in, json& spec) {
  const ContainerSecurityContext& sc = in.config->security;
  std::vector<std::string> caps;
  if (sc.privileged) {
    if (!in.sandbox->privileged) {
      return absl::InvalidArgumentError(
          "privileged is not allowed: the pod sandbox is not privileged");
    }
    caps = currentCapabilities();
    spec["linux"].erase("maskedPaths");
    spec["linux"].erase("readonlyPaths");
    setSysWritable(spec);
    BERTH_RETURN_IF_ERROR(addHostDevices(in.host_dev_dir, spec));
  } else {
    BERTH_ASSIGN_OR_RETURN(caps,
                           applyCapabilityChanges(defaultCapabilities(), currentCapabilities(),
                                                  sc.add_capabilities, sc.drop_capabilities));
    if (!sc.masked_paths.empty()) spec["linux"]["maskedPaths"] = sc.masked_paths;
    if (!sc.readonly_paths.empty()) spec["linux"]["readonlyPaths"] = sc.readonly_paths;
  }
  spec["process"]["capabilities"] = {{"bounding", caps}, {"effective", caps}, {"permitted", caps}};
  spec["process"]["noNewPrivileges"] = sc.no_new_privs;
  spec["root"]["readonly"] = sc.readonly_rootfs;
  return addContainerDevices(in, spec);
}

absl::Status setSeccomp(const ContainerSpecInput& in, json& spec) {
  const ContainerSecurityContext& sc = in.config->security;
  return applySeccompProfile(sc.seccomp, sc.privileged, in.host, spec);
}

absl::Status setAppArmor(const ContainerSpecInput& in, json& spec) {
  const ContainerSecurityContext& sc = in.config->security;
  return applyAppArmorProfile(sc.apparmor, sc.privileged, in.host, in.apparmor_default_profile,
                              spec);
}

// ---- resources ------------------------------------------------------------------------------

bool validPageSize(const std::string& s) {
  size_t digits = 0;
  while (digits < s.size() && std::isdigit(static_cast<unsigned char>(s[digits]))) ++digits;
  if (digits == 0) return false;
  std::string unit = s.substr(digits);
  return unit == "KB" || unit == "MB" || unit == "GB" || unit == "TB" || unit == "PB";
}

}  // namespace

absl::StatusOr<json> linuxResources(const ContainerResources& r, const HostFacts& host) {
  for (auto [what, v] : {std::pair{"cpu_period", r.cpu_period},
                         {"cpu_shares", r.cpu_shares},
                         {"memory_limit_in_bytes", r.memory_limit_in_bytes},
                         {"memory_swap_limit_in_bytes", r.memory_swap_limit_in_bytes}}) {
    if (v < 0) return absl::InvalidArgumentError(absl::StrCat(what, " ", v, " is negative"));
  }
  if (r.oom_score_adj < -1000 || r.oom_score_adj > 1000) {
    return absl::InvalidArgumentError(
        absl::StrCat("oom_score_adj ", r.oom_score_adj, " is outside [-1000, 1000]"));
  }
  json res = json::object();
  json cpu = json::object();
  if (r.cpu_period != 0) cpu["period"] = r.cpu_period;
  if (r.cpu_quota != 0) cpu["quota"] = r.cpu_quota;
  if (r.cpu_shares != 0) cpu["shares"] = r.cpu_shares;
  if (!r.cpuset_cpus.empty()) cpu["cpus"] = r.cpuset_cpus;
  if (!r.cpuset_mems.empty()) cpu["mems"] = r.cpuset_mems;
  if (!cpu.empty()) res["cpu"] = std::move(cpu);

  json memory = json::object();
  if (r.memory_limit_in_bytes != 0) {
    memory["limit"] = r.memory_limit_in_bytes;
    // Equal limits keep the container out of swap by default.
    if (r.memory_swap_limit_in_bytes == 0 && host.swap_limit) {
      memory["swap"] = r.memory_limit_in_bytes;
    }
  }
  if (r.memory_swap_limit_in_bytes != 0 && host.swap_limit) {
    memory["swap"] = r.memory_swap_limit_in_bytes;
  }
  if (!memory.empty()) res["memory"] = std::move(memory);

  for (const HugepageLimit& h : r.hugepage_limits) {
    if (!validPageSize(h.page_size)) {
      return absl::InvalidArgumentError(
          absl::StrCat("hugepage page_size \"", h.page_size, "\" is not like \"2MB\""));
    }
  }
  if (!r.hugepage_limits.empty()) {
    if (host.hugetlb) {
      json limits = json::array();
      for (const HugepageLimit& h : r.hugepage_limits) {
        limits.push_back({{"pageSize", h.page_size}, {"limit", h.limit}});
      }
      res["hugepageLimits"] = std::move(limits);
    } else {
      static std::atomic<bool> logged{false};
      logOnce(logged, "the hugetlb cgroup controller is absent: hugepage limits are skipped");
    }
  }
  if (!r.unified.empty()) {
    // runc refuses them on cgroup v1 ("cannot use unified on cgroup v1") only at create.
    if (!host.cgroup_unified) {
      return absl::InvalidArgumentError(
          "resources.unified needs a cgroup v2 (unified) host; this one is not");
    }
    res["unified"] = r.unified;
  }

  return res;
}

namespace {

absl::Status setResources(const ContainerSpecInput& in, json& spec) {
  const ContainerResources& r = in.config->resources;
  BERTH_ASSIGN_OR_RETURN(json limits, linuxResources(r, in.host));
  // Merged: the device rules are already in linux.resources.
  for (auto& [key, value] : limits.items()) spec["linux"]["resources"][key] = std::move(value);
  if (in.default_pids_limit > 0 && !r.unified.contains("pids.max")) {
    spec["linux"]["resources"]["pids"] = {{"limit", in.default_pids_limit}};
  }
  spec["process"]["oomScoreAdj"] = clampOomScoreAdj(static_cast<int>(r.oom_score_adj));

  const std::string& id = in.id;
  if (id.find('/') != std::string::npos || id == "." || id == "..") {
    return absl::InvalidArgumentError(absl::StrCat("id \"", id, "\" is invalid in a cgroup path"));
  }
  const std::string& parent = in.sandbox->cgroup_parent;
  BERTH_ASSIGN_OR_RETURN(spec["linux"]["cgroupsPath"],
                         cgroupsPath(parent.empty() ? in.cgroup_parent_default : parent, id));
  return absl::OkStatus();
}

// ---- namespaces -----------------------------------------------------------------------------

absl::Status setNamespaces(const ContainerSpecInput& in, json& spec) {
  const ContainerSecurityContext& sc = in.config->security;
  for (auto [what, mode] : {std::pair{"network", sc.network}, std::pair{"ipc", sc.ipc}}) {
    if (mode == NamespaceMode::kTarget) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " namespace mode TARGET is only valid for pid"));
    }
  }
  const bool needs_pause = sc.network != NamespaceMode::kNode || sc.ipc != NamespaceMode::kNode ||
                           sc.pid == NamespaceMode::kPod;
  if (needs_pause && in.sandbox_pid == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("pod sandbox \"", in.sandbox_id, "\" has no running pause process"));
  }
  auto pauseNs = [&in](const char* ns) {
    return absl::StrCat("/proc/", in.sandbox_pid, "/ns/", ns);
  };
  json nss = json::array();
  if (sc.network != NamespaceMode::kNode) {
    nss.push_back(
        {{"type", "network"}, {"path", in.netns_path.empty() ? pauseNs("net") : in.netns_path}});
    // UTS goes with the network: host network shares the host's name.
    nss.push_back({{"type", "uts"}, {"path", pauseNs("uts")}});
  }
  if (sc.ipc != NamespaceMode::kNode) nss.push_back({{"type", "ipc"}, {"path", pauseNs("ipc")}});
  switch (sc.pid) {
    case NamespaceMode::kPod:
      nss.push_back({{"type", "pid"}, {"path", pauseNs("pid")}});
      break;
    case NamespaceMode::kContainer:
      nss.push_back({{"type", "pid"}});
      break;
    case NamespaceMode::kTarget:
      if (in.target_pid == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("pid namespace target \"", sc.target_id, "\" is not a running container"));
      }
      nss.push_back({{"type", "pid"}, {"path", absl::StrCat("/proc/", in.target_pid, "/ns/pid")}});
      break;
    case NamespaceMode::kNode:
      break;
  }
  nss.push_back({{"type", "mount"}});
  // containerd: a cgroup namespace on a pure v2 host, never for privileged containers.
  if (in.host.cgroup_unified && !sc.privileged) nss.push_back({{"type", "cgroup"}});
  spec["linux"]["namespaces"] = std::move(nss);
  // The container's own user namespace options were checked against the pod's
  // (checkUserNamespace) before anything was made for it.
  if (in.sandbox->userns.has_value()) {
    if (in.userns_path.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("pod sandbox \"", in.sandbox_id, "\" has no pinned user namespace"));
    }
    setUserNamespace(*in.sandbox->userns, in.userns_path, spec);
  }
  return absl::OkStatus();
}

void setAnnotations(const ContainerSpecInput& in, json& spec) {
  json a = json::object();
  for (const auto& [k, v] : in.config->annotations) a[k] = v;
  a[kAnnotationContainerType] = kContainerTypeContainer;
  a[kAnnotationContainerName] = in.config->name;
  a[kAnnotationSandboxId] = in.sandbox_id;
  a[kAnnotationSandboxName] = in.sandbox->name;
  a[kAnnotationSandboxNamespace] = in.sandbox->ns;
  a[kAnnotationSandboxUid] = in.sandbox->uid;
  a[kAnnotationImageName] = in.image_name.empty() ? in.config->image : in.image_name;
  spec["annotations"] = std::move(a);
}

}  // namespace

absl::Status checkUserNamespace(const ContainerConfig& c, const sandbox::SandboxConfig& pod) {
  const ContainerSecurityContext& sc = c.security;
  const auto& own = pod.userns;
  if (own.has_value() && sc.userns_node) {
    return absl::InvalidArgumentError(
        "user namespace mode NODE in a pod with a user namespace of its own");
  }
  if (!own.has_value() && sc.userns.has_value()) {
    return absl::InvalidArgumentError(
        "user namespace mode POD: the pod has no user namespace of its own");
  }
  if (own.has_value() && sc.userns.has_value() && *sc.userns != *own) {
    return absl::InvalidArgumentError(
        "user namespace mappings differ from the pod's (a pod's containers share its user "
        "namespace)");
  }
  for (const ContainerMount& m : c.mounts) {
    if (m.uid_mappings.empty() && m.gid_mappings.empty()) continue;
    const std::string at = absl::StrCat("mount at \"", m.container_path, "\": ");
    if (!own.has_value()) {
      return absl::InvalidArgumentError(at +
                                        "id mappings need a pod with a user namespace of its own");
    }
    if (m.uid_mappings != own->uids || m.gid_mappings != own->gids) {
      return absl::InvalidArgumentError(at + "id mappings differ from the pod's user namespace");
    }
    if (m.propagation == MountPropagation::kBidirectional) {
      return absl::InvalidArgumentError(at + "bidirectional propagation cannot be idmapped");
    }
    if (!m.image.empty()) {
      return absl::InvalidArgumentError(at + "an image volume takes no id mappings");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> applyCapabilityChanges(
    const std::vector<std::string>& base, const std::vector<std::string>& all,
    const std::vector<std::string>& add, const std::vector<std::string>& drop) {
  std::vector<std::string> caps = base;
  if (std::any_of(add.begin(), add.end(), isAll)) caps = all;
  if (std::any_of(drop.begin(), drop.end(), isAll)) caps.clear();
  for (const std::string& name : add) {
    if (isAll(name)) continue;
    BERTH_ASSIGN_OR_RETURN(std::string cap, normalizeCapability(name));
    if (std::find(caps.begin(), caps.end(), cap) == caps.end()) caps.push_back(cap);
  }
  for (const std::string& name : drop) {
    if (isAll(name)) continue;
    BERTH_ASSIGN_OR_RETURN(std::string cap, normalizeCapability(name));
    caps.erase(std::remove(caps.begin(), caps.end(), cap), caps.end());
  }
  return caps;
}

absl::Status applySeccompProfile(const std::optional<SecurityProfile>& profile, bool privileged,
                                 const HostFacts& host, json& spec) {
  // containerd: privileged containers and an unset profile run unconfined.
  if (privileged || !profile) return absl::OkStatus();
  const SecurityProfile& p = *profile;
  if (p.type != SecurityProfileType::kLocalhost && !p.localhost_ref.empty()) {
    return absl::InvalidArgumentError(
        "seccomp localhost_ref must only be set with profile type Localhost");
  }
  if (p.type == SecurityProfileType::kUnconfined) return absl::OkStatus();
  if (!host.seccomp) {
    return absl::FailedPreconditionError("seccomp is not supported by this host's kernel");
  }
  if (p.type == SecurityProfileType::kRuntimeDefault) {
    spec["linux"]["seccomp"] = defaultSeccompProfile(spec["process"]["capabilities"]["bounding"]);
    return absl::OkStatus();
  }
  BERTH_ASSIGN_OR_RETURN(spec["linux"]["seccomp"], loadSeccompProfile(p.localhost_ref));
  return absl::OkStatus();
}

absl::Status applyAppArmorProfile(const std::optional<SecurityProfile>& profile, bool privileged,
                                  const HostFacts& host, const std::string& default_profile,
                                  json& spec) {
  SecurityProfile p;  // unset = RuntimeDefault (kubernetes#51746)
  if (profile) p = *profile;
  if (p.type != SecurityProfileType::kLocalhost && !p.localhost_ref.empty()) {
    return absl::InvalidArgumentError(
        "apparmor localhost_ref must only be set with profile type Localhost");
  }
  if (p.type == SecurityProfileType::kUnconfined) return absl::OkStatus();
  if (p.type == SecurityProfileType::kRuntimeDefault) {
    static std::atomic<bool> absent_logged{false};
    static std::atomic<bool> unnamed_logged{false};
    if (privileged) return absl::OkStatus();
    if (!host.apparmor) {
      if (profile) {
        logOnce(absent_logged, "AppArmor is not enabled on this host: RuntimeDefault is skipped");
      }
      return absl::OkStatus();
    }
    if (default_profile.empty()) {
      logOnce(unnamed_logged,
              "no default AppArmor profile is configured: RuntimeDefault is "
              "skipped");
      return absl::OkStatus();
    }
    spec["process"]["apparmorProfile"] = default_profile;
    return absl::OkStatus();
  }
  std::string name = p.localhost_ref;
  if (absl::StartsWith(name, kProfileNamePrefix)) name = name.substr(sizeof kProfileNamePrefix - 1);
  if (name.empty()) return absl::InvalidArgumentError("apparmor Localhost profile has no name");
  if (!host.apparmor) {
    return absl::FailedPreconditionError(absl::StrCat(
        "apparmor profile \"", name, "\" requested but AppArmor is not enabled on this host"));
  }
  spec["process"]["apparmorProfile"] = name;
  return absl::OkStatus();
}

absl::StatusOr<json> buildContainerSpec(const ContainerSpecInput& in) {
  if (in.config == nullptr || in.sandbox == nullptr) {
    return absl::InvalidArgumentError("container spec: no container or pod config");
  }
  const ContainerConfig& c = *in.config;
  const std::string who = absl::StrCat("container \"", c.name, "\"");
  auto fail = [&who](const absl::Status& st) { return annotate(st, who); };
  if (in.id.empty()) return fail(absl::InvalidArgumentError("empty container id"));
  if (!in.rootfs.empty() && in.rootfs[0] != '/') {
    return fail(absl::InvalidArgumentError(
        absl::StrCat("rootfs \"", in.rootfs, "\" is not an absolute path")));
  }

  json spec = defaultSpec();
  if (!in.rootfs.empty()) spec["root"]["path"] = in.rootfs;
  const json& image = imageConfigObject(in);
  const std::function<absl::Status()> steps[] = {
      [&] { return setProcess(in, image, spec); },
      [&] { return setContainerMounts(in, spec); },
      [&] { return setCapabilitiesAndPaths(in, spec); },
      [&] { return setSeccomp(in, spec); },
      [&] { return setAppArmor(in, spec); },
      [&] { return setResources(in, spec); },
      [&] { return setNamespaces(in, spec); },
  };
  for (const auto& step : steps) {
    if (absl::Status st = step(); !st.ok()) return fail(st);
  }
  if (!in.rlimits.empty()) spec["process"]["rlimits"] = rlimitsJson(in.rlimits);
  setAnnotations(in, spec);
  return spec;
}

HostFacts detectHostFacts() {
  HostFacts f;
  struct statfs fs {};
  f.cgroup_unified =
      ::statfs("/sys/fs/cgroup", &fs) == 0 && static_cast<int64_t>(fs.f_type) == kCgroup2SuperMagic;
  struct stat st {};
  auto exists = [&st](const char* p) { return ::stat(p, &st) == 0; };
  if (f.cgroup_unified) {
    auto controllers = readFile("/sys/fs/cgroup/cgroup.controllers");
    f.hugetlb = controllers.ok() && absl::StrContains(*controllers, "hugetlb");
    f.swap_limit = exists("/sys/fs/cgroup/system.slice/memory.swap.max") ||
                   exists("/sys/fs/cgroup/init.scope/memory.swap.max");
  } else {
    f.hugetlb = exists("/sys/fs/cgroup/hugetlb");
    f.swap_limit = exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes");
  }
  auto status = readFile("/proc/self/status");
  f.seccomp = status.ok() && absl::StrContains(*status, "\nSeccomp:");
  f.apparmor = exists("/sys/kernel/security/apparmor");
  return f;
}

std::string imageStopSignal(const json* image_config) {
  if (image_config != nullptr && image_config->is_object()) {
    auto it = image_config->find("config");
    if (it != image_config->end()) {
      std::string s = stringAt(*it, "StopSignal");
      if (!s.empty()) return s;
    }
  }
  return "SIGTERM";
}

}  // namespace berth::oci
