// Access to the registry/image environment (tests/env) that CTest starts for integration
// tests: its keys (registry addresses, image references, digests) and ad-hoc image pushes.
#pragma once

#include <string>

#include "nlohmann/json.hpp"

namespace berth::testing {

// A key of DIR/env.json (DIR from BERTH_TEST_ENV_DIR); fails the test if missing.
std::string envKey(const std::string& key);
// DIR itself.
std::string envDir();

// Pushes an image described by a mkimage.py spec (see tests/env/README.md) to the plain
// registry (or the auth one) and returns mkimage's JSON (ref, digest, config_digest, …).
nlohmann::json pushImage(const nlohmann::json& spec, bool to_auth_registry = false);

// Path of a blob's data file in the plain registry's storage (for corruption tests).
std::string registryBlobPath(const std::string& digest);

// Number of blob GETs of repository `repo` (e.g. "berth-test/x") the plain registry has logged.
// Count only repositories no other test pulls: tests run in parallel against one registry.
int registryBlobGets(const std::string& repo);

// Pushes a small image (one layer with a file unique to this call) to repository
// "berth-test/<name>-<pid>" and returns mkimage's JSON; "repo" is added to it.
nlohmann::json pushUniqueImage(const std::string& name);

}  // namespace berth::testing
