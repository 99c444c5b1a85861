// Config keys are described once in tables below; parsing, printing and JSON all walk them,
// so a key cannot be parsed but left out of the printed defaults (or the other way round).
#include "daemon/config.h"

#include <arpa/inet.h>

#include <limits>
#include <sstream>
#include <variant>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/fs.h"
#include "common/status.h"
#include "metrics/listen_address.h"
#include "oci/rlimits.h"
#include "toml++/toml.h"

namespace berth::daemon {
namespace {

using FieldRef = std::variant<std::string*, int*, int64_t*, bool*, std::vector<std::string>*>;

template <typename Owner>
struct FieldDef {
  std::string_view key;
  std::string_view comment;
  FieldRef (*ref)(Owner&);
};

struct TableDef {
  std::string_view name;  // "" for the top level
  std::vector<FieldDef<Config>> fields;
};

const std::vector<TableDef>& configTables() {
  static const std::vector<TableDef> tables = {
      {"",
       {
           {"root", "Persistent state: metadata store, images, snapshots.",
            [](Config& c) -> FieldRef { return &c.root; }},
           {"state", "Runtime state that does not survive a reboot: sockets, shim folders.",
            [](Config& c) -> FieldRef { return &c.state; }},
           {"cgroup_parent", "Cgroup (cgroupfs path) for pods that name no cgroup parent.",
            [](Config& c) -> FieldRef { return &c.cgroup_parent; }},
       }},
      {"grpc",
       {
           {"address", "Unix socket serving the CRI (created mode 0660).",
            [](Config& c) -> FieldRef { return &c.grpc.address; }},
           {"gid", "Group owning the socket (0: root only).",
            [](Config& c) -> FieldRef { return &c.grpc.gid; }},
           {"max_recv_message_size", "Largest request accepted, in bytes.",
            [](Config& c) -> FieldRef { return &c.grpc.max_recv_message_size; }},
           {"shutdown_timeout_seconds", "On SIGTERM, how long in-flight calls may finish.",
            [](Config& c) -> FieldRef { return &c.grpc.shutdown_timeout_seconds; }},
           {"max_connections",
            "CRI connections open at once; more are refused until some close (kept below the "
            "fd limit).",
            [](Config& c) -> FieldRef { return &c.grpc.max_connections; }},
           {"idle_connection_timeout_seconds",
            "Close a connection that has had no call for this long; its client reconnects.",
            [](Config& c) -> FieldRef { return &c.grpc.idle_connection_timeout_seconds; }},
       }},
      {"log",
       {
           {"level", "One of trace, debug, info, warn, error.",
            [](Config& c) -> FieldRef { return &c.log.level; }},
           {"format", "text or json (one JSON object per line).",
            [](Config& c) -> FieldRef { return &c.log.format; }},
       }},
      {"image",
       {
           {"max_concurrent_downloads", "Layers of one pull downloaded at the same time.",
            [](Config& c) -> FieldRef { return &c.image.max_concurrent_downloads; }},
           {"progress_timeout_seconds", "Abort a download when no byte arrives for this long.",
            [](Config& c) -> FieldRef { return &c.image.progress_timeout_seconds; }},
           {"connect_timeout_seconds", "Timeout for connecting to a registry.",
            [](Config& c) -> FieldRef { return &c.image.connect_timeout_seconds; }},
           {"retries", "Retries of a registry request after a transient error.",
            [](Config& c) -> FieldRef { return &c.image.retries; }},
           {"min_transfer_rate_bytes_per_second",
            "Cut a transfer slower than this on average over progress_timeout_seconds.",
            [](Config& c) -> FieldRef { return &c.image.min_transfer_rate_bytes_per_second; }},
           {"request_timeout_seconds",
            "Deadline of a manifest, config or token request, retries and mirrors included.",
            [](Config& c) -> FieldRef { return &c.image.request_timeout_seconds; }},
           {"blob_timeout_seconds", "Deadline of one layer download, retries and mirrors included.",
            [](Config& c) -> FieldRef { return &c.image.blob_timeout_seconds; }},
           {"max_layer_bytes", "Refuse a layer larger than this, compressed or uncompressed.",
            [](Config& c) -> FieldRef { return &c.image.max_layer_bytes; }},
           {"max_layer_entries", "Refuse a layer with more files than this.",
            [](Config& c) -> FieldRef { return &c.image.max_layer_entries; }},
           {"config_path",
            "Registry host directories as containerd's (<host>/hosts.toml, _default; several separated "
            "by ':', the first with the host wins), read at "
            "each pull; a host's folder wins over its [image.registries] keys. Empty: none.",
            [](Config& c) -> FieldRef { return &c.image.config_path; }},
           {"pinned_images",
            "Images (references, or globs of them) reported pinned, so that kubelet's image "
            "garbage collection keeps them.",
            [](Config& c) -> FieldRef { return &c.image.pinned_images; }},
       }},
      {"cni",
       {
           {"conf_dir", "CNI network configs; the alphabetically first usable one is used.",
            [](Config& c) -> FieldRef { return &c.cni.conf_dir; }},
           {"bin_dirs", "Where CNI plugins are searched, in order.",
            [](Config& c) -> FieldRef { return &c.cni.bin_dirs; }},
           {"default_network",
            "Without a config in conf_dir, use the built-in bridge network (NAT to the outside).",
            [](Config& c) -> FieldRef { return &c.cni.default_network; }},
           {"default_bridge", "Bridge of the built-in network.",
            [](Config& c) -> FieldRef { return &c.cni.default_bridge; }},
           {"default_subnet", "Subnet of the built-in network (host-local IPAM).",
            [](Config& c) -> FieldRef { return &c.cni.default_subnet; }},
           {"plugin_timeout_seconds", "A CNI plugin running longer is killed.",
            [](Config& c) -> FieldRef { return &c.cni.plugin_timeout_seconds; }},
       }},
      {"cri",
       {
           {"sandbox_image", "Pause image for pods; empty runs the built-in berth-pause.",
            [](Config& c) -> FieldRef { return &c.cri.sandbox_image; }},
           {"default_runtime_handler", "Handler used when a pod names none.",
            [](Config& c) -> FieldRef { return &c.cri.default_runtime_handler; }},
           {"stats_collect_period_seconds",
            "How often writable layers, network counters and the image filesystem are measured.",
            [](Config& c) -> FieldRef { return &c.cri.stats_collect_period_seconds; }},
           {"stats_max_age_milliseconds",
            "CPU, memory and process counts in stats answers are at most this old.",
            [](Config& c) -> FieldRef { return &c.cri.stats_max_age_milliseconds; }},
           {"max_container_log_line_size",
            "Bytes of a container log line before it is split into partial entries.",
            [](Config& c) -> FieldRef { return &c.cri.max_container_log_line_size; }},
           {"pids_limit", "Pids limit of a container that sets none (0: no limit).",
            [](Config& c) -> FieldRef { return &c.cri.pids_limit; }},
           {"cdi_spec_dirs",
            "Directories of CDI spec files (JSON or YAML), read at each CreateContainer that asks "
            "for CDI devices; a device in a later directory wins.",
            [](Config& c) -> FieldRef { return &c.cri.cdi_spec_dirs; }},
           {"criu_path", "CRIU for CheckpointContainer: a name looked up in PATH, or a path.",
            [](Config& c) -> FieldRef { return &c.cri.criu_path; }},
       }},
      {"metrics",
       {
           {"address",
            "Serve Prometheus metrics (GET /metrics) on this host:port, e.g. \"127.0.0.1:9101\"; "
            "empty: off.",
            [](Config& c) -> FieldRef { return &c.metrics.address; }},
       }},
      {"streaming",
       {
           {"address", "IP address of the streaming server (exec, attach, port-forward URLs).",
            [](Config& c) -> FieldRef { return &c.streaming.address; }},
           {"port", "Its TCP port; 0 picks a free one.",
            [](Config& c) -> FieldRef { return &c.streaming.port; }},
           {"token_ttl_seconds", "A streaming URL nobody used expires after this long.",
            [](Config& c) -> FieldRef { return &c.streaming.token_ttl_seconds; }},
           {"tls_cert_file", "PEM certificate (chain): serve HTTPS. Needs tls_key_file.",
            [](Config& c) -> FieldRef { return &c.streaming.tls_cert_file; }},
           {"tls_key_file", "PEM private key of tls_cert_file.",
            [](Config& c) -> FieldRef { return &c.streaming.tls_key_file; }},
           {"upgrade_timeout_seconds",
            "A connection must present a valid URL within this time (TLS handshake included).",
            [](Config& c) -> FieldRef { return &c.streaming.upgrade_timeout_seconds; }},
           {"max_pending_per_peer",
            "Connections one client (an address; a uid on this host) may open before they "
            "present a valid URL; more are refused.",
            [](Config& c) -> FieldRef { return &c.streaming.max_pending_per_peer; }},
       }},
  };
  return tables;
}

const std::vector<FieldDef<RuntimeHandler>>& runtimeFields() {
  static const std::vector<FieldDef<RuntimeHandler>> fields = {
      {"runtime_type", "Runtime type reported in verbose info.",
       [](RuntimeHandler& r) -> FieldRef { return &r.runtime_type; }},
      {"runtime_path", "OCI runtime binary (runc, crun, or an absolute path).",
       [](RuntimeHandler& r) -> FieldRef { return &r.runtime_path; }},
      {"runtime_root", "The runtime's --root; empty means <state>/runtime/<handler>.",
       [](RuntimeHandler& r) -> FieldRef { return &r.runtime_root; }},
      {"sandboxer", "Sandbox controller running this handler's pods.",
       [](RuntimeHandler& r) -> FieldRef { return &r.sandboxer; }},
      {"exec",
       "Who starts execs: \"runtime\" (runtime exec) or \"monitor\" (berth-shim, falling "
       "back to the runtime for what it cannot do exactly as runc would).",
       [](RuntimeHandler& r) -> FieldRef { return &r.exec; }},
      {"default_ulimits",
       "Process rlimits of the handler's containers, as CRI-O's: \"nofile=1024:2048\" "
       "(soft:hard) or \"core=0\"; -1 is unlimited.",
       [](RuntimeHandler& r) -> FieldRef { return &r.default_ulimits; }},
  };
  return fields;
}

const std::vector<FieldDef<RegistryConfig>>& registryFields() {
  static const std::vector<FieldDef<RegistryConfig>> fields = {
      {"mirrors", "Endpoints tried in order before the registry itself (http:// or https://).",
       [](RegistryConfig& r) -> FieldRef { return &r.mirrors; }},
      {"ca_file", "CA bundle for the registry's TLS certificate.",
       [](RegistryConfig& r) -> FieldRef { return &r.ca_file; }},
      {"insecure_skip_verify", "Do not verify TLS certificates (never in production).",
       [](RegistryConfig& r) -> FieldRef { return &r.insecure_skip_verify; }},
      {"plain_http", "Reach the registry itself over plain HTTP.",
       [](RegistryConfig& r) -> FieldRef { return &r.plain_http; }},
      {"username", "Credentials used when a pull request brings none.",
       [](RegistryConfig& r) -> FieldRef { return &r.username; }},
      {"password", "Password for username.",
       [](RegistryConfig& r) -> FieldRef { return &r.password; }},
      {"auth", "base64 of user:password, instead of username and password.",
       [](RegistryConfig& r) -> FieldRef { return &r.auth; }},
      {"identity_token", "Refresh token for the registry's token service.",
       [](RegistryConfig& r) -> FieldRef { return &r.identity_token; }},
  };
  return fields;
}

std::string join(std::string_view a, std::string_view b) {
  std::string out(a);
  if (!out.empty()) out.push_back('.');
  out.append(b);
  return out;
}

absl::Status setField(const FieldRef& ref, const toml::node& node, const std::string& key) {
  if (auto* s = std::get_if<std::string*>(&ref)) {
    const auto* v = node.as_string();
    if (v == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("config key \"", key, "\" must be a string"));
    }
    **s = v->get();
    return absl::OkStatus();
  }
  if (auto* b = std::get_if<bool*>(&ref)) {
    const auto* v = node.as_boolean();
    if (v == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("config key \"", key, "\" must be true or false"));
    }
    **b = v->get();
    return absl::OkStatus();
  }
  if (auto* list = std::get_if<std::vector<std::string>*>(&ref)) {
    const auto* arr = node.as_array();
    if (arr == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("config key \"", key, "\" must be an array of strings"));
    }
    (*list)->clear();
    for (const auto& item : *arr) {
      const auto* str = item.as_string();
      if (str == nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat("config key \"", key, "\" must be an array of strings"));
      }
      (*list)->push_back(str->get());
    }
    return absl::OkStatus();
  }
  const auto* v = node.as_integer();
  if (v == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("config key \"", key, "\" must be an integer"));
  }
  int64_t x = v->get();
  if (auto* wide = std::get_if<int64_t*>(&ref)) {
    **wide = x;
    return absl::OkStatus();
  }
  if (x < std::numeric_limits<int>::min() || x > std::numeric_limits<int>::max()) {
    return absl::InvalidArgumentError(absl::StrCat("config key \"", key, "\" is out of range"));
  }
  *std::get<int*>(ref) = static_cast<int>(x);
  return absl::OkStatus();
}

template <typename Owner>
absl::Status applyFields(const toml::table& table, const std::vector<FieldDef<Owner>>& fields,
                         Owner& owner, std::string_view prefix,
                         const std::vector<std::string_view>& subtables) {
  for (const auto& [k, node] : table) {
    std::string_view key = k.str();
    bool done = false;
    for (const auto& f : fields) {
      if (f.key == key) {
        BERTH_RETURN_IF_ERROR(setField(f.ref(owner), node, join(prefix, key)));
        done = true;
        break;
      }
    }
    for (auto sub : subtables) done = done || sub == key;
    if (!done) {
      return absl::InvalidArgumentError(
          absl::StrCat("config key \"", join(prefix, key), "\" is unknown"));
    }
  }
  return absl::OkStatus();
}

nlohmann::json jsonValue(const FieldRef& ref) {
  if (auto* s = std::get_if<std::string*>(&ref)) return **s;
  if (auto* b = std::get_if<bool*>(&ref)) return **b;
  if (auto* l = std::get_if<std::vector<std::string>*>(&ref)) return **l;
  if (auto* wide = std::get_if<int64_t*>(&ref)) return **wide;
  return *std::get<int*>(ref);
}

// TOML literal: JSON's string escapes, booleans, integers and arrays are valid TOML.
std::string renderValue(const FieldRef& ref) {
  return jsonValue(ref).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

absl::Status checkAbsolute(const std::string& key, const std::string& path) {
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("config key \"", key, "\" must be an absolute path, got \"", path, "\""));
  }
  return absl::OkStatus();
}

absl::Status badValue(const std::string& key, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat("config key \"", key, "\" ", why));
}

}  // namespace

absl::StatusOr<Config> parseConfig(const std::string& toml_text, const std::string& source_name) {
  toml::table doc;
  try {
    doc = toml::parse(toml_text, source_name);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    return absl::InvalidArgumentError(absl::StrCat("config ", source_name, ":", where.line, ":",
                                                   where.column, ": ", std::string(e.description())));
  }
  Config config;
  const auto& tables = configTables();
  std::vector<std::string_view> top_subtables;
  for (const auto& t : tables) {
    if (!t.name.empty()) top_subtables.push_back(t.name);
  }
  BERTH_RETURN_IF_ERROR(applyFields(doc, tables[0].fields, config, "", top_subtables));
  for (const auto& t : tables) {
    if (t.name.empty()) continue;
    const toml::node* node = doc.get(t.name);
    if (node == nullptr) continue;
    const toml::table* sub = node->as_table();
    if (sub == nullptr) return badValue(std::string(t.name), "must be a table");
    std::vector<std::string_view> nested;
    if (t.name == "cri") nested.push_back("runtimes");
    if (t.name == "image") nested.push_back("registries");
    BERTH_RETURN_IF_ERROR(applyFields(*sub, t.fields, config, t.name, nested));
    if (t.name == "image") {
      const toml::node* regs = sub->get("registries");
      if (regs == nullptr) continue;
      if (!regs->is_table()) return badValue("image.registries", "must be a table of registries");
      for (const auto& [host, reg_node] : *regs->as_table()) {
        std::string prefix = "image.registries.\"" + std::string(host.str()) + "\"";
        if (!reg_node.is_table()) return badValue(prefix, "must be a table");
        RegistryConfig reg;
        BERTH_RETURN_IF_ERROR(
            applyFields(*reg_node.as_table(), registryFields(), reg, prefix, {}));
        config.image.registries[std::string(host.str())] = reg;
      }
      continue;
    }
    if (t.name != "cri") continue;
    const toml::node* rt = sub->get("runtimes");
    if (rt == nullptr) continue;
    if (!rt->is_table()) return badValue("cri.runtimes", "must be a table of runtime handlers");
    for (const auto& [name, handler_node] : *rt->as_table()) {
      std::string prefix = "cri.runtimes." + std::string(name.str());
      if (!handler_node.is_table()) return badValue(prefix, "must be a table");
      // A handler named in the file starts from the built-in one of that name, if any.
      RuntimeHandler handler = config.cri.runtimes[std::string(name.str())];
      BERTH_RETURN_IF_ERROR(
          applyFields(*handler_node.as_table(), runtimeFields(), handler, prefix, {}));
      config.cri.runtimes[std::string(name.str())] = handler;
    }
  }
  BERTH_RETURN_IF_ERROR(validateConfig(config));
  // Where each value came from: the file when it names the key (or the table holding it).
  const nlohmann::json flat = configToJson(config).flatten();
  for (const auto& [pointer, value] : flat.items()) {
    const toml::node* n = &doc;
    for (absl::string_view part : absl::StrSplit(pointer, '/', absl::SkipEmpty())) {
      if (n == nullptr || !n->is_table()) break;  // inside an array: the file gave the array
      std::string key(part);
      for (size_t at; (at = key.find("~1")) != std::string::npos;) key.replace(at, 2, "/");
      for (size_t at; (at = key.find("~0")) != std::string::npos;) key.replace(at, 2, "~");
      n = n->as_table()->get(key);
    }
    config.sources[pointer] = n != nullptr ? source_name : "default";
  }
  return config;
}

absl::StatusOr<Config> loadConfig(const std::string& path, bool must_exist) {
  auto text = readFile(path);
  if (!text.ok()) {
    if (absl::IsNotFound(text.status()) && !must_exist) {
      Config config;
      BERTH_RETURN_IF_ERROR(validateConfig(config));
      const nlohmann::json flat = configToJson(config).flatten();
      for (const auto& [pointer, value] : flat.items()) config.sources[pointer] = "default";
      return config;
    }
    return annotate(text.status(), "read config");
  }
  return parseConfig(*text, path);
}

absl::Status validateConfig(const Config& c) {
  BERTH_RETURN_IF_ERROR(checkAbsolute("root", c.root));
  BERTH_RETURN_IF_ERROR(checkAbsolute("state", c.state));
  BERTH_RETURN_IF_ERROR(checkAbsolute("cgroup_parent", c.cgroup_parent));
  if (c.cgroup_parent.find("..") != std::string::npos) {
    return badValue("cgroup_parent", "must not contain \"..\"");
  }
  BERTH_RETURN_IF_ERROR(checkAbsolute("grpc.address", c.grpc.address));
  if (c.grpc.address.size() >= 108) {
    return badValue("grpc.address", "is longer than a unix socket path may be (107 bytes)");
  }
  if (c.grpc.gid < 0) return badValue("grpc.gid", "must not be negative");
  if (c.grpc.max_recv_message_size < 4096) {
    return badValue("grpc.max_recv_message_size", "must be at least 4096");
  }
  if (c.grpc.shutdown_timeout_seconds < 0 || c.grpc.shutdown_timeout_seconds > 3600) {
    return badValue("grpc.shutdown_timeout_seconds", "must be between 0 and 3600");
  }
  if (c.grpc.max_connections < 1 || c.grpc.max_connections > 1048576) {
    return badValue("grpc.max_connections", "must be between 1 and 1048576");
  }
  if (c.grpc.idle_connection_timeout_seconds < 1 ||
      c.grpc.idle_connection_timeout_seconds > 86400) {
    return badValue("grpc.idle_connection_timeout_seconds", "must be between 1 and 86400");
  }
  static constexpr std::string_view kLevels[] = {"trace", "debug", "info", "warn", "error"};
  bool level_ok = false;
  for (auto l : kLevels) level_ok = level_ok || l == c.log.level;
  if (!level_ok) {
    return badValue("log.level", absl::StrCat("must be one of trace, debug, info, warn, error; got \"",
                                              c.log.level, "\""));
  }
  if (c.log.format != "text" && c.log.format != "json") {
    return badValue("log.format", absl::StrCat("must be text or json; got \"", c.log.format, "\""));
  }
  if (c.cni.conf_dir.empty() || c.cni.conf_dir[0] != '/') {
    return badValue("cni.conf_dir", "must be an absolute path");
  }
  for (const auto& d : c.cni.bin_dirs) {
    if (d.empty() || d[0] != '/') return badValue("cni.bin_dirs", "must be absolute paths");
  }
  if (c.cni.default_bridge.empty() || c.cni.default_bridge.size() > 15) {
    return badValue("cni.default_bridge", "must be 1 to 15 characters (a Linux interface name)");
  }
  if (c.cni.plugin_timeout_seconds < 1) return badValue("cni.plugin_timeout_seconds", "must be at least 1");
  if (c.cri.stats_collect_period_seconds < 1) {
    return badValue("cri.stats_collect_period_seconds", "must be at least 1");
  }
  if (c.cri.stats_max_age_milliseconds < 100 || c.cri.stats_max_age_milliseconds > 60'000) {
    return badValue("cri.stats_max_age_milliseconds", "must be between 100 and 60000");
  }
  if (c.cri.max_container_log_line_size < 256 || c.cri.max_container_log_line_size > (1 << 20)) {
    return badValue("cri.max_container_log_line_size", "must be between 256 and 1048576");
  }
  if (c.image.max_concurrent_downloads < 1 || c.image.max_concurrent_downloads > 64) {
    return badValue("image.max_concurrent_downloads", "must be between 1 and 64");
  }
  if (c.image.progress_timeout_seconds < 1) {
    return badValue("image.progress_timeout_seconds", "must be at least 1");
  }
  if (c.image.connect_timeout_seconds < 1) {
    return badValue("image.connect_timeout_seconds", "must be at least 1");
  }
  if (c.image.retries < 0 || c.image.retries > 20) {
    return badValue("image.retries", "must be between 0 and 20");
  }
  if (c.image.min_transfer_rate_bytes_per_second < 1) {
    return badValue("image.min_transfer_rate_bytes_per_second", "must be at least 1");
  }
  if (c.image.request_timeout_seconds < 1) {
    return badValue("image.request_timeout_seconds", "must be at least 1");
  }
  if (c.image.blob_timeout_seconds < 1) {
    return badValue("image.blob_timeout_seconds", "must be at least 1");
  }
  if (c.image.max_layer_bytes < 1) return badValue("image.max_layer_bytes", "must be at least 1");
  if (c.image.max_layer_entries < 1) {
    return badValue("image.max_layer_entries", "must be at least 1");
  }
  if (c.cri.pids_limit < 0) return badValue("cri.pids_limit", "must not be negative");
  for (const auto& [host, reg] : c.image.registries) {
    std::string prefix = absl::StrCat("image.registries.\"", host, "\"");
    if (host.empty()) return badValue(prefix, "has an empty registry name");
    for (const auto& m : reg.mirrors) {
      if (!absl::StartsWith(m, "http://") && !absl::StartsWith(m, "https://")) {
        return badValue(prefix + ".mirrors",
                        absl::StrCat("entry \"", m, "\" must start with http:// or https://"));
      }
    }
    if (!reg.ca_file.empty()) BERTH_RETURN_IF_ERROR(checkAbsolute(prefix + ".ca_file", reg.ca_file));
  }
  if (!c.metrics.address.empty()) {
    if (auto addr = metrics::parseListenAddress(c.metrics.address); !addr.ok()) {
      return badValue("metrics.address", std::string(addr.status().message()));
    }
  }
  {
    in6_addr scratch{};
    if (::inet_pton(AF_INET, c.streaming.address.c_str(), &scratch) != 1 &&
        ::inet_pton(AF_INET6, c.streaming.address.c_str(), &scratch) != 1) {
      return badValue("streaming.address", "must be an IPv4 or IPv6 address");
    }
  }
  if (c.streaming.port < 0 || c.streaming.port > 65535) {
    return badValue("streaming.port", "must be between 0 and 65535");
  }
  if (c.streaming.token_ttl_seconds < 1) {
    return badValue("streaming.token_ttl_seconds", "must be at least 1");
  }
  if (c.streaming.upgrade_timeout_seconds < 1 || c.streaming.upgrade_timeout_seconds > 300) {
    return badValue("streaming.upgrade_timeout_seconds", "must be between 1 and 300");
  }
  if (c.streaming.max_pending_per_peer < 1 || c.streaming.max_pending_per_peer > 1024) {
    return badValue("streaming.max_pending_per_peer", "must be between 1 and 1024");
  }
  if (c.streaming.tls_cert_file.empty() != c.streaming.tls_key_file.empty()) {
    return badValue("streaming.tls_cert_file",
                    "tls_cert_file and tls_key_file must be set together");
  }
  if (!c.streaming.tls_cert_file.empty()) {
    BERTH_RETURN_IF_ERROR(checkAbsolute("streaming.tls_cert_file", c.streaming.tls_cert_file));
    BERTH_RETURN_IF_ERROR(checkAbsolute("streaming.tls_key_file", c.streaming.tls_key_file));
  }
  if (c.cri.runtimes.empty()) return badValue("cri.runtimes", "must name at least one handler");
  if (!c.cri.runtimes.contains(c.cri.default_runtime_handler)) {
    return badValue("cri.default_runtime_handler",
                    absl::StrCat("names \"", c.cri.default_runtime_handler,
                                 "\", which is not in cri.runtimes"));
  }
  for (const auto& [name, h] : c.cri.runtimes) {
    std::string prefix = absl::StrCat("cri.runtimes.", name);
    if (name.empty()) return badValue(prefix, "has an empty handler name");
    if (h.runtime_path.empty()) return badValue(prefix + ".runtime_path", "must be set");
    if (h.exec != "runtime" && h.exec != "monitor") {
      return badValue(prefix + ".exec", "must be \"runtime\" or \"monitor\"");
    }
    if (auto limits = oci::parseUlimits(h.default_ulimits); !limits.ok()) {
      return badValue(prefix + ".default_ulimits", std::string(limits.status().message()));
    }
    if (h.sandboxer != "podsandbox") {
      return badValue(prefix + ".sandboxer",
                      absl::StrCat("names unknown sandbox controller \"", h.sandboxer,
                                   "\" (known: podsandbox)"));
    }
    if (!h.runtime_root.empty()) {
      BERTH_RETURN_IF_ERROR(checkAbsolute(prefix + ".runtime_root", h.runtime_root));
    }
  }
  return absl::OkStatus();
}

std::string renderConfig(const Config& config) {
  Config c = config;  // field accessors take a mutable reference
  std::ostringstream out;
  out << "# berth configuration. Every key is optional; the values below are the built-in\n"
      << "# defaults. berthd reads /etc/berth/config.toml unless --config names another file.\n";
  for (const auto& t : configTables()) {
    out << "\n";
    if (!t.name.empty()) out << "[" << t.name << "]\n";
    for (const auto& f : t.fields) {
      out << "# " << f.comment << "\n" << f.key << " = " << renderValue(f.ref(c)) << "\n";
    }
  }
  out << "\n# Registries, keyed by the domain in image references. For example:\n"
      << "# [image.registries.\"registry.k8s.io\"]\n";
  for (const auto& f : registryFields()) out << "# " << f.key << ": " << f.comment << "\n";
  for (auto& [host, reg] : c.image.registries) {
    out << "\n[image.registries." << nlohmann::json(host).dump() << "]\n";
    for (const auto& f : registryFields()) {
      out << "# " << f.comment << "\n" << f.key << " = " << renderValue(f.ref(reg)) << "\n";
    }
  }
  for (auto& [name, handler] : c.cri.runtimes) {
    out << "\n# Runtime handler \"" << name << "\" (a pod's runtime_handler selects it).\n"
        << "[cri.runtimes." << name << "]\n";
    for (const auto& f : runtimeFields()) {
      out << "# " << f.comment << "\n" << f.key << " = " << renderValue(f.ref(handler)) << "\n";
    }
  }
  return out.str();
}

nlohmann::json configToJson(const Config& config) {
  Config c = config;
  nlohmann::json j = nlohmann::json::object();
  for (const auto& t : configTables()) {
    nlohmann::json& dst = t.name.empty() ? j : j[std::string(t.name)];
    for (const auto& f : t.fields) dst[std::string(f.key)] = jsonValue(f.ref(c));
  }
  nlohmann::json& registries = j["image"]["registries"];
  registries = nlohmann::json::object();
  for (auto& [host, reg] : c.image.registries) {
    for (const auto& f : registryFields()) {
      // Secrets are never shown (verbose Status goes to anyone with socket access).
      bool secret = f.key == "password" || f.key == "auth" || f.key == "identity_token";
      nlohmann::json v = jsonValue(f.ref(reg));
      registries[host][std::string(f.key)] = secret && !v.get<std::string>().empty() ? "<redacted>" : v;
    }
  }
  nlohmann::json& runtimes = j["cri"]["runtimes"];
  runtimes = nlohmann::json::object();
  for (auto& [name, handler] : c.cri.runtimes) {
    for (const auto& f : runtimeFields()) runtimes[name][std::string(f.key)] = jsonValue(f.ref(handler));
  }
  return j;
}

}  // namespace berth::daemon
