// Registry host directories in containerd's format (`config_path`, e.g. /etc/containerd/certs.d):
// one folder per registry host ("docker.io", "127.0.0.1:5000") or "_default", each with a
// hosts.toml:
//   server = "https://registry.example.com"       # the upstream (default: the host itself)
//   capabilities = ["pull", "resolve"]           # what it is asked (default: pull, resolve)
//   ca = "ca.crt" | ["a.crt", …]                  # extra CAs (relative to the folder)
//   client = "c.pem" | ["c.cert", "c.key"] | [["c.cert", "c.key"], …]
//   skip_verify = false
//   override_path = false                        # the path is the API root (no /v2)
//   [header] name = "v" | ["v1", …]
//   [host."https://mirror.example.com/prefix"]  # mirrors, tried first, in file order
//     (the same keys)
// A folder without hosts.toml is read as docker's certs.d: *.crt CAs, *.cert/*.key client pairs.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "image/registry_hosts.h"

namespace berth::image {

// An endpoint with its scheme taken out of `host` (setting plain_http), a "/path" after the
// host moved to path_prefix, and "/v2" and trailing slashes dropped from it (kept with
// override_path).
RegistryEndpoint normaliseEndpoint(RegistryEndpoint ep);

// The domain's own server: over HTTPS ("docker.io" is served by "registry-1.docker.io"),
// plain HTTP on loopback as containerd does.
RegistryEndpoint defaultUpstream(const std::string& domain);

// The endpoints <config_path>/<domain>/ gives, in order (its [host."…"] tables as the file has
// them, then its server), or nullopt when no folder applies. `_default/` stands in for a domain
// without a folder of its own unless `inline_config` (the domain has [image.registries] keys,
// which then win). Read at each call: edits take effect at the next request. InvalidArgument
// naming the file and key for a hosts.toml that cannot be used.
[[nodiscard]] absl::StatusOr<std::optional<std::vector<RegistryEndpoint>>> endpointsFromHostsDir(
    const std::string& config_path, const std::string& domain, bool inline_config);

}  // namespace berth::image
