// `berthd --check-config`: what a parsed configuration would run into on this host, found
// without starting anything.
#pragma once

#include <string>
#include <vector>

#include "daemon/config.h"

namespace berth::daemon {

struct ConfigCheck {
  std::vector<std::string> problems;  // berthd would fail, or pods would (each names its key)
  std::vector<std::string> notes;     // fine, but worth knowing
};

// Runtime binaries of every handler, the CNI config and plugins pods would get, the registry
// host directory and its hosts.toml files, CA and TLS files, CDI spec folders, CRIU.
ConfigCheck checkConfig(const Config& config);

}  // namespace berth::daemon
