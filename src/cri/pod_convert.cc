// CRI pod types ↔ berth's: config conversion and validation, names, ids, label selectors.
#include "absl/strings/str_cat.h"
#include "cri/container_handlers.h"
#include "cri/pod_handlers.h"
#include "google/protobuf/util/json_util.h"

namespace berth::cri {

network::CniAttachment cniAttachment(const std::string& id, const std::string& netns_path,
                                     const sandbox::SandboxConfig& config) {
  network::CniAttachment a;
  a.container_id = id;
  a.netns_path = netns_path;
  a.pod_namespace = config.ns;
  a.pod_name = config.name;
  a.pod_uid = config.uid;
  for (const auto& p : config.port_mappings) {
    a.port_mappings.push_back({.protocol = p.protocol,
                               .container_port = p.container_port,
                               .host_port = p.host_port,
                               .host_ip = p.host_ip});
  }
  a.dns_servers = config.dns_servers;
  a.dns_searches = config.dns_searches;
  a.dns_options = config.dns_options;
  a.annotations = config.annotations;
  return a;
}

std::string podSandboxName(const v1::PodSandboxMetadata& m) {
  return absl::StrCat(m.name(), "_", m.namespace_(), "_", m.uid(), "_", m.attempt());
}

bool matchLabels(const google::protobuf::Map<std::string, std::string>& selector,
                 const std::map<std::string, std::string>& labels) {
  for (const auto& [k, v] : selector) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  return true;
}

absl::StatusOr<sandbox::SandboxConfig> toSandboxConfig(const v1::PodSandboxConfig& config,
                                                       const std::string& runtime_handler) {
  const auto& m = config.metadata();
  if (m.name().empty()) return absl::InvalidArgumentError("pod sandbox metadata.name is required");
  if (m.namespace_().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("pod sandbox \"", m.name(), "\": metadata.namespace is required"));
  }
  if (m.uid().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("pod sandbox \"", m.name(), "\": metadata.uid is required"));
  }
  sandbox::SandboxConfig c;
  c.name = m.name();
  c.ns = m.namespace_();
  c.uid = m.uid();
  c.attempt = m.attempt();
  c.hostname = config.hostname();
  c.log_directory = config.log_directory();
  const auto& dns = config.dns_config();
  c.dns_servers.assign(dns.servers().begin(), dns.servers().end());
  c.dns_searches.assign(dns.searches().begin(), dns.searches().end());
  c.dns_options.assign(dns.options().begin(), dns.options().end());
  const auto& lx = config.linux();
  const auto& sc = lx.security_context();
  const auto& ns = sc.namespace_options();
  c.network = static_cast<sandbox::NamespaceMode>(ns.network());
  c.pid = static_cast<sandbox::NamespaceMode>(ns.pid());
  c.ipc = static_cast<sandbox::NamespaceMode>(ns.ipc());
  if (c.network == sandbox::NamespaceMode::kTarget || c.network == sandbox::NamespaceMode::kContainer) {
    return absl::InvalidArgumentError(absl::StrCat("pod sandbox \"", m.name(), "\": network namespace mode must be POD or NODE"));
  }
  if (c.ipc == sandbox::NamespaceMode::kTarget || c.ipc == sandbox::NamespaceMode::kContainer) {
    return absl::InvalidArgumentError(absl::StrCat("pod sandbox \"", m.name(), "\": ipc namespace mode must be POD or NODE"));
  }
  if (c.pid == sandbox::NamespaceMode::kTarget) {
    return absl::InvalidArgumentError(absl::StrCat("pod sandbox \"", m.name(), "\": pid namespace mode TARGET is for containers only"));
  }
  // A pod of its own user namespace (hostUsers: false): applied or refused, never ignored.
  const std::string who = absl::StrCat("pod sandbox \"", m.name(), "\": ");
  BERTH_ASSIGN_OR_RETURN(c.userns, toUserNamespace(ns, who));
  if (c.userns.has_value()) {
    // The runtime's user namespace must own the pod's network namespace (its sysfs), and
    // Kubernetes allows none of the host's namespaces with it.
    if (c.network == sandbox::NamespaceMode::kNode) {
      return absl::InvalidArgumentError(absl::StrCat(
          who, "a user namespace of its own with the host's network is not supported"));
    }
    if (c.pid == sandbox::NamespaceMode::kNode || c.ipc == sandbox::NamespaceMode::kNode) {
      return absl::InvalidArgumentError(absl::StrCat(
          who, "a user namespace of its own cannot share the host's pid or ipc namespace"));
    }
  }
  c.sysctls.insert(lx.sysctls().begin(), lx.sysctls().end());
  c.cgroup_parent = lx.cgroup_parent();
  c.privileged = sc.privileged();
  c.readonly_rootfs = sc.readonly_rootfs();
  noteSelinuxOptions(sc.selinux_options());
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  const std::string& seccomp_path = sc.seccomp_profile_path();
#pragma GCC diagnostic pop
  auto seccomp = profileOf(sc.has_seccomp(), sc.seccomp(), seccomp_path, "seccomp_profile_path");
  if (!seccomp.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("pod sandbox \"", m.name(), "\": ", seccomp.status().message()));
  }
  c.seccomp = *seccomp;
  // The pod's config has no deprecated AppArmor string.
  c.apparmor = *profileOf(sc.has_apparmor(), sc.apparmor(), "", "");
  if (sc.has_run_as_user()) c.run_as_user = sc.run_as_user().value();
  if (sc.has_run_as_group()) c.run_as_group = sc.run_as_group().value();
  c.supplemental_groups.assign(sc.supplemental_groups().begin(), sc.supplemental_groups().end());
  c.labels.insert(config.labels().begin(), config.labels().end());
  c.annotations.insert(config.annotations().begin(), config.annotations().end());
  for (const auto& p : config.port_mappings()) {
    sandbox::PortMapping pm;
    pm.protocol = p.protocol() == v1::UDP ? "udp" : p.protocol() == v1::SCTP ? "sctp" : "tcp";
    pm.container_port = p.container_port();
    pm.host_port = p.host_port();
    pm.host_ip = p.host_ip();
    c.port_mappings.push_back(pm);
  }
  c.runtime_handler = runtime_handler;
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(config, &c.config_json, opts);
  return c;
}

}  // namespace berth::cri
