// CDI spec files: reading (JSON, or YAML through yaml-cpp), validation as the CDI library's
// specs-go and pkg/cdi validate, and the edits applied to an OCI spec.
#include "oci/cdi.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <regex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/fs.h"
#include "common/json_text.h"
#include "common/status.h"

namespace berth::oci {
namespace {

using nlohmann::json;

constexpr size_t kMaxSpecBytes = 4 << 20;

// ---- YAML to JSON, resolved as YAML 1.1 (sigs.k8s.io/yaml, which the CDI library uses) ----

json yamlScalar(const YAML::Node& n) {
  const std::string& s = n.Scalar();
  if (n.Tag() == "!") return s;  // quoted: a string
  static const std::regex kInt(R"([-+]?[0-9]+)"), kOctal(R"(0o?[0-7]+)"), kHex(R"(0x[0-9a-fA-F]+)"),
      kFloat(R"([-+]?([0-9]*\.[0-9]+|[0-9]+\.[0-9]*)([eE][-+]?[0-9]+)?)");
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  // Non-negative integers are unsigned, as nlohmann's JSON parser makes them.
  auto integer = [](int64_t v) { return v >= 0 ? json(static_cast<uint64_t>(v)) : json(v); };
  try {
    if (s.size() > 1 && s[0] == '0' && std::regex_match(s, kOctal)) {
      return integer(std::stoll(s.substr(s[1] == 'o' ? 2 : 1), nullptr, 8));
    }
    if (std::regex_match(s, kHex)) return integer(std::stoll(s, nullptr, 16));
    if (std::regex_match(s, kInt)) return integer(std::stoll(s));
    if (std::regex_match(s, kFloat)) return std::stod(s);
  } catch (const std::exception&) {
    // out of range: a string
  }
  return s;
}

json yamlToJson(const YAML::Node& n, int depth = 0) {
  if (depth > kMaxJsonDepth) throw YAML::Exception(YAML::Mark::null_mark(), "nested too deep");
  switch (n.Type()) {
    case YAML::NodeType::Scalar:
      return yamlScalar(n);
    case YAML::NodeType::Sequence: {
      json a = json::array();
      for (const YAML::Node& x : n) a.push_back(yamlToJson(x, depth + 1));
      return a;
    }
    case YAML::NodeType::Map: {
      json o = json::object();
      for (const auto& kv : n) o[kv.first.as<std::string>()] = yamlToJson(kv.second, depth + 1);
      return o;
    }
    default:
      return nullptr;
  }
}

// ---- names (pkg/parser) ----

bool alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }
bool letter(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }

// A vendor or class name: a letter first, an alphanumeric last, alphanumerics, '_', '-' and
// '.' between ('.' in a class needs spec 0.6.0).
bool validVendorOrClass(const std::string& s) {
  if (s.empty() || !letter(s.front()) || !alnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return alnum(c) || c == '_' || c == '-' || c == '.'; });
}

// A device name: alphanumerics first and last, alphanumerics, '_', '-', '.' and ':' between.
bool validDeviceName(const std::string& s) {
  if (s.empty() || !alnum(s.front()) || !alnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return alnum(c) || c == '_' || c == '-' || c == '.' || c == ':';
  });
}

const std::vector<std::string>& knownVersions() {  // newest first, as specs-go
  static const std::vector<std::string> v = {"1.1.0", "1.0.0", "0.8.0", "0.7.0", "0.6.0",
                                             "0.5.0", "0.4.0", "0.3.0", "0.2.0", "0.1.0"};
  return v;
}

const json& field(const json& o, const char* key) {
  static const json kNull;
  auto it = o.find(key);
  return it == o.end() ? kNull : *it;
}

std::vector<const json*> allEdits(const json& spec) {
  std::vector<const json*> edits;
  for (const json& d : field(spec, "devices")) edits.push_back(&field(d, "containerEdits"));
  edits.push_back(&field(spec, "containerEdits"));
  return edits;
}

// specs-go requiredVersion: the oldest version that has every field the spec uses.
std::string requiredVersion(const json& spec) {
  auto any = [&](auto pred) {
    for (const json* e : allEdits(spec)) {
      if (e->is_object() && pred(*e)) return true;
    }
    return false;
  };
  auto nonEmpty = [](const json& e, const char* k) {
    const json& v = field(e, k);
    return !v.is_null() && !v.empty();
  };
  if (any([&](const json& e) {
        const json& rdt = field(e, "intelRdt");
        return nonEmpty(e, "netDevices") ||
               (rdt.is_object() &&
                (nonEmpty(rdt, "schemata") || field(rdt, "enableMonitoring") == true));
      })) {
    return "1.1.0";
  }
  if (any([&](const json& e) {
        return nonEmpty(e, "intelRdt") || nonEmpty(e, "additionalGids");
      })) {
    return "0.7.0";
  }
  bool annotations = nonEmpty(spec, "annotations");
  for (const json& d : field(spec, "devices"))
    annotations = annotations || nonEmpty(d, "annotations");
  std::string kind = field(spec, "kind").is_string() ? spec["kind"].get<std::string>() : "";
  size_t slash = kind.find('/');
  if (annotations || (slash != std::string::npos && kind.find('.', slash) != std::string::npos)) {
    return "0.6.0";
  }
  bool digit_name = false;
  for (const json& d : field(spec, "devices")) {
    const json& name = field(d, "name");
    digit_name =
        digit_name || (name.is_string() && !name.get<std::string>().empty() &&
                       std::isdigit(static_cast<unsigned char>(name.get<std::string>()[0])));
  }
  if (digit_name || any([](const json& e) {
        for (const json& n : field(e, "deviceNodes")) {
          if (field(n, "hostPath").is_string() && !n["hostPath"].get<std::string>().empty())
            return true;
        }
        return false;
      })) {
    return "0.5.0";
  }
  if (any([](const json& e) {
        for (const json& m : field(e, "mounts")) {
          if (field(m, "type").is_string() && !m["type"].get<std::string>().empty()) return true;
        }
        return false;
      })) {
    return "0.4.0";
  }
  return "0.3.0";
}

size_t versionIndex(const std::string& v) {
  const auto& all = knownVersions();
  return static_cast<size_t>(std::find(all.begin(), all.end(), v) - all.begin());
}

const std::map<std::string, std::string>& hookNames() {  // CDI name → OCI hooks key
  static const std::map<std::string, std::string> m = {{"prestart", "prestart"},
                                                       {"createRuntime", "createRuntime"},
                                                       {"createContainer", "createContainer"},
                                                       {"startContainer", "startContainer"},
                                                       {"poststart", "poststart"},
                                                       {"poststop", "poststop"}};
  return m;
}

bool isStringArray(const json& v) {
  return v.is_null() || (v.is_array() && std::all_of(v.begin(), v.end(),
                                                     [](const json& x) { return x.is_string(); }));
}

absl::Status validateEdits(const json& e, const std::string& who) {
  if (e.is_null()) return absl::OkStatus();
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat(who, ": ", why));
  };
  if (!e.is_object()) return bad("containerEdits is not an object");
  if (!isStringArray(field(e, "env"))) return bad("env is not a list of strings");

  for (const json& kv : field(e, "env")) {
    if (kv.get<std::string>().find('=') == std::string::npos) {
      return bad(absl::StrCat("env entry \"", kv.get<std::string>(), "\" has no '='"));
    }
  }
  // Every field of the right type: what applyEdits reads must not throw.
  auto typed = [](const json& o, const char* key, auto is) {
    const json& v = field(o, key);
    return v.is_null() || is(v);
  };
  auto isString = [](const json& v) { return v.is_string(); };
  auto isInt = [](const json& v) { return v.is_number_integer(); };
  auto isUint = [](const json& v) { return v.is_number_unsigned(); };
  for (const char* list : {"deviceNodes", "mounts", "hooks", "netDevices"}) {
    if (!typed(e, list, [](const json& v) { return v.is_array(); })) {
      return bad(absl::StrCat(list, " is not a list"));
    }
  }
  for (const json& n : field(e, "deviceNodes")) {
    if (!n.is_object() || !field(n, "path").is_string() || n["path"].get<std::string>().empty()) {
      return bad("a device node without a path");
    }
    if (!typed(n, "hostPath", isString) || !typed(n, "type", isString) ||
        !typed(n, "permissions", isString) || !typed(n, "major", isInt) ||
        !typed(n, "minor", isInt) || !typed(n, "fileMode", isUint) || !typed(n, "uid", isUint) ||
        !typed(n, "gid", isUint)) {
      return bad(absl::StrCat("device node ", n["path"].get<std::string>(),
                              ": a field of the wrong type"));
    }
    std::string type = field(n, "type").is_string() ? n["type"].get<std::string>() : "";
    if (!type.empty() && type != "b" && type != "c" && type != "u" && type != "p") {
      return bad(absl::StrCat("device node ", n["path"].get<std::string>(), ": type \"", type,
                              "\" is not b, c, u or p"));
    }
    std::string perms =
        field(n, "permissions").is_string() ? n["permissions"].get<std::string>() : "";
    if (perms != "none" && perms.find_first_not_of("rwm") != std::string::npos) {
      return bad(absl::StrCat("device node ", n["path"].get<std::string>(), ": permissions \"",
                              perms, "\" are not letters of rwm"));
    }
  }
  for (const json& h : field(e, "hooks")) {
    std::string name = field(h, "hookName").is_string() ? h["hookName"].get<std::string>() : "";
    if (!hookNames().contains(name)) return bad(absl::StrCat("unknown hook name \"", name, "\""));
    if (!field(h, "path").is_string() || h["path"].get<std::string>().empty()) {
      return bad(absl::StrCat("hook ", name, " has no path"));
    }
    if (!isStringArray(field(h, "args")) || !isStringArray(field(h, "env")) ||
        !typed(h, "timeout", isInt)) {
      return bad(absl::StrCat("hook ", name,
                              ": args and env must be lists of strings, timeout "
                              "a number"));
    }
  }
  for (const json& m : field(e, "mounts")) {
    if (!field(m, "hostPath").is_string() || !field(m, "containerPath").is_string() ||
        m["hostPath"].get<std::string>().empty() || m["containerPath"].get<std::string>().empty()) {
      return bad("a mount without hostPath or containerPath");
    }
    if (!isStringArray(field(m, "options")) || !typed(m, "type", isString)) {
      return bad("mount options and type must be strings");
    }
  }
  if (!typed(e, "additionalGids", [](const json& v) { return v.is_array(); })) {
    return bad("additionalGids is not a list");
  }
  for (const json& g : field(e, "additionalGids")) {
    if (!g.is_number_unsigned() || g.get<uint64_t>() > UINT32_MAX) {
      return bad("additionalGids must be unsigned 32-bit numbers");
    }
  }
  if (const json& rdt = field(e, "intelRdt"); !rdt.is_null()) {
    if (!rdt.is_object() || !typed(rdt, "closID", isString) ||
        !typed(rdt, "l3CacheSchema", isString) || !typed(rdt, "memBwSchema", isString)) {
      return bad("intelRdt: a field of the wrong type");
    }
  }
  return absl::OkStatus();
}

struct Loaded {
  std::map<std::string, std::pair<std::shared_ptr<const json>, const json*>> devices;
  std::vector<std::string> problems;  // spec files that could not be read
};

Loaded loadSpecs(const std::vector<std::string>& dirs) {
  Loaded out;
  for (const std::string& dir : dirs) {
    std::vector<std::filesystem::path> files;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
      std::string ext = e.path().extension().string();
      if (e.is_regular_file(ec) && (ext == ".json" || ext == ".yaml" || ext == ".yml")) {
        files.push_back(e.path());
      }
    }
    std::sort(files.begin(), files.end());
    for (const auto& path : files) {
      auto text = readFile(path.string());
      absl::StatusOr<json> spec =
          text.ok() ? parseCdiSpec(*text, path.extension() != ".json", path.string())
                    : absl::StatusOr<json>(text.status());
      if (!spec.ok()) {
        out.problems.push_back(std::string(spec.status().message()));
        continue;
      }
      auto shared = std::make_shared<const json>(*std::move(spec));
      const std::string kind = (*shared)["kind"];
      for (const json& d : (*shared)["devices"]) {
        // A later directory (higher priority) replaces a device named before.
        out.devices[absl::StrCat(kind, "=", d["name"].get<std::string>())] = {shared, &d};
      }
    }
  }
  return out;
}

// ---- applying edits (pkg/cdi ContainerEdits.Apply) ----

void addEnv(json& spec, const std::string& kv) {
  json& env = spec["process"]["env"];
  if (!env.is_array()) env = json::array();
  std::string key = kv.substr(0, kv.find('=') + 1);
  for (json& e : env) {
    if (e.is_string() && absl::StartsWith(e.get<std::string>(), key)) {
      e = kv;
      return;
    }
  }
  env.push_back(kv);
}

int parts(const std::string& path) {
  std::string clean = std::filesystem::path(path).lexically_normal().string();
  if (clean.size() > 1 && clean.back() == '/') clean.pop_back();
  return static_cast<int>(std::count(clean.begin(), clean.end(), '/'));
}

absl::Status applyEdits(const json& e, json& spec, const std::string& who) {
  if (!e.is_object()) return absl::OkStatus();
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat(who, ": ", why));
  };
  // What runc 1.1.5 does not know would be dropped without a word: refused instead.
  if (!field(e, "netDevices").is_null() && !e["netDevices"].empty()) {
    return bad("netDevices are not supported by runc 1.1");
  }
  if (const json& rdt = field(e, "intelRdt"); rdt.is_object()) {
    if (!field(rdt, "schemata").is_null() || field(rdt, "enableMonitoring") == true) {
      return bad("intelRdt schemata and enableMonitoring are not supported by runc 1.1");
    }
  }
  for (const json& kv : field(e, "env")) addEnv(spec, kv);
  const json& user = spec["process"]["user"];
  const uint32_t uid = user.value("uid", 0u), gid = user.value("gid", 0u);
  for (const json& n : field(e, "deviceNodes")) {
    std::string path = n["path"], type = n.value("type", "");
    std::string host = n.value("hostPath", "");
    if (host.empty()) host = path;
    int64_t dev_major = n.value("major", int64_t{0}), dev_minor = n.value("minor", int64_t{0});
    json mode = field(n, "fileMode");
    const bool minimal = !type.empty() && (dev_major != 0 || type == "p");
    struct stat st {};
    if (::lstat(host.c_str(), &st) == 0 &&
        (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISFIFO(st.st_mode))) {
      std::string host_type = S_ISBLK(st.st_mode) ? "b" : S_ISCHR(st.st_mode) ? "c" : "p";
      if (mode.is_null()) mode = st.st_mode & 07777;
      if (!minimal) {
        if (type.empty()) type = host_type;
        if (type != host_type) {
          return bad(absl::StrCat("device ", path, " (", host, "): type ", type,
                                  " but the host's is ", host_type));
        }
        if (type != "p" && dev_major == 0) {
          dev_major = major(st.st_rdev);
          dev_minor = minor(st.st_rdev);
        }
      }
    } else if (!minimal) {
      return bad(absl::StrCat("host device ", host, " is missing or not a device node"));
    }
    json dev = {{"path", path}, {"type", type}, {"major", dev_major}, {"minor", dev_minor}};
    if (!mode.is_null()) dev["fileMode"] = mode;
    if (n.contains("uid")) {
      dev["uid"] = n["uid"];
    } else if (uid > 0) {
      dev["uid"] = uid;
    }
    if (n.contains("gid")) {
      dev["gid"] = n["gid"];
    } else if (gid > 0) {
      dev["gid"] = gid;
    }
    json& devices = spec["linux"]["devices"];
    if (!devices.is_array()) devices = json::array();
    devices.erase(std::remove_if(devices.begin(), devices.end(),
                                 [&](const json& d) { return d.value("path", "") == path; }),
                  devices.end());
    devices.push_back(dev);
    if (type == "b" || type == "c") {
      std::string access = n.value("permissions", "");
      if (access.empty()) access = "rwm";
      if (access == "none") access = "";
      json& allow = spec["linux"]["resources"]["devices"];
      if (!allow.is_array()) allow = json::array();
      allow.push_back({{"allow", true},
                       {"type", type},
                       {"major", dev_major},
                       {"minor", dev_minor},
                       {"access", access}});
    }
  }
  if (!field(e, "mounts").is_null() && !e["mounts"].empty()) {
    json& mounts = spec["mounts"];
    if (!mounts.is_array()) mounts = json::array();
    for (const json& m : e["mounts"]) {
      const std::string dest = m["containerPath"];
      mounts.erase(
          std::remove_if(mounts.begin(), mounts.end(),
                         [&](const json& x) { return x.value("destination", "") == dest; }),
          mounts.end());
      json om = {{"destination", dest}, {"source", m["hostPath"]}};
      if (m.contains("options")) om["options"] = m["options"];
      if (field(m, "type").is_string() && !m["type"].get<std::string>().empty())
        om["type"] = m["type"];
      mounts.push_back(std::move(om));
    }
    std::stable_sort(mounts.begin(), mounts.end(), [](const json& a, const json& b) {
      return parts(a.value("destination", "")) < parts(b.value("destination", ""));
    });
  }
  for (const json& h : field(e, "hooks")) {
    json hook = {{"path", h["path"]}};
    for (const char* k : {"args", "env", "timeout"}) {
      if (h.contains(k) && !h[k].is_null()) hook[k] = h[k];
    }
    spec["hooks"][hookNames().at(h["hookName"])].push_back(std::move(hook));
  }
  if (const json& rdt = field(e, "intelRdt"); rdt.is_object()) {
    json& out = spec["linux"]["intelRdt"];
    out = json::object();
    for (const char* k : {"closID", "l3CacheSchema", "memBwSchema"}) {
      if (rdt.contains(k)) out[k] = rdt[k];
    }
  }
  for (const json& g : field(e, "additionalGids")) {
    uint32_t v = g.get<uint32_t>();
    if (v == 0) continue;
    json& gids = spec["process"]["user"]["additionalGids"];
    if (!gids.is_array()) gids = json::array();
    if (std::find(gids.begin(), gids.end(), json(v)) == gids.end()) gids.push_back(v);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<json> parseCdiSpec(const std::string& text, bool yaml, const std::string& what) {
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat("CDI spec ", what, ": ", why));
  };
  if (text.size() > kMaxSpecBytes) return bad("larger than 4 MiB");
  json spec;
  if (yaml) {
    try {
      spec = yamlToJson(YAML::Load(text));
    } catch (const YAML::Exception& e) {
      return bad(absl::StrCat("not YAML: ", e.what()));
    }
  } else {
    auto parsed = parseUntrustedJson(text, absl::StrCat("CDI spec ", what), kMaxSpecBytes);
    if (!parsed.ok()) return parsed.status();
    spec = *std::move(parsed);
  }
  if (!spec.is_object()) return bad("not an object");
  std::string version = field(spec, "cdiVersion").is_string() ? spec["cdiVersion"] : "";
  if (absl::StartsWith(version, "v")) version = version.substr(1);
  if (versionIndex(version) >= knownVersions().size()) {
    return bad(absl::StrCat("unknown cdiVersion \"", version, "\""));
  }
  std::string needed = requiredVersion(spec);
  if (versionIndex(needed) < versionIndex(version)) {
    return bad(absl::StrCat("cdiVersion ", version, " is too old for its fields: needs ", needed));
  }
  std::string kind = field(spec, "kind").is_string() ? spec["kind"] : "";
  size_t slash = kind.find('/');
  if (slash == std::string::npos || !validVendorOrClass(kind.substr(0, slash)) ||
      !validVendorOrClass(kind.substr(slash + 1))) {
    return bad(absl::StrCat("kind \"", kind, "\" is not vendor/class"));
  }
  const json& devices = field(spec, "devices");
  if (!devices.is_array() || devices.empty()) return bad("no devices");
  for (const json& d : devices) {
    std::string name = d.is_object() && field(d, "name").is_string() ? d["name"] : "";
    if (!validDeviceName(name)) return bad(absl::StrCat("invalid device name \"", name, "\""));
    BERTH_RETURN_IF_ERROR(validateEdits(field(d, "containerEdits"),
                                        absl::StrCat("CDI spec ", what, ": device ", name)));
  }
  BERTH_RETURN_IF_ERROR(
      validateEdits(field(spec, "containerEdits"), absl::StrCat("CDI spec ", what)));
  return spec;
}

absl::Status injectCdiDevices(const std::vector<std::string>& spec_dirs,
                              const std::vector<std::string>& names, json& spec) {
  if (names.empty()) return absl::OkStatus();
  Loaded loaded = loadSpecs(spec_dirs);
  std::vector<std::string> missing;
  std::vector<const json*> specs_done;
  for (const std::string& name : names) {
    auto it = loaded.devices.find(name);
    if (it == loaded.devices.end()) {
      missing.push_back(name);
      continue;
    }
    const auto& [file, device] = it->second;
    // The spec's own edits once, before its first device's (as the CDI library).
    if (std::find(specs_done.begin(), specs_done.end(), file.get()) == specs_done.end()) {
      specs_done.push_back(file.get());
      BERTH_RETURN_IF_ERROR(
          applyEdits(field(*file, "containerEdits"), spec, absl::StrCat("CDI device ", name)));
    }
    BERTH_RETURN_IF_ERROR(
        applyEdits(field(*device, "containerEdits"), spec, absl::StrCat("CDI device ", name)));
  }
  if (!missing.empty()) {
    std::string msg = absl::StrCat("unresolvable CDI devices ", absl::StrJoin(missing, ", "),
                                   " (spec dirs: ", absl::StrJoin(spec_dirs, ", "), ")");
    if (!loaded.problems.empty()) {
      absl::StrAppend(&msg, "; unreadable specs: ", absl::StrJoin(loaded.problems, "; "));
    }
    return absl::InvalidArgumentError(msg);
  }
  return absl::OkStatus();
}

}  // namespace berth::oci
