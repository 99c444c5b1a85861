// CniManager: the chosen network and its readiness (reloaded by a watcher thread), and ADD, DEL
// and CHECK through the network's plugin list.
#include "network/cni.h"

#include <arpa/inet.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/fs.h"
#include "common/logging.h"
#include "common/status.h"
#include "network/cni_internal.h"

namespace berth::network {
namespace {

using nlohmann::json;
namespace ci = cni_internal;

constexpr char kSearchPath[] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
// A zero or negative reload interval would make the watcher spin.
constexpr absl::Duration kMinReloadInterval = absl::Milliseconds(10);

struct Loaded {
  std::shared_ptr<const CniNetworkConfig> network;
  CniReadiness readiness;
  std::vector<std::pair<std::string, std::string>> skipped;
};

CniReadiness readinessOf(const CniOptions& o, const CniNetworkConfig* network,
                         const std::vector<std::pair<std::string, std::string>>& skipped) {
  CniReadiness r;
  r.reason = kNetworkPluginNotReady;
  if (network == nullptr) {
    r.message = absl::StrCat("no network config found in ", o.conf_dir);
    if (!skipped.empty()) {
      absl::StrAppend(
          &r.message, " (skipped ", skipped.front().first, ": ", skipped.front().second,
          skipped.size() > 1 ? absl::StrCat(", and ", skipped.size() - 1, " more") : std::string(),
          ")");
    }
    return r;
  }
  std::vector<std::string> missing;
  for (const std::string& type : ci::requiredPlugins(network->list)) {
    if (ci::findPlugin(o.bin_dirs, type).empty()) missing.push_back(type);
  }
  if (missing.size() == 1) {
    r.message = ci::pluginNotFound(missing.front(), o.bin_dirs);
  } else if (!missing.empty()) {
    r.message = absl::StrCat("plugins \"", absl::StrJoin(missing, "\", \""), "\" not found in ",
                             absl::StrJoin(o.bin_dirs, ":"));
  }
  if (!missing.empty()) {
    absl::StrAppend(&r.message, " (network \"", network->name, "\" from ",
                    network->source.empty() ? "the built-in default" : network->source, ")");
    return r;
  }
  return CniReadiness{true, "", ""};
}

Loaded load(const CniOptions& o, const std::vector<std::string>& pod_cidrs) {
  ci::ConfDirScan scan = ci::scanConfDir(o.conf_dir);
  Loaded l;
  l.network = std::move(scan.network);
  l.skipped = std::move(scan.skipped);
  if (l.network == nullptr && o.default_network) {
    auto config = std::make_shared<CniNetworkConfig>();
    config->list = CniManager::defaultConfList(
        o.default_bridge, pod_cidrs.empty() ? std::vector<std::string>{o.default_subnet} : pod_cidrs);
    config->name = config->list["name"].get<std::string>();
    config->cni_version = config->list["cniVersion"].get<std::string>();
    l.network = std::move(config);
  }
  l.readiness = readinessOf(o, l.network.get(), l.skipped);
  return l;
}

bool sameNetwork(const CniNetworkConfig* a, const CniNetworkConfig* b) {
  if (a == nullptr || b == nullptr) return a == b;
  return a->source == b->source && a->list == b->list;
}

absl::Status validateAttachment(const CniAttachment& a, bool need_netns) {
  if (a.container_id.empty())
    return absl::InvalidArgumentError("CNI attachment has no container id");
  if (a.ifname.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("pod ", a.container_id, ": no interface name"));
  }
  if (need_netns && a.netns_path.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("pod ", a.container_id, ": no network namespace path"));
  }
  return absl::OkStatus();
}

// One plugin of the list, run for `command` with the runtime values it asked for.
absl::StatusOr<json> invokePlugin(const CniOptions& o, const CniNetworkConfig& net, size_t index,
                                  const char* command, const CniAttachment& a, const json& caps,
                                  const json& prev) {
  const json& plugin = net.list["plugins"][index];
  std::string type = plugin["type"].get<std::string>();
  std::string binary = ci::findPlugin(o.bin_dirs, type);
  if (binary.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(ci::pluginNotFound(type, o.bin_dirs), " (network \"", net.name, "\")"));
  }

  json conf = plugin;
  conf["cniVersion"] = net.cni_version;
  conf["name"] = net.name;
  if (!prev.is_null()) conf["prevResult"] = prev;
  json runtime_config = json::object();
  if (auto declared = plugin.find("capabilities");
      declared != plugin.end() && declared->is_object()) {
    for (const auto& [name, on] : declared->items()) {
      if (on.is_boolean() && on.get<bool>() && caps.contains(name))
        runtime_config[name] = caps[name];
    }
  }
  if (!runtime_config.empty()) conf["runtimeConfig"] = std::move(runtime_config);

  ci::PluginCall call;
  call.type = type;
  call.network = net.name;
  call.command = command;
  call.container_id = a.container_id;
  call.binary = std::move(binary);
  call.env = {
      absl::StrCat("CNI_COMMAND=", command),
      absl::StrCat("CNI_CONTAINERID=", a.container_id),
      absl::StrCat("CNI_NETNS=", a.netns_path),
      absl::StrCat("CNI_IFNAME=", a.ifname),
      absl::StrCat("CNI_ARGS=", ci::cniArgs(a)),
      absl::StrCat("CNI_PATH=", absl::StrJoin(o.bin_dirs, ":")),
      kSearchPath,
  };
  call.config = ci::dumpJson(conf);
  call.timeout = o.plugin_timeout;
  logging::get("cni")->debug("pod {}: {} plugin \"{}\" of network \"{}\"", a.container_id, command,
                             type, net.name);
  return ci::runPlugin(call);
}

// DEL through the list in reverse; every plugin runs, the first error is returned.
absl::Status delList(const CniOptions& o, const CniNetworkConfig& net, const CniAttachment& a,
                     const json& caps, const json& prev) {
  // prevResult on DEL exists from 0.4.0 on.
  const json none;
  const json& prev_for_del = ci::versionAtLeast(net.cni_version, 0, 4, 0) ? prev : none;
  absl::Status first;
  const size_t n = net.list["plugins"].size();
  for (size_t i = n; i-- > 0;) {
    absl::StatusOr<json> r = invokePlugin(o, net, i, "DEL", a, caps, prev_for_del);
    if (r.ok()) continue;
    logging::get("cni")->warn("pod {}: DEL from network \"{}\": {}", a.container_id, net.name,
                              r.status().message());
    if (first.ok()) first = r.status();
  }
  return first;
}

}  // namespace

CniManager::CniManager(CniOptions options) : options_(std::move(options)) {
  if (!options_.pod_cidr_file.empty()) {
    // Kept from an earlier UpdateRuntimeConfig; kubelet does not send it again after a restart
    // of berthd alone.
    std::ifstream in(options_.pod_cidr_file);
    std::string line;
    std::vector<std::string> cidrs;
    while (std::getline(in, line)) {
      if (!line.empty() && checkCidr(line).ok()) cidrs.push_back(line);
    }
    absl::MutexLock lock(&mu_);
    pod_cidrs_ = std::move(cidrs);
  }
  reload();
  watcher_ = std::thread([this] { watch(); });
}

absl::StatusOr<bool> CniManager::setPodCidrs(const std::vector<std::string>& cidrs) {
  for (const std::string& c : cidrs) BERTH_RETURN_IF_ERROR(checkCidr(c));
  if (!options_.pod_cidr_file.empty()) {
    BERTH_RETURN_IF_ERROR(writeFileAtomic(options_.pod_cidr_file,
                                          cidrs.empty() ? "" : absl::StrJoin(cidrs, "\n") + "\n",
                                          0644));
  }
  {
    absl::MutexLock lock(&mu_);
    pod_cidrs_ = cidrs;
  }
  reload();
  auto net = network();
  return net != nullptr && net->source.empty();
}

absl::Status checkCidr(const std::string& cidr) {
  auto bad = [&] {
    return absl::InvalidArgumentError(absl::StrCat("\"", cidr, "\" is not a CIDR"));
  };
  size_t slash = cidr.find('/');
  if (slash == std::string::npos) return bad();
  std::string addr = cidr.substr(0, slash);
  int prefix = -1;
  if (!absl::SimpleAtoi(cidr.substr(slash + 1), &prefix)) return bad();
  unsigned char buf[16];
  if (::inet_pton(AF_INET, addr.c_str(), buf) == 1) {
    if (prefix < 0 || prefix > 32) return bad();
  } else if (::inet_pton(AF_INET6, addr.c_str(), buf) == 1) {
    if (prefix < 0 || prefix > 128) return bad();
  } else {
    return bad();
  }
  return absl::OkStatus();
}

CniManager::~CniManager() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  watcher_.join();
}

void CniManager::watch() {
  const absl::Duration interval = std::max(options_.reload_interval, kMinReloadInterval);
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      if (mu_.AwaitWithTimeout(absl::Condition(&stopping_), interval)) return;
    }
    reload();
  }
}

std::string CniManager::versionProblem(const CniNetworkConfig& network) {
  for (const std::string& type : ci::requiredPlugins(network.list)) {
    std::string binary = ci::findPlugin(options_.bin_dirs, type);
    struct stat st {};
    if (binary.empty() || ::stat(binary.c_str(), &st) != 0) continue;  // readinessOf says so
    std::string stamp = absl::StrCat(st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec, "/", st.st_size);
    std::string key = absl::StrCat(binary, "\n", network.cni_version);
    auto cached = version_checks_.find(key);
    if (cached == version_checks_.end() || cached->second.first != stamp) {
      ci::PluginCall call;
      call.type = type;
      call.network = network.name;
      call.command = "VERSION";
      call.binary = binary;
      call.env = {"CNI_COMMAND=VERSION", absl::StrCat("CNI_PATH=", absl::StrJoin(options_.bin_dirs, ":")),
                  kSearchPath};
      call.config = json{{"cniVersion", network.cni_version}}.dump();
      call.timeout = std::min(options_.plugin_timeout, absl::Seconds(10));
      std::string problem;
      auto answer = ci::runPlugin(call);
      if (!answer.ok()) {
        problem = absl::StrCat("plugin \"", type, "\" failed VERSION: ", answer.status().message());
      } else {
        const json* versions = answer->is_object() && answer->contains("supportedVersions")
                                   ? &(*answer)["supportedVersions"]
                                   : nullptr;
        bool supported = false;
        if (versions != nullptr && versions->is_array()) {
          for (const auto& v : *versions) supported = supported || v == network.cni_version;
        }
        if (!supported) {
          problem = absl::StrCat("plugin \"", type, "\" does not support CNI version ",
                                 network.cni_version, " (it supports ",
                                 versions != nullptr ? versions->dump() : "none", ")");
        }
      }
      cached = version_checks_.insert_or_assign(key, std::make_pair(stamp, problem)).first;
    }
    if (!cached->second.second.empty()) {
      return absl::StrCat(cached->second.second, " (network \"", network.name, "\")");
    }
  }
  return "";
}

void CniManager::reload() {
  absl::MutexLock serial(&reload_mu_);
  auto log = logging::get("cni");
  std::vector<std::string> cidrs;
  {
    absl::MutexLock lock(&mu_);
    cidrs = pod_cidrs_;
  }
  Loaded l = load(options_, cidrs);
  if (l.readiness.ready) {
    if (std::string problem = versionProblem(*l.network); !problem.empty()) {
      l.readiness = CniReadiness{false, kNetworkPluginNotReady, problem};
    }
  }

  std::map<std::string, std::string> skipped(l.skipped.begin(), l.skipped.end());
  for (const auto& [file, why] : skipped) {
    auto seen = reported_invalid_.find(file);
    if (seen == reported_invalid_.end() || seen->second != why) {
      log->warn("skipping CNI config {}: {}", file, why);
    }
  }
  reported_invalid_ = std::move(skipped);

  bool network_changed = false, readiness_changed = false;
  {
    absl::MutexLock lock(&mu_);
    if (!sameNetwork(network_.get(), l.network.get())) {
      network_ = l.network;
      network_changed = true;
    }
    readiness_changed =
        readiness_.ready != l.readiness.ready || readiness_.message != l.readiness.message;
    readiness_ = l.readiness;
  }
  if (network_changed) {
    if (l.network == nullptr) {
      log->warn("no CNI network: no usable config in {}", options_.conf_dir);
    } else {
      log->info("CNI network \"{}\" (cniVersion {}) from {}", l.network->name,
                l.network->cni_version,
                l.network->source.empty() ? "the built-in default" : l.network->source);
    }
  }
  if (readiness_changed) {
    if (l.readiness.ready) {
      log->info("CNI network ready");
    } else {
      log->warn("CNI network not ready: {}", l.readiness.message);
    }
  }
}

CniReadiness CniManager::readiness() const {
  absl::MutexLock lock(&mu_);
  return readiness_;
}

std::shared_ptr<const CniNetworkConfig> CniManager::network() const {
  absl::MutexLock lock(&mu_);
  return network_;
}

absl::StatusOr<json> CniManager::add(const CniAttachment& a) {
  BERTH_RETURN_IF_ERROR(validateAttachment(a, /*need_netns=*/true));
  std::shared_ptr<const CniNetworkConfig> net;
  CniReadiness ready;
  {
    absl::MutexLock lock(&mu_);
    net = network_;
    ready = readiness_;
  }
  if (net == nullptr || !ready.ready) {
    return absl::FailedPreconditionError(
        absl::StrCat("pod ", a.container_id, ": CNI network not ready: ", ready.message));
  }
  BERTH_ASSIGN_OR_RETURN(json caps, ci::capabilityArgs(a, /*strict=*/true));

  auto log = logging::get("cni");
  json result;
  const size_t n = net->list["plugins"].size();
  for (size_t i = 0; i < n; ++i) {
    absl::StatusOr<json> r = invokePlugin(options_, *net, i, "ADD", a, caps, result);
    absl::Status st = r.status();
    if (st.ok() && !r->is_object()) {
      st = absl::InternalError(absl::StrCat("plugin \"",
                                            net->list["plugins"][i]["type"].get<std::string>(),
                                            "\" (network \"", net->name, "\") returned no result"));
    }
    if (!st.ok()) {
      log->warn("pod {}: ADD to network \"{}\" failed, removing what was set up: {}",
                a.container_id, net->name, st.message());
      absl::Status undo = delList(options_, *net, a, caps, result);
      if (!undo.ok()) {
        log->warn("pod {}: DEL after the failed ADD: {}", a.container_id, undo.message());
      }
      return st;
    }
    result = *std::move(r);
  }
  log->info("pod {}: attached to network \"{}\" as {} ({})", a.container_id, net->name, a.ifname,
            absl::StrJoin(resultIps(result), ", "));
  return result;
}

absl::Status CniManager::del(const CniAttachment& a, const json& prev_result) {
  BERTH_RETURN_IF_ERROR(validateAttachment(a, /*need_netns=*/false));
  std::shared_ptr<const CniNetworkConfig> net = network();
  if (net == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "pod ", a.container_id, ": no CNI network to detach from: ", readiness().message));
  }
  json caps = ci::capabilityArgs(a, /*strict=*/false).value_or(json::object());
  absl::Status st = delList(options_, *net, a, caps, prev_result);
  if (st.ok()) {
    logging::get("cni")->info("pod {}: detached from network \"{}\"", a.container_id, net->name);
  }
  return st;
}

absl::Status CniManager::check(const CniAttachment& a, const json& prev_result) {
  BERTH_RETURN_IF_ERROR(validateAttachment(a, /*need_netns=*/true));
  std::shared_ptr<const CniNetworkConfig> net = network();
  if (net == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("pod ", a.container_id, ": no CNI network to check: ", readiness().message));
  }
  if (!ci::versionAtLeast(net->cni_version, 0, 4, 0)) {
    return absl::FailedPreconditionError(absl::StrCat("network \"", net->name, "\" has cniVersion ",
                                                      net->cni_version, ", which has no CHECK"));
  }
  if (auto off = net->list.find("disableCheck");
      off != net->list.end() && off->is_boolean() && off->get<bool>()) {
    return absl::OkStatus();
  }
  if (prev_result.is_null()) {
    return absl::InvalidArgumentError(
        absl::StrCat("pod ", a.container_id, ": CHECK needs the result of ADD"));
  }
  json caps = ci::capabilityArgs(a, /*strict=*/false).value_or(json::object());
  const size_t n = net->list["plugins"].size();
  for (size_t i = 0; i < n; ++i) {
    absl::StatusOr<json> r = invokePlugin(options_, *net, i, "CHECK", a, caps, prev_result);
    if (!r.ok()) return r.status();
  }
  return absl::OkStatus();
}

}  // namespace berth::network
