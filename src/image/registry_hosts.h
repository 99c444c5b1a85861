// Registry host configuration (mirrors, upstream, TLS, credentials, timeouts) and the rule
// that turns a reference domain into the ordered list of endpoints to try.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "image/registry_auth.h"

namespace berth::image {

// One HTTP(S) server that speaks the distribution API.
struct RegistryEndpoint {
  // "127.0.0.1:5000", "registry-1.docker.io", "[::1]:5000". A leading "http://" or "https://"
  // sets plain_http, and a trailing "/path" is taken as path_prefix (see resolveEndpoints).
  std::string host;
  bool plain_http = false;
  bool skip_verify = false;  // do not verify the server's TLS certificate
  std::string ca_file;       // extra CA bundle (PEM) for this endpoint
  // Mirrors that serve the API under a prefix: URLs are <scheme>://host<prefix>/v2/….
  // "/prefix", without "/v2".
  std::string path_prefix;
  // hosts.toml's override_path: path_prefix is the API root itself (no "/v2" added).
  bool override_path = false;
  // hosts.toml's capabilities: "resolve" (a tag's manifest), "pull" (manifests by digest,
  // blobs). An endpoint is asked only what it is capable of.
  bool can_resolve = true;
  bool can_pull = true;
  std::string client_cert, client_key;  // a TLS client certificate (PEM) and its key
  std::vector<std::string> headers;     // "Name: value", sent with every request

  std::string scheme() const { return plain_http ? "http" : "https"; }
  // "<scheme>://host<prefix>/v2/".
  std::string baseUrl() const;
  bool operator==(const RegistryEndpoint&) const = default;
};

// Configuration for one reference domain ("docker.io", "registry.k8s.io", "127.0.0.1:5000").
struct RegistryHost {
  std::vector<RegistryEndpoint> mirrors;              // tried in order, before the upstream
  std::optional<RegistryEndpoint> upstream_override;  // replaces the domain's own server
  Credentials credentials;                            // used when a request brings none
};

struct RegistryOptions {
  std::map<std::string, RegistryHost> hosts;  // keyed by reference domain
  // A registry host directory as containerd reads it (`[image] config_path`): its
  // <domain>/hosts.toml, or _default/hosts.toml, is read at each request and wins over `hosts`
  // for the domain's endpoints (credentials still come from `hosts`). Empty: none.
  std::string config_path;
  int connect_timeout_s = 30;
  // Deadlines of one logical request, all attempts and endpoints included: manifests, configs
  // and tokens; layer blobs.
  int request_timeout_s = 120;
  int blob_timeout_s = 3600;
  // A transfer slower than min_rate_bps on average over progress_timeout_s is aborted (and
  // retried, resuming, while the deadline allows).
  int progress_timeout_s = 60;
  int64_t min_rate_bps = 1024;
  int retries = 3;              // extra attempts after 5xx, 429 or a broken transfer
  std::string user_agent = "berth/0.1";
};

// True for "localhost", "127.x.x.x" and "::1", with or without a port or brackets.
bool isLoopbackHost(absl::string_view host);

// The endpoints to try for `domain`, in order: the host's mirrors, then its upstream
// (upstream_override, or the domain itself over HTTPS; "docker.io" is served by
// "registry-1.docker.io"; loopback domains use plain HTTP like containerd does).
// Endpoints come back normalised: no scheme in `host`, prefix with a leading '/' and no
// trailing '/' or "/v2".
// With config_path set, the host directory decides (registry_hosts_dir.h); a hosts.toml that
// cannot be read is an error naming it.
absl::StatusOr<std::vector<RegistryEndpoint>> resolveEndpoints(const RegistryOptions& options,
                                                               const std::string& domain);

}  // namespace berth::image
