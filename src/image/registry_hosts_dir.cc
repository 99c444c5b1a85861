// hosts.toml folders, read as containerd's remotes/docker/config does.
#include "image/registry_hosts_dir.h"

#include <sys/stat.h>
#include <toml++/toml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/fs.h"
#include "common/status.h"

namespace berth::image {
namespace {

std::string inFolder(const std::string& folder, const std::string& path) {
  return !path.empty() && path[0] == '/' ? path : folder + "/" + path;
}

// Strings of a string or an array of strings; InvalidArgument naming `key` otherwise.
absl::StatusOr<std::vector<std::string>> strings(const toml::node& n, const std::string& key) {
  std::vector<std::string> out;
  if (auto s = n.value<std::string>()) {
    out.push_back(*s);
    return out;
  }
  if (const toml::array* a = n.as_array()) {
    for (const toml::node& e : *a) {
      auto s = e.value<std::string>();
      if (!s) return absl::InvalidArgumentError(absl::StrCat(key, ": an entry is not a string"));
      out.push_back(*s);
    }
    return out;
  }
  return absl::InvalidArgumentError(absl::StrCat(key, ": a string or an array of strings"));
}

// Applies the keys of one host table (or the file's top level) to `ep`.
absl::Status applyHostKeys(const toml::table& t, const std::string& folder,
                           const std::string& where, RegistryEndpoint& ep) {
  for (const auto& [k, v] : t) {
    const std::string key(k.str());
    const std::string name = where.empty() ? key : absl::StrCat(where, ".", key);
    if (key == "server" || key == "host") continue;  // handled by the caller
    if (key == "capabilities") {
      auto caps = strings(v, name);
      if (!caps.ok()) return caps.status();
      ep.can_pull = std::find(caps->begin(), caps->end(), "pull") != caps->end();
      ep.can_resolve = std::find(caps->begin(), caps->end(), "resolve") != caps->end();
      for (const std::string& c : *caps) {
        if (c != "pull" && c != "resolve" && c != "push") {
          return absl::InvalidArgumentError(
              absl::StrCat(name, ": unknown capability \"", c, "\" (pull, resolve, push)"));
        }
      }
    } else if (key == "ca") {
      auto cas = strings(v, name);
      if (!cas.ok()) return cas.status();
      // libcurl takes one CA bundle per request: the first (more would need concatenating).
      if (!cas->empty()) ep.ca_file = inFolder(folder, cas->front());
    } else if (key == "client") {
      // "pem" (certificate and key in one file), ["cert", "key"], or [["cert", "key"], …].
      std::vector<std::string> pair;
      if (const toml::array* a = v.as_array();
          a != nullptr && !a->empty() && a->front().is_array()) {
        auto first = strings(a->front(), name);
        if (!first.ok()) return first.status();
        pair = *first;
      } else {
        auto s = strings(v, name);
        if (!s.ok()) return s.status();
        pair = *s;
      }
      if (pair.empty() || pair.size() > 2) {
        return absl::InvalidArgumentError(absl::StrCat(name, ": a certificate and its key"));
      }
      ep.client_cert = inFolder(folder, pair[0]);
      ep.client_key = inFolder(folder, pair.size() == 2 ? pair[1] : pair[0]);
    } else if (key == "skip_verify") {
      auto b = v.value<bool>();
      if (!b) return absl::InvalidArgumentError(absl::StrCat(name, ": a boolean"));
      ep.skip_verify = *b;
    } else if (key == "override_path") {
      auto b = v.value<bool>();
      if (!b) return absl::InvalidArgumentError(absl::StrCat(name, ": a boolean"));
      ep.override_path = *b;
    } else if (key == "header") {
      const toml::table* h = v.as_table();
      if (h == nullptr) return absl::InvalidArgumentError(absl::StrCat(name, ": a table"));
      for (const auto& [hk, hv] : *h) {
        auto values = strings(hv, absl::StrCat(name, ".", std::string(hk.str())));
        if (!values.ok()) return values.status();
        for (const std::string& one : *values)
          ep.headers.push_back(absl::StrCat(std::string(hk.str()), ": ", one));
      }
    } else {
      return absl::InvalidArgumentError(absl::StrCat(name, ": unknown key"));
    }
  }
  return absl::OkStatus();
}

// docker's certs.d layout: *.crt are CAs, *.cert with the *.key of the same name client pairs.
RegistryEndpoint fromCertsFolder(const std::string& folder, RegistryEndpoint ep) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(folder, ec)) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  for (const std::string& n : names) {
    if (absl::EndsWith(n, ".crt") && ep.ca_file.empty()) ep.ca_file = folder + "/" + n;
    if (absl::EndsWith(n, ".cert") && ep.client_cert.empty()) {
      const std::string key = folder + "/" + n.substr(0, n.size() - 5) + ".key";
      if (std::filesystem::exists(key, ec)) {
        ep.client_cert = folder + "/" + n;
        ep.client_key = key;
      }
    }
  }
  return ep;
}

absl::StatusOr<std::vector<RegistryEndpoint>> readFolder(const std::string& folder,
                                                         const std::string& domain) {
  const std::string file = folder + "/hosts.toml";
  RegistryEndpoint upstream = defaultUpstream(domain);
  std::ifstream in(file);
  if (!in) return std::vector<RegistryEndpoint>{fromCertsFolder(folder, upstream)};
  std::stringstream text;
  text << in.rdbuf();
  toml::table doc;
  try {
    doc = toml::parse(text.str(), file);
  } catch (const toml::parse_error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(file, ": ", std::string(e.description()), " at line ", e.source().begin.line));
  }
  auto bad = [&file](const absl::Status& st) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": ", st.message()));
  };
  if (const toml::node* server = doc.get("server")) {
    auto s = server->value<std::string>();
    if (!s) return bad(absl::InvalidArgumentError("server: a URL string"));
    upstream = RegistryEndpoint{};
    upstream.host = *s;
  }
  if (absl::Status st = applyHostKeys(doc, folder, "", upstream); !st.ok()) return bad(st);
  // Mirrors in the order the file lists them (toml++ keeps a table's keys sorted).
  std::vector<std::pair<size_t, RegistryEndpoint>> mirrors;
  if (const toml::node* hosts = doc.get("host")) {
    const toml::table* t = hosts->as_table();
    if (t == nullptr) return bad(absl::InvalidArgumentError("host: a table of hosts"));
    for (const auto& [url, v] : *t) {
      const std::string where = absl::StrCat("host.\"", std::string(url.str()), "\"");
      const toml::table* h = v.as_table();
      if (h == nullptr) return bad(absl::InvalidArgumentError(where + ": a table"));
      RegistryEndpoint ep;
      ep.host = std::string(url.str());
      if (!absl::StartsWith(ep.host, "http://") && !absl::StartsWith(ep.host, "https://")) {
        return bad(absl::InvalidArgumentError(where + ": a URL with http:// or https://"));
      }
      if (absl::Status st = applyHostKeys(*h, folder, where, ep); !st.ok()) return bad(st);
      mirrors.emplace_back(v.source().begin.line, normaliseEndpoint(std::move(ep)));
    }
  }
  std::stable_sort(mirrors.begin(), mirrors.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<RegistryEndpoint> out;
  for (auto& [line, ep] : mirrors) out.push_back(std::move(ep));
  out.push_back(normaliseEndpoint(std::move(upstream)));
  return out;
}

}  // namespace

absl::StatusOr<std::optional<std::vector<RegistryEndpoint>>> endpointsFromHostsDir(
    const std::string& config_path, const std::string& domain, bool inline_config) {
  if (domain.empty() || domain.find('/') != std::string::npos || domain == "." || domain == "..") {
    return std::nullopt;
  }
  // As containerd: several folders separated by ':' ("/etc/containerd/certs.d:/etc/docker/
  // certs.d"); the first with a folder for the host wins, then the first with _default.
  std::vector<std::string> roots = absl::StrSplit(config_path, ':', absl::SkipEmpty());
  std::string folder;
  for (const std::string& root : roots) {
    if (isDirectory(root + "/" + domain)) {
      folder = root + "/" + domain;
      break;
    }
  }
  for (size_t i = 0; folder.empty() && !inline_config && i < roots.size(); ++i) {
    if (isDirectory(roots[i] + "/_default")) folder = roots[i] + "/_default";
  }
  if (folder.empty()) return std::nullopt;
  BERTH_ASSIGN_OR_RETURN(auto endpoints, readFolder(folder, domain));
  return std::optional<std::vector<RegistryEndpoint>>(std::move(endpoints));
}

}  // namespace berth::image
