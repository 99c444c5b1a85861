// The CNI client: picks the network from the CNI config directory (reloaded in the background)
// and runs its plugins for ADD, DEL and CHECK (CNI spec 1.0.0; 0.3.x and 0.4.0 configs too).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace berth::network {

// The readiness reason kubelet knows (NetworkReady condition).
inline constexpr char kNetworkPluginNotReady[] = "NetworkPluginNotReady";

struct CniPortMapping {
  std::string protocol;  // any case; sent lower case, "" as "tcp"
  int32_t container_port = 0;
  int32_t host_port = 0;
  std::string host_ip;
};

// One pod's attachment to the network.
struct CniAttachment {
  std::string container_id;  // the pod sandbox id (CNI_CONTAINERID)
  std::string netns_path;    // CNI_NETNS
  std::string ifname = "eth0";
  // CNI_ARGS: IgnoreUnknown=1;K8S_POD_NAMESPACE=..;K8S_POD_NAME=..;
  //           K8S_POD_INFRA_CONTAINER_ID=<container_id>;K8S_POD_UID=..
  std::string pod_namespace, pod_name, pod_uid;
  // Capability "portMappings": [{hostPort, containerPort, protocol, hostIP}]; mappings with
  // host_port 0 are left out.
  std::vector<CniPortMapping> port_mappings;
  // Capability "dns": {servers, searches, options}, sent only when one of them is non-empty.
  std::vector<std::string> dns_servers, dns_searches, dns_options;
  // Pod annotations: capability "io.kubernetes.cri.pod-annotations" (the whole map), and
  // capability "bandwidth" from kubernetes.io/ingress-bandwidth and kubernetes.io/egress-bandwidth
  // (Kubernetes quantities in bits per second, 1k..1P; the burst is 2^32-1, as containerd sends).
  std::map<std::string, std::string> annotations;
};

struct CniNetworkConfig {
  std::string name, cni_version;
  std::string source;   // the file it came from; "" for the built-in default
  nlohmann::json list;  // normalised conflist: {"cniVersion","name","plugins":[...]}
};

// Whether pods can be networked; reason kNetworkPluginNotReady when not.
struct CniReadiness {
  bool ready = false;
  std::string reason;
  std::string message;
};

struct CniOptions {
  std::string conf_dir = "/etc/cni/net.d";
  std::vector<std::string> bin_dirs = {"/opt/cni/bin", "/usr/lib/cni"};
  bool default_network = true;  // use defaultConfList() when conf_dir has no usable config
  std::string default_bridge = "berth0";
  std::string default_subnet = "10.88.0.0/16";
  // Where the pod CIDRs kubelet sent (UpdateRuntimeConfig) are kept across restarts of berthd;
  // "" keeps them in memory only.
  std::string pod_cidr_file;
  // A plugin running longer is killed (SIGKILL, with anything it started in its process group)
  // and its call fails DeadlineExceeded naming it.
  absl::Duration plugin_timeout = absl::Minutes(2);
  absl::Duration reload_interval = absl::Seconds(1);  // how often the watcher re-reads conf_dir
};

// Readiness also asks each plugin, once per change of its binary, whether it supports the
// network's cniVersion (the VERSION command). STATUS is CNI 1.1, which berth does not run yet.
// Thread-safe; add/del/check for different pods run concurrently (plugins run without any lock
// held). A background watcher thread re-reads the config directory every reload_interval, so a
// config dropped in later (or a plugin binary installed later) is picked up without a restart.
class CniManager {
 public:
  // Loads the config directory once, synchronously, then starts the watcher thread.
  explicit CniManager(CniOptions options);
  // Stops and joins the watcher (promptly: it waits on a condition, not a sleep).
  ~CniManager();
  CniManager(const CniManager&) = delete;
  CniManager& operator=(const CniManager&) = delete;

  // From memory (as of the last reload).
  CniReadiness readiness() const;
  // The chosen network; nullptr when none is usable.
  std::shared_ptr<const CniNetworkConfig> network() const;

  // ADD through the list's plugins in order; each gets the previous plugin's result as
  // prevResult and the runtimeConfig of the capabilities it declares. Returns the last result.
  // Errors: FailedPrecondition when no network is configured or it is not ready (message from
  // readiness()); InvalidArgument for a bad attachment or bandwidth annotation; otherwise the
  // failing plugin's error, "plugin \"<type>\" (network \"<name>\") failed: <msg> (code <n>)
  // [: <details>]", with CNI codes 4, 6, 7 → InvalidArgument, 11 → Unavailable, others →
  // Internal; a plugin killed by the timeout → DeadlineExceeded; a missing plugin binary →
  // FailedPrecondition naming it and the searched dirs. After a plugin fails, DEL runs for the
  // whole list (with the results so far as prevResult; its errors are only logged).
  [[nodiscard]] absl::StatusOr<nlohmann::json> add(const CniAttachment& a);

  // DEL through the current network's plugins in reverse order; continues after an error and
  // returns the first. `prev_result` (the ADD result, may be null) is sent as prevResult when
  // the list's cniVersion is >= 0.4.0 (as libcni does). CNI_NETNS is sent as given, even when
  // the file is gone or the path is empty (plugins cope). FailedPrecondition without a network.
  [[nodiscard]] absl::Status del(const CniAttachment& a, const nlohmann::json& prev_result);

  // CHECK through the plugins in order with `prev_result`; stops at the first error.
  // FailedPrecondition when there is no network or its cniVersion is below 0.4.0 (CHECK does
  // not exist there); OK without running anything when the list sets "disableCheck".
  [[nodiscard]] absl::Status check(const CniAttachment& a, const nlohmann::json& prev_result);

  // The node's pod CIDRs from kubelet (UpdateRuntimeConfig, comma-separated there): from now on
  // the built-in network's subnets instead of default_subnet, kept in pod_cidr_file. An empty
  // list goes back to default_subnet. InvalidArgument for a CIDR that is not one. Returns
  // whether the built-in network is the one in use (false: a config from conf_dir is, and the
  // CIDRs only matter if it goes away).
  [[nodiscard]] absl::StatusOr<bool> setPodCidrs(const std::vector<std::string>& cidrs);

  // The built-in network: cniVersion 1.0.0, name "berth", a bridge plugin (gateway, masquerade,
  // hairpin, host-local IPAM with one range per subnet, default routes for their families) and
  // portmap.
  // What would keep pods from being networked with `options`, for `berthd --check-config`:
  // no usable config in conf_dir (without the built-in default network), a plugin binary
  // missing from bin_dirs, files skipped as invalid. `notes` gets what is fine but worth
  // saying (the built-in network is used, skipped files before the winner).
  static std::vector<std::string> checkSetup(const CniOptions& options,
                                             std::vector<std::string>* notes);
  static nlohmann::json defaultConfList(const std::string& bridge,
                                        const std::vector<std::string>& subnets);

 private:
  void watch();
  // Re-reads conf_dir and the plugin binaries and swaps the result in. Called by the
  // constructor, then only by the watcher thread.
  void reload();

  const CniOptions options_;

  mutable absl::Mutex mu_;
  // State below is protected by mu_.
  std::shared_ptr<const CniNetworkConfig> network_ ABSL_GUARDED_BY(mu_);
  CniReadiness readiness_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::string> pod_cidrs_ ABSL_GUARDED_BY(mu_);  // empty: default_subnet

  absl::Mutex reload_mu_;  // one reload() at a time (the watcher, or setPodCidrs)

  // Only touched by reload(): skipped files already logged (path → why), so a bad file is
  // reported once per change instead of every reload.
  std::map<std::string, std::string> reported_invalid_;
  // Only touched by reload(): VERSION answers by "<binary>\n<cniVersion>" → (the binary's
  // mtime and size when asked, the problem or ""), so plugins are asked once per change.
  std::map<std::string, std::pair<std::string, std::string>> version_checks_;
  // Asks each plugin of `network` (VERSION) whether it supports the list's cniVersion; ""
  // when all do, else what is wrong.
  std::string versionProblem(const CniNetworkConfig& network);

  std::thread watcher_;
};

// A CIDR ("10.244.1.0/24", "fd00::/64"): OK, or InvalidArgument naming it.
[[nodiscard]] absl::Status checkCidr(const std::string& cidr);

// The IP addresses of an ADD result (1.0.0 "ips":[{"address":"10.88.0.5/16",...}], 0.3.x/0.4.0
// the same with "version"): IPv4 first, then IPv6, each without its prefix length, in result
// order within a family.
std::vector<std::string> resultIps(const nlohmann::json& result);

}  // namespace berth::network
