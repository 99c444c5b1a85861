// Endpoint resolution: mirrors first, then the upstream of a reference domain.
#include "image/registry_hosts.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/status.h"
#include "image/registry_hosts_dir.h"

namespace berth::image {
namespace {

constexpr absl::string_view kDockerDomain = "docker.io";
constexpr absl::string_view kDockerRegistryHost = "registry-1.docker.io";

}  // namespace

RegistryEndpoint normaliseEndpoint(RegistryEndpoint ep) {
  absl::string_view host = ep.host;
  if (absl::ConsumePrefix(&host, "http://")) {
    ep.plain_http = true;
  } else if (absl::ConsumePrefix(&host, "https://")) {
    ep.plain_http = false;
  }
  std::string prefix = ep.path_prefix;
  if (size_t slash = host.find('/'); slash != absl::string_view::npos) {
    if (prefix.empty()) prefix = std::string(host.substr(slash));
    host = host.substr(0, slash);
  }
  ep.host = std::string(host);
  absl::string_view p = prefix;
  while (absl::ConsumeSuffix(&p, "/")) {
  }
  if (!ep.override_path) absl::ConsumeSuffix(&p, "/v2");
  while (absl::ConsumeSuffix(&p, "/")) {
  }
  ep.path_prefix = p.empty() || absl::StartsWith(p, "/") ? std::string(p) : absl::StrCat("/", p);
  return ep;
}

std::string RegistryEndpoint::baseUrl() const {
  if (override_path) return absl::StrCat(scheme(), "://", host, path_prefix, "/");
  return absl::StrCat(scheme(), "://", host, path_prefix, "/v2/");
}

RegistryEndpoint defaultUpstream(const std::string& domain) {
  RegistryEndpoint up;
  up.host = domain == kDockerDomain ? std::string(kDockerRegistryHost) : domain;
  up.plain_http = isLoopbackHost(domain);
  return up;
}

bool isLoopbackHost(absl::string_view host) {
  absl::string_view h = host;
  if (absl::StartsWith(h, "[")) {
    size_t close = h.find(']');
    h = h.substr(1, close == absl::string_view::npos ? absl::string_view::npos : close - 1);
  } else if (size_t colon = h.find(':'); colon != absl::string_view::npos &&
                                         h.find(':', colon + 1) == absl::string_view::npos) {
    h = h.substr(0, colon);  // host:port (a bare IPv6 address has several colons)
  }
  return h == "localhost" || h == "::1" || absl::StartsWith(h, "127.");
}

absl::StatusOr<std::vector<RegistryEndpoint>> resolveEndpoints(const RegistryOptions& options,
                                                               const std::string& domain) {
  if (!options.config_path.empty()) {
    BERTH_ASSIGN_OR_RETURN(auto from_dir, endpointsFromHostsDir(options.config_path, domain,
                                                                options.hosts.contains(domain)));
    if (from_dir.has_value()) return *std::move(from_dir);
  }
  std::vector<RegistryEndpoint> out;
  const RegistryHost* config = nullptr;
  if (auto it = options.hosts.find(domain); it != options.hosts.end()) config = &it->second;
  if (config != nullptr) {
    for (const RegistryEndpoint& m : config->mirrors) out.push_back(normaliseEndpoint(m));
  }
  if (config != nullptr && config->upstream_override.has_value()) {
    out.push_back(normaliseEndpoint(*config->upstream_override));
  } else {
    out.push_back(defaultUpstream(domain));
  }
  return out;
}

}  // namespace berth::image
