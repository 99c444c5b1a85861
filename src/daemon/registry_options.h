// Turns the [image] configuration into the registry client's options.
#pragma once

#include "absl/status/statusor.h"
#include "daemon/config.h"
#include "image/registry_client.h"

namespace berth::daemon {

// Mirrors "http(s)://host[:port][/prefix]" become endpoints in order; `plain_http` makes the
// registry itself reachable over http; credentials become the registry's fallback credentials.
[[nodiscard]] absl::StatusOr<image::RegistryOptions> registryOptions(const Config& config);

}  // namespace berth::daemon
