// CRI ContainerConfig → berth's oci::ContainerConfig, container names and log paths.
#include <atomic>
#include <cstring>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/json_text.h"
#include "common/logging.h"
#include "common/status.h"
#include "cri/container_handlers.h"
#include "oci/cdi.h"

namespace berth::cri {

void noteSelinuxOptions(const v1::SELinuxOption& o) {
  static std::atomic<bool> logged{false};
  if (o.user().empty() && o.role().empty() && o.type().empty() && o.level().empty()) return;
  if (!logged.exchange(true)) {
    logging::get("cri")->info(
        "SELinux options are ignored: berth does not support SELinux (logged once)");
  }
}

absl::StatusOr<IdMappings> toIdMappings(
    const google::protobuf::RepeatedPtrField<v1::IDMapping>& maps, std::string_view what) {
  IdMappings out;
  for (const auto& m : maps) {
    out.push_back({.container_id = m.container_id(), .host_id = m.host_id(), .length = m.length()});
  }
  BERTH_RETURN_IF_ERROR(validateIdMappings(out, what));
  return out;
}

absl::StatusOr<std::optional<sandbox::SandboxConfig::UserNamespace>> toUserNamespace(
    const v1::NamespaceOption& ns, const std::string& who) {
  if (!ns.has_userns_options()) return std::nullopt;
  const v1::UserNamespace& u = ns.userns_options();
  if (u.mode() == v1::NODE) {
    if (u.uids_size() > 0 || u.gids_size() > 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(who, "user namespace mode NODE (the host's) takes no uid or gid mappings"));
    }
    return std::nullopt;
  }
  if (u.mode() != v1::POD) {
    return absl::InvalidArgumentError(absl::StrCat(who, "user namespace mode ",
                                                   v1::NamespaceMode_Name(u.mode()),
                                                   " is not supported; only NODE and POD are"));
  }
  sandbox::SandboxConfig::UserNamespace out;
  BERTH_ASSIGN_OR_RETURN(out.uids,
                         toIdMappings(u.uids(), absl::StrCat(who, "user namespace uid mappings")));
  BERTH_ASSIGN_OR_RETURN(out.gids,
                         toIdMappings(u.gids(), absl::StrCat(who, "user namespace gid mappings")));
  return out;
}

namespace {

oci::SecurityProfile toProfile(const v1::SecurityProfile& p) {
  oci::SecurityProfile out;
  out.type = static_cast<oci::SecurityProfileType>(p.profile_type());
  out.localhost_ref = p.localhost_ref();
  return out;
}

// The deprecated string forms: "runtime/default", "docker/default", "unconfined",
// "localhost/<ref>"; "" = unset.
absl::StatusOr<std::optional<oci::SecurityProfile>> legacyProfile(const std::string& s,
                                                                  const char* field) {
  if (s.empty()) return std::nullopt;
  if (s == "runtime/default" || s == "docker/default") {
    return oci::SecurityProfile{.type = oci::SecurityProfileType::kRuntimeDefault};
  }
  if (s == "unconfined") return oci::SecurityProfile{.type = oci::SecurityProfileType::kUnconfined};
  if (absl::StartsWith(s, "localhost/")) {
    return oci::SecurityProfile{.type = oci::SecurityProfileType::kLocalhost,
                                .localhost_ref = s.substr(std::string("localhost/").size())};
  }
  return absl::InvalidArgumentError(absl::StrCat(field, " \"", s, "\" is not a known profile"));
}

}  // namespace

absl::StatusOr<std::optional<oci::SecurityProfile>> profileOf(bool has_profile,
                                                              const v1::SecurityProfile& profile,
                                                              const std::string& legacy,
                                                              const char* legacy_field) {
  if (has_profile) return toProfile(profile);
  return legacyProfile(legacy, legacy_field);
}

oci::ContainerResources toResources(const v1::LinuxContainerResources& r) {
  oci::ContainerResources out;
  out.cpu_period = r.cpu_period();
  out.cpu_quota = r.cpu_quota();
  out.cpu_shares = r.cpu_shares();
  out.memory_limit_in_bytes = r.memory_limit_in_bytes();
  out.oom_score_adj = r.oom_score_adj();
  out.cpuset_cpus = r.cpuset_cpus();
  out.cpuset_mems = r.cpuset_mems();
  for (const auto& h : r.hugepage_limits()) out.hugepage_limits.push_back({h.page_size(), h.limit()});
  out.unified.insert(r.unified().begin(), r.unified().end());
  out.memory_swap_limit_in_bytes = r.memory_swap_limit_in_bytes();
  return out;
}

absl::StatusOr<oci::ContainerConfig> toContainerConfig(const v1::ContainerConfig& c) {
  if (c.metadata().name().empty()) {
    return absl::InvalidArgumentError("container config: metadata.name is required");
  }
  const std::string who = absl::StrCat("container \"", c.metadata().name(), "\": ");
  auto unsupported = [&who](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat(who, what, " is not supported by berth"));
  };
  if (c.image().image().empty())
    return absl::InvalidArgumentError(absl::StrCat(who, "image.image is required"));
  oci::ContainerConfig out;
  out.name = c.metadata().name();
  out.attempt = c.metadata().attempt();
  out.image = c.image().image();
  out.command.assign(c.command().begin(), c.command().end());
  out.args.assign(c.args().begin(), c.args().end());
  out.working_dir = c.working_dir();
  for (const auto& kv : c.envs()) {
    if (kv.key().empty()) return absl::InvalidArgumentError(absl::StrCat(who, "an env entry has no key"));
    // A value is bytes (cri-api v0.36.3); the spec is JSON, so it goes in as Go's JSON would
    // put it (containerd): bytes that are not UTF-8 become U+FFFD.
    out.envs.emplace_back(kv.key(), coerceToUtf8(kv.value()));
  }
  for (const auto& m : c.mounts()) {
    IdMappings uids, gids;
    if (m.uidmappings_size() > 0 || m.gidmappings_size() > 0) {
      const std::string at = absl::StrCat(who, "mount at \"", m.container_path(), "\": ");
      BERTH_ASSIGN_OR_RETURN(uids, toIdMappings(m.uidmappings(), at + "uid mappings"));
      BERTH_ASSIGN_OR_RETURN(gids, toIdMappings(m.gidmappings(), at + "gid mappings"));
    }
    if (m.has_image() && !m.image().image().empty()) {
      // As containerd: an image volume has no host path and is read-only.
      const std::string at =
          absl::StrCat("ImageVolumeMountFailed: image volume at \"", m.container_path(), "\": ");
      if (!m.host_path().empty()) {
        return absl::InvalidArgumentError(absl::StrCat(who, at, "host_path must be empty"));
      }
      if (!m.readonly()) {
        return absl::InvalidArgumentError(absl::StrCat(who, at, "it must be read-only"));
      }
    }
    out.mounts.push_back({.container_path = m.container_path(),
                          .host_path = m.host_path(),
                          .readonly = m.readonly(),
                          .selinux_relabel = m.selinux_relabel(),
                          .propagation = static_cast<oci::MountPropagation>(m.propagation()),
                          .recursive_read_only = m.recursive_read_only(),
                          .image = m.has_image() ? m.image().image() : std::string(),
                          .image_sub_path = m.image_sub_path(),
                          .uid_mappings = std::move(uids),
                          .gid_mappings = std::move(gids)});
  }
  for (const auto& d : c.cdi_devices()) out.cdi_devices.push_back(d.name());
  // As containerd (cdi.ParseAnnotations): every cdi.k8s.io/<key> annotation is a
  // comma-separated list of devices.
  for (const auto& [key, value] : c.annotations()) {
    if (!absl::StartsWith(key, oci::kCdiAnnotationPrefix)) continue;
    for (absl::string_view name : absl::StrSplit(value, ',', absl::SkipWhitespace())) {
      name = absl::StripAsciiWhitespace(name);
      if (name.find('=') == absl::string_view::npos || name.find('/') == absl::string_view::npos) {
        return absl::InvalidArgumentError(absl::StrCat(who, "annotation ", key, ": \"", name,
                                                       "\" is not a vendor/class=name device"));
      }
      out.cdi_devices.emplace_back(name);
    }
  }
  for (const auto& d : c.devices()) {
    out.devices.push_back({d.container_path(), d.host_path(), d.permissions()});
  }
  out.labels.insert(c.labels().begin(), c.labels().end());
  out.annotations.insert(c.annotations().begin(), c.annotations().end());
  out.log_path = c.log_path();
  out.stdin = c.stdin();
  out.stdin_once = c.stdin_once();
  out.tty = c.tty();
  const auto& lx = c.linux();
  out.resources = toResources(lx.resources());
  const auto& sc = lx.security_context();
  auto& sec = out.security;
  if (sc.capabilities().add_ambient_capabilities_size() > 0) return unsupported("add_ambient_capabilities");
  sec.add_capabilities.assign(sc.capabilities().add_capabilities().begin(),
                              sc.capabilities().add_capabilities().end());
  sec.drop_capabilities.assign(sc.capabilities().drop_capabilities().begin(),
                               sc.capabilities().drop_capabilities().end());
  sec.privileged = sc.privileged();
  const auto& ns = sc.namespace_options();
  sec.network = static_cast<sandbox::NamespaceMode>(ns.network());
  sec.pid = static_cast<sandbox::NamespaceMode>(ns.pid());
  sec.ipc = static_cast<sandbox::NamespaceMode>(ns.ipc());
  sec.target_id = ns.target_id();
  // The pod's own user namespace, or the host's: checked against the pod's when created.
  BERTH_ASSIGN_OR_RETURN(sec.userns, toUserNamespace(ns, who));
  sec.userns_node = ns.has_userns_options() && !sec.userns.has_value();
  if (sec.pid == sandbox::NamespaceMode::kTarget && sec.target_id.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(who, "pid namespace TARGET needs target_id"));
  }
  if (sc.has_run_as_user()) sec.run_as_user = sc.run_as_user().value();
  sec.run_as_username = sc.run_as_username();
  if (sc.has_run_as_group()) sec.run_as_group = sc.run_as_group().value();
  sec.readonly_rootfs = sc.readonly_rootfs();
  sec.supplemental_groups.assign(sc.supplemental_groups().begin(), sc.supplemental_groups().end());
  switch (sc.supplemental_groups_policy()) {
    case v1::Merge:
      break;
    case v1::Strict:
      sec.strict_supplemental_groups = true;
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat(who, "supplemental_groups_policy ",
                       static_cast<int>(sc.supplemental_groups_policy()), " is unknown"));
  }
  sec.no_new_privs = sc.no_new_privs();
  sec.masked_paths.assign(sc.masked_paths().begin(), sc.masked_paths().end());
  sec.readonly_paths.assign(sc.readonly_paths().begin(), sc.readonly_paths().end());
  // The deprecated string fields still come from older kubelets.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  const std::string& seccomp_path = sc.seccomp_profile_path();
  const std::string& apparmor_name = sc.apparmor_profile();
#pragma GCC diagnostic pop
  noteSelinuxOptions(sc.selinux_options());
  auto seccomp = profileOf(sc.has_seccomp(), sc.seccomp(), seccomp_path, "seccomp_profile_path");
  if (!seccomp.ok()) return annotate(seccomp.status(), who);
  sec.seccomp = *seccomp;
  auto apparmor = profileOf(sc.has_apparmor(), sc.apparmor(), apparmor_name, "apparmor_profile");
  if (!apparmor.ok()) return annotate(apparmor.status(), who);
  sec.apparmor = *apparmor;
  return out;
}

std::string containerName(const v1::ContainerMetadata& m, const store::SandboxRecord& pod) {
  return absl::StrCat(m.name(), "_", pod.metadata.name, "_", pod.metadata.ns, "_",
                      pod.metadata.uid, "_", m.attempt());
}

absl::StatusOr<std::string> containerLogPath(const std::string& log_directory,
                                             const std::string& log_path) {
  if (log_path.empty()) return std::string();
  if (log_directory.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("log_path \"", log_path, "\" needs the pod's log_directory"));
  }
  if (log_directory[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("log_directory \"", log_directory, "\" is not an absolute path"));
  }
  if (log_path[0] == '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("log_path \"", log_path, "\" must be relative to the pod's log_directory"));
  }
  for (absl::string_view part : absl::StrSplit(log_path, '/')) {
    if (part == "..") {
      return absl::InvalidArgumentError(
          absl::StrCat("log_path \"", log_path, "\" leaves the pod's log_directory"));
    }
  }
  if (log_path.back() == '/') {
    return absl::InvalidArgumentError(absl::StrCat("log_path \"", log_path, "\" names a directory"));
  }
  std::string dir = log_directory;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir == "/" ? "/" + log_path : absl::StrCat(dir, "/", log_path);
}

std::string signalName(v1::Signal signal) {
  std::string name = v1::Signal_Name(signal);
  for (auto [word, sign] : {std::pair{"PLUS", "+"}, {"MINUS", "-"}}) {
    if (size_t at = name.find(word); at != std::string::npos) name.replace(at, strlen(word), sign);
  }
  return name;
}

v1::Signal criSignal(const std::string& name) {
  // By number, so that every spelling of one signal finds its value; aliases (SIGIOT,
  // SIGPOLL) give way to the name that comes first.
  static const std::map<int, v1::Signal> by_number = [] {
    std::map<int, v1::Signal> m;
    const google::protobuf::EnumDescriptor* d = v1::Signal_descriptor();
    for (int i = 0; i < d->value_count(); ++i) {
      auto value = static_cast<v1::Signal>(d->value(i)->number());
      if (value == v1::RUNTIME_DEFAULT) continue;
      if (auto n = container::parseSignal(signalName(value)); n.ok()) m.emplace(*n, value);
    }
    return m;
  }();
  auto n = container::parseSignal(name);
  if (!n.ok()) return v1::RUNTIME_DEFAULT;
  auto it = by_number.find(*n);
  return it == by_number.end() ? v1::RUNTIME_DEFAULT : it->second;
}

}  // namespace berth::cri
