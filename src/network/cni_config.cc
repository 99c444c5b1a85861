// CNI configuration: reading and validating config files, choosing one from the config
// directory as libcni does, finding plugin binaries, and the built-in default network.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/json_text.h"
#include "common/fs.h"
#include "common/status.h"
#include "network/cni.h"
#include "network/cni_internal.h"

namespace berth::network {
namespace cni_internal {
namespace {

using nlohmann::json;

// Config files bigger than this are not configs anyone meant.
constexpr uintmax_t kMaxConfigBytes = 1 << 20;

// Network names the spec allows: [a-zA-Z0-9][a-zA-Z0-9_.-]*.
bool validNetworkName(const std::string& name) {
  if (name.empty() || !std::isalnum(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
  });
}

// A plugin type names a file in a bin dir: no path separators, no dot entries.
bool validPluginType(const std::string& type) {
  return !type.empty() && type != "." && type != ".." && type.find('/') == std::string::npos;
}

std::string stringField(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

absl::Status validateList(const json& list) {
  if (!list.contains("name") || !list["name"].is_string()) {
    return absl::InvalidArgumentError("no \"name\"");
  }
  std::string name = list["name"].get<std::string>();
  if (!validNetworkName(name)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid network name \"", name, "\""));
  }
  if (!list.contains("cniVersion") || !list["cniVersion"].is_string()) {
    return absl::InvalidArgumentError("no \"cniVersion\"");
  }
  std::string version = list["cniVersion"].get<std::string>();
  if (!supportedVersion(version)) {
    return absl::InvalidArgumentError(absl::StrCat("unsupported cniVersion \"", version, "\""));
  }
  auto plugins = list.find("plugins");
  if (plugins == list.end() || !plugins->is_array() || plugins->empty()) {
    return absl::InvalidArgumentError("no \"plugins\"");
  }
  for (size_t i = 0; i < plugins->size(); ++i) {
    const json& p = (*plugins)[i];
    if (!p.is_object()) {
      return absl::InvalidArgumentError(absl::StrCat("plugin ", i, " is not an object"));
    }
    std::string type = stringField(p, "type");
    if (!validPluginType(type)) {
      return absl::InvalidArgumentError(
          absl::StrCat("plugin ", i, " has no valid \"type\" (\"", type, "\")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

bool supportedVersion(const std::string& version) {
  return version == "1.0.0" || version == "0.4.0" || version == "0.3.1" || version == "0.3.0";
}

bool versionAtLeast(const std::string& v, int major, int minor, int patch) {
  int a = 0, b = 0, c = 0;
  char tail = 0;
  if (std::sscanf(v.c_str(), "%d.%d.%d%c", &a, &b, &c, &tail) != 3) return false;
  if (a != major) return a > major;
  if (b != minor) return b > minor;
  return c >= patch;
}

absl::StatusOr<CniNetworkConfig> parseConfigFile(const std::string& path, const std::string& text) {
  constexpr size_t kMaxConfigBytes = 1 << 20;
  BERTH_ASSIGN_OR_RETURN(json j, parseUntrustedJson(text, "the file", kMaxConfigBytes));
  if (!j.is_object()) return absl::InvalidArgumentError("not a JSON object");

  // A single-plugin config is wrapped into a list of one; a .conf/.json that is really a list
  // (has "plugins" but no "type") is taken as one.
  json list;
  if (absl::EndsWith(path, ".conflist") || (!j.contains("type") && j.contains("plugins"))) {
    list = std::move(j);
  } else {
    if (stringField(j, "type").empty()) return absl::InvalidArgumentError("no \"type\"");
    list = json::object();
    if (j.contains("cniVersion")) list["cniVersion"] = j["cniVersion"];
    if (j.contains("name")) list["name"] = j["name"];
    j.erase("cniVersion");
    j.erase("name");
    list["plugins"] = json::array({std::move(j)});
  }
  BERTH_RETURN_IF_ERROR(validateList(list));

  CniNetworkConfig config;
  config.name = list["name"].get<std::string>();
  config.cni_version = list["cniVersion"].get<std::string>();
  config.source = path;
  config.list = std::move(list);
  return config;
}

ConfDirScan scanConfDir(const std::string& dir) {
  namespace fs = std::filesystem;
  ConfDirScan scan;
  std::vector<std::string> files;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (!absl::EndsWith(name, ".conflist") && !absl::EndsWith(name, ".conf") &&
        !absl::EndsWith(name, ".json")) {
      continue;
    }
    std::error_code st_ec;
    if (!fs::is_regular_file(it->path(), st_ec)) continue;  // follows symlinks
    files.push_back(it->path().string());
  }
  std::sort(files.begin(), files.end());

  for (const std::string& file : files) {
    std::error_code size_ec;
    uintmax_t size = fs::file_size(file, size_ec);
    if (!size_ec && size > kMaxConfigBytes) {
      scan.skipped.emplace_back(file, absl::StrCat("too large (", size, " bytes)"));
      continue;
    }
    absl::StatusOr<std::string> text = readFile(file);
    if (!text.ok()) {
      scan.skipped.emplace_back(file, std::string(text.status().message()));
      continue;
    }
    absl::StatusOr<CniNetworkConfig> config = parseConfigFile(file, *text);
    if (!config.ok()) {
      scan.skipped.emplace_back(file, std::string(config.status().message()));
      continue;
    }
    scan.network = std::make_shared<const CniNetworkConfig>(*std::move(config));
    break;
  }
  return scan;
}

std::string findPlugin(const std::vector<std::string>& bin_dirs, const std::string& type) {
  if (!validPluginType(type)) return "";
  for (const std::string& dir : bin_dirs) {
    if (dir.empty()) continue;
    std::string path = absl::StrCat(dir, "/", type);
    if (isExecutableFile(path)) return path;
  }
  return "";
}

std::vector<std::string> requiredPlugins(const json& list) {
  std::vector<std::string> types;
  auto add = [&types](const std::string& t) {
    if (!t.empty() && std::find(types.begin(), types.end(), t) == types.end()) types.push_back(t);
  };
  auto plugins = list.find("plugins");
  if (plugins == list.end() || !plugins->is_array()) return types;
  for (const json& p : *plugins) {
    if (!p.is_object()) continue;
    add(stringField(p, "type"));
    auto ipam = p.find("ipam");
    if (ipam != p.end() && ipam->is_object()) add(stringField(*ipam, "type"));
  }
  return types;
}

std::string pluginNotFound(const std::string& type, const std::vector<std::string>& bin_dirs) {
  return absl::StrCat("plugin \"", type, "\" not found in ", absl::StrJoin(bin_dirs, ":"));
}

}  // namespace cni_internal

nlohmann::json CniManager::defaultConfList(const std::string& bridge,
                                           const std::vector<std::string>& subnets) {
  using nlohmann::json;
  json ranges = json::array();
  json routes = json::array();
  bool v4 = false, v6 = false;
  for (const std::string& subnet : subnets) {
    ranges.push_back(json::array({json{{"subnet", subnet}}}));
    bool is_v6 = subnet.find(':') != std::string::npos;
    if (!is_v6 && !v4) routes.push_back(json{{"dst", "0.0.0.0/0"}});
    if (is_v6 && !v6) routes.push_back(json{{"dst", "::/0"}});
    (is_v6 ? v6 : v4) = true;
  }
  json ipam = {
      {"type", "host-local"},
      {"ranges", std::move(ranges)},
      {"routes", std::move(routes)},
  };
  json bridge_plugin = {
      {"type", "bridge"}, {"bridge", bridge},    {"isGateway", true},
      {"ipMasq", true},   {"hairpinMode", true}, {"ipam", std::move(ipam)},
  };
  json portmap = {{"type", "portmap"}, {"capabilities", {{"portMappings", true}}}};
  return json{
      {"cniVersion", "1.0.0"},
      {"name", "berth"},
      {"plugins", json::array({std::move(bridge_plugin), std::move(portmap)})},
  };
}

}  // namespace berth::network

namespace berth::network {

std::vector<std::string> CniManager::checkSetup(const CniOptions& options,
                                                std::vector<std::string>* notes) {
  std::vector<std::string> problems;
  cni_internal::ConfDirScan scan = cni_internal::scanConfDir(options.conf_dir);
  for (const auto& [file, why] : scan.skipped) {
    notes->push_back(absl::StrCat("cni.conf_dir: ", file, " is skipped: ", why));
  }
  nlohmann::json list;
  if (scan.network != nullptr) {
    list = scan.network->list;
    notes->push_back(absl::StrCat("cni: pods get network \"", list.value("name", ""), "\" from ",
                                  scan.network->source));
  } else if (options.default_network) {
    list = defaultConfList(options.default_bridge, {options.default_subnet});
    notes->push_back(absl::StrCat("cni.conf_dir ", options.conf_dir,
                                  " has no usable network config: pods get the built-in one "
                                  "(cni.default_network)"));
  } else {
    problems.push_back(absl::StrCat("cni.conf_dir ", options.conf_dir,
                                    " has no usable network config and cni.default_network is "
                                    "off: pods cannot be networked"));
    return problems;
  }
  for (const std::string& type : cni_internal::requiredPlugins(list)) {
    if (cni_internal::findPlugin(options.bin_dirs, type).empty()) {
      problems.push_back(
          absl::StrCat("cni.bin_dirs: ", cni_internal::pluginNotFound(type, options.bin_dirs)));
    }
  }
  return problems;
}

}  // namespace berth::network
