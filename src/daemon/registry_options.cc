// [image] config → RegistryOptions.
#include "daemon/registry_options.h"

#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"

namespace berth::daemon {
namespace {

absl::StatusOr<image::RegistryEndpoint> parseEndpoint(const std::string& url,
                                                      const RegistryConfig& reg) {
  image::RegistryEndpoint e;
  absl::string_view rest = url;
  if (absl::ConsumePrefix(&rest, "http://")) {
    e.plain_http = true;
  } else if (!absl::ConsumePrefix(&rest, "https://")) {
    return absl::InvalidArgumentError(absl::StrCat("mirror \"", url, "\" needs http:// or https://"));
  }
  size_t slash = rest.find('/');
  e.host = std::string(rest.substr(0, slash));
  if (slash != absl::string_view::npos) {
    absl::string_view prefix = rest.substr(slash);
    while (absl::ConsumeSuffix(&prefix, "/")) {
    }
    e.path_prefix = std::string(prefix);
  }
  if (e.host.empty()) return absl::InvalidArgumentError(absl::StrCat("mirror \"", url, "\" has no host"));
  e.ca_file = reg.ca_file;
  e.skip_verify = reg.insecure_skip_verify;
  return e;
}

}  // namespace

absl::StatusOr<image::RegistryOptions> registryOptions(const Config& config) {
  image::RegistryOptions o;
  o.connect_timeout_s = config.image.connect_timeout_seconds;
  o.progress_timeout_s = config.image.progress_timeout_seconds;
  o.min_rate_bps = config.image.min_transfer_rate_bytes_per_second;
  o.request_timeout_s = config.image.request_timeout_seconds;
  o.blob_timeout_s = config.image.blob_timeout_seconds;
  o.retries = config.image.retries;
  o.config_path = config.image.config_path;
  for (const auto& [domain, reg] : config.image.registries) {
    image::RegistryHost host;
    for (const auto& m : reg.mirrors) {
      auto e = parseEndpoint(m, reg);
      if (!e.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("config image.registries.\"", domain,
                                                       "\": ", e.status().message()));
      }
      host.mirrors.push_back(std::move(*e));
    }
    if (reg.plain_http || reg.insecure_skip_verify || !reg.ca_file.empty()) {
      image::RegistryEndpoint up;
      up.host = domain == "docker.io" ? "registry-1.docker.io" : domain;
      up.plain_http = reg.plain_http;
      up.skip_verify = reg.insecure_skip_verify;
      up.ca_file = reg.ca_file;
      host.upstream_override = up;
    }
    host.credentials.username = reg.username;
    host.credentials.password = reg.password;
    host.credentials.auth = reg.auth;
    host.credentials.identity_token = reg.identity_token;
    o.hosts[domain] = std::move(host);
  }
  return o;
}

}  // namespace berth::daemon
