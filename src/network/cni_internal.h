// Pieces of the CNI client shared between its files (not part of the network API).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "network/cni.h"
#include "nlohmann/json.hpp"

namespace berth::network::cni_internal {

// --- Configuration (cni_config.cc) ---

// True for the versions whose configs we run: 0.3.0, 0.3.1, 0.4.0, 1.0.0.
bool supportedVersion(const std::string& version);

// True when dotted version `v` is at least major.minor.patch (false when `v` does not parse).
bool versionAtLeast(const std::string& v, int major, int minor, int patch);

// Parses one config file (`path` decides .conflist vs single plugin) into a normalised list.
// InvalidArgument saying what is wrong.
[[nodiscard]] absl::StatusOr<CniNetworkConfig> parseConfigFile(const std::string& path,
                                                               const std::string& text);

struct ConfDirScan {
  std::shared_ptr<const CniNetworkConfig> network;           // nullptr when no file is usable
  std::vector<std::pair<std::string, std::string>> skipped;  // (file, why) before the winner
};

// libcni's rules: *.conflist, *.conf, *.json in name order; the first valid file wins.
ConfDirScan scanConfDir(const std::string& dir);

// The first executable `<dir>/<type>` in bin_dirs; "" when there is none.
std::string findPlugin(const std::vector<std::string>& bin_dirs, const std::string& type);

// The plugin types a network needs binaries for (each plugin's "type" and its "ipam" type).
std::vector<std::string> requiredPlugins(const nlohmann::json& list);

// `plugin "x" not found in a:b` (the FailedPrecondition text of a missing binary).
std::string pluginNotFound(const std::string& type, const std::vector<std::string>& bin_dirs);

// --- Capabilities and results (cni_args.cc) ---

// The runtime values of the capabilities berth knows, keyed by capability name. With `strict`,
// a bad bandwidth annotation is InvalidArgument; without (for DEL), it is left out.
[[nodiscard]] absl::StatusOr<nlohmann::json> capabilityArgs(const CniAttachment& a, bool strict);

// A bandwidth annotation value (a Kubernetes quantity) in bits per second, rounded up as
// Quantity.Value() does; InvalidArgument outside 1k..1P or when it does not parse.
[[nodiscard]] absl::StatusOr<uint64_t> parseBandwidth(const std::string& quantity);

// CNI_ARGS for the attachment.
std::string cniArgs(const CniAttachment& a);

// JSON text that never throws (invalid UTF-8 is replaced).
std::string dumpJson(const nlohmann::json& j);

// --- Running one plugin (cni_exec.cc) ---

struct PluginCall {
  std::string type;              // the plugin type (names it in errors)
  std::string network;           // the network name (names it in errors)
  std::string command;           // ADD, DEL or CHECK (for logs)
  std::string container_id;      // the pod sandbox id (for logs)
  std::string binary;            // absolute path
  std::vector<std::string> env;  // NAME=value, exactly what the plugin sees
  std::string config;            // stdin
  absl::Duration timeout;
};

// Runs the plugin and returns its stdout as JSON (null when empty). A failure is the plugin's
// error mapped to a status (see CniManager::add), DeadlineExceeded after a timeout.
[[nodiscard]] absl::StatusOr<nlohmann::json> runPlugin(const PluginCall& call);

// The status for a CNI error object {"code","msg","details"} from `call`'s plugin.
absl::Status pluginErrorStatus(const PluginCall& call, const nlohmann::json& error);

}  // namespace berth::network::cni_internal
