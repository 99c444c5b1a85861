// The pod sandbox (pause container) spec, following containerd's podsandbox controller:
//  - network POD: a network namespace (the pinned netns_path, or a new one); NODE: the host's,
//    and the host's UTS namespace too (no hostname, no uts entry);
//  - pid POD/CONTAINER: a new pid namespace (pause is PID 1); NODE: the host's;
//  - ipc POD/CONTAINER: a new ipc namespace and the pod's shm tmpfs at /dev/shm; NODE: the
//    host's ipc namespace and /dev/shm;
//  - resolv.conf, hosts, hostname bound read-only; sysctls checked against the namespaces;
//  - cgroupfs path <parent>/<id>; privileged = all capabilities, nothing masked, devices open;
//  - user 65535:65535 unless set; oomScoreAdj clamped; CRI annotations; read-only root.
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "oci/capabilities.h"
#include "oci/container_spec.h"
#include "oci/oom.h"
#include "oci/spec.h"
#include "oci/sysctl.h"

namespace berth::oci {
namespace {

using nlohmann::json;
using sandbox::NamespaceMode;

constexpr int64_t kPauseId = 65535;     // containerd's pause image user and group
constexpr int64_t kMaxId = 4294967294;  // (uid_t)-1 means "unset" to the kernel
constexpr int kSandboxCpuShares = 2;    // containerd's defaultSandboxCPUshares

const char* modeName(NamespaceMode m) {
  switch (m) {
    case NamespaceMode::kPod:
      return "POD";
    case NamespaceMode::kContainer:
      return "CONTAINER";
    case NamespaceMode::kNode:
      return "NODE";
    case NamespaceMode::kTarget:
      return "TARGET";
  }
  return "?";
}

// A sandbox has no other container to target; CONTAINER means the same as POD for it.
absl::Status checkMode(const char* what, NamespaceMode m) {
  if (m == NamespaceMode::kPod || m == NamespaceMode::kContainer || m == NamespaceMode::kNode) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat(what, " namespace mode ", modeName(m), " is not valid for a pod sandbox"));
}

void removeNamespace(json& spec, const std::string& type) {
  json& nss = spec["linux"]["namespaces"];
  for (auto it = nss.begin(); it != nss.end();) {
    it = (*it)["type"] == type ? nss.erase(it) : it + 1;
  }
}

json* findNamespace(json& spec, const std::string& type) {
  for (json& ns : spec["linux"]["namespaces"]) {
    if (ns["type"] == type) return &ns;
  }
  return nullptr;
}

json bindMount(const std::string& source, const std::string& dest,
               std::vector<std::string> options) {
  return json{{"destination", dest}, {"type", "bind"}, {"source", source}, {"options", options}};
}

// Replaces the mount at `dest` in place (keeping mount order), or appends.
void setMount(json& spec, json mount) {
  for (json& m : spec["mounts"]) {
    if (m["destination"] == mount["destination"]) {
      m = std::move(mount);
      return;
    }
  }
  spec["mounts"].push_back(std::move(mount));
}

absl::Status checkId(const char* what, int64_t v) {
  if (v < 0 || v > kMaxId) {
    return absl::InvalidArgumentError(absl::StrCat(what, " ", v, " is out of range"));
  }
  return absl::OkStatus();
}

absl::Status setUser(json& spec, const sandbox::SandboxConfig& c) {
  int64_t uid = kPauseId;
  int64_t gid = kPauseId;
  if (c.run_as_user >= 0) {
    BERTH_RETURN_IF_ERROR(checkId("run_as_user", c.run_as_user));
    uid = c.run_as_user;
    gid = 0;  // as containerd when the rootfs has no passwd entry for the user
  } else if (c.run_as_user != -1) {
    return absl::InvalidArgumentError(
        absl::StrCat("run_as_user ", c.run_as_user, " is out of range"));
  }
  if (c.run_as_group != -1) {
    BERTH_RETURN_IF_ERROR(checkId("run_as_group", c.run_as_group));
    gid = c.run_as_group;
  }
  json user = {{"uid", uid}, {"gid", gid}};
  if (!c.supplemental_groups.empty()) {
    for (int64_t g : c.supplemental_groups) BERTH_RETURN_IF_ERROR(checkId("supplemental group", g));
    user["additionalGids"] = c.supplemental_groups;
  }
  spec["process"]["user"] = std::move(user);
  return absl::OkStatus();
}

void setPrivileged(json& spec) {
  auto caps = currentCapabilities();
  spec["process"]["capabilities"] = {{"bounding", caps}, {"effective", caps}, {"permitted", caps}};
  spec["linux"].erase("maskedPaths");
  spec["linux"].erase("readonlyPaths");
  spec["linux"]["resources"]["devices"] = json::array({{{"allow", true}, {"access", "rwm"}}});
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

}  // namespace

absl::StatusOr<json> buildSandboxSpec(const SandboxSpecInput& in) {
  if (in.config == nullptr) return absl::InvalidArgumentError("sandbox spec: no pod config");
  const sandbox::SandboxConfig& c = *in.config;
  const std::string who = absl::StrCat("sandbox \"", in.id, "\"");
  auto fail = [&who](const absl::Status& st) { return annotate(st, who); };

  if (in.id.empty()) return absl::InvalidArgumentError("sandbox spec: empty sandbox id");
  if (in.args.empty()) return fail(absl::InvalidArgumentError("empty pause command"));
  if (!in.rootfs.empty() && in.rootfs[0] != '/') {
    return fail(absl::InvalidArgumentError(
        absl::StrCat("rootfs \"", in.rootfs, "\" is not an absolute path")));
  }
  for (auto [what, mode] :
       {std::pair{"network", c.network}, std::pair{"pid", c.pid}, std::pair{"ipc", c.ipc}}) {
    if (auto st = checkMode(what, mode); !st.ok()) return fail(st);
  }
  const bool host_net = c.network == NamespaceMode::kNode;
  const bool host_pid = c.pid == NamespaceMode::kNode;
  const bool host_ipc = c.ipc == NamespaceMode::kNode;

  json spec = defaultSpec();
  spec["process"]["args"] = in.args;
  if (!in.rootfs.empty()) spec["root"]["path"] = in.rootfs;
  spec["root"]["readonly"] = true;

  // UTS goes with the network: host network shares the host's name.
  if (host_net) {
    removeNamespace(spec, "uts");
    removeNamespace(spec, "network");
  } else {
    const std::string& hostname = in.hostname.empty() ? c.hostname : in.hostname;
    if (!hostname.empty()) spec["hostname"] = hostname;
    if (!in.netns_path.empty()) (*findNamespace(spec, "network"))["path"] = in.netns_path;
  }
  if (host_pid) removeNamespace(spec, "pid");
  if (c.userns.has_value()) {
    if (in.userns_path.empty() || in.netns_path.empty()) {
      return fail(absl::InvalidArgumentError(
          "a user namespace of its own needs its pinned user and network namespaces"));
    }
    setUserNamespace(*c.userns, in.userns_path, spec);
  }

  if (host_ipc) {
    removeNamespace(spec, "ipc");
    // The pause needs nothing in the host's /dev/shm: read-only, as containerd binds it.
    setMount(spec, bindMount("/dev/shm", "/dev/shm", {"rbind", "ro", "nosuid", "nodev", "noexec"}));
  } else if (!in.shm_path.empty()) {
    setMount(spec,
             bindMount(in.shm_path, "/dev/shm", {"rbind", "rw", "nosuid", "nodev", "noexec"}));
  }

  for (auto [source, dest] :
       {std::pair{&in.resolv_conf, "/etc/resolv.conf"}, std::pair{&in.hosts, "/etc/hosts"},
        std::pair{&in.hostname_file, "/etc/hostname"}}) {
    if (!source->empty()) setMount(spec, bindMount(*source, dest, {"rbind", "ro"}));
  }

  std::map<std::string, std::string> sysctls;
  if (auto st = validatePodSysctls(c.sysctls, host_net, host_ipc, &sysctls); !st.ok()) {
    return fail(st);
  }
  if (!sysctls.empty()) spec["linux"]["sysctl"] = sysctls;

  auto cg =
      cgroupsPath(c.cgroup_parent.empty() ? in.cgroup_parent_default : c.cgroup_parent, in.id);
  if (!cg.ok()) return fail(cg.status());
  spec["linux"]["cgroupsPath"] = *cg;
  spec["linux"]["resources"]["cpu"] = {{"shares", kSandboxCpuShares}};

  if (c.privileged) setPrivileged(spec);
  if (auto st = setUser(spec, c); !st.ok()) return fail(st);
  // The pod's seccomp and AppArmor profiles, as containerd applies them to the sandbox.
  if (auto st = applySeccompProfile(c.seccomp, c.privileged, in.host, spec); !st.ok()) {
    return fail(annotate(st, "pod seccomp profile"));
  }
  if (auto st = applyAppArmorProfile(c.apparmor, c.privileged, in.host, "", spec); !st.ok()) {
    return fail(annotate(st, "pod apparmor profile"));
  }
  spec["process"]["oomScoreAdj"] = clampOomScoreAdj(in.oom_score_adj);

  json annotations = json::object();
  for (const auto& [k, v] : c.annotations) annotations[k] = v;
  annotations[kAnnotationContainerType] = kContainerTypeSandbox;
  annotations[kAnnotationSandboxId] = in.id;
  annotations[kAnnotationSandboxName] = c.name;
  annotations[kAnnotationSandboxNamespace] = c.ns;
  annotations[kAnnotationSandboxUid] = c.uid;
  annotations[kAnnotationSandboxLogDir] = c.log_directory;
  spec["annotations"] = std::move(annotations);
  return spec;
}

}  // namespace berth::oci
