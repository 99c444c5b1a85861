// Runs tests/env/hostile_registry.py, a registry on loopback that attacks its clients (one
// repository per scenario: lying diff_ids, deep JSON, endless bodies, bombs, ...), for one test.
// The scenarios and the info they come with are described in tests/env/README.md.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace berth::testing {

// Used from the test's thread only. The script runs as a child in a process group of its own;
// everything it made (process, temp dir) is gone when this is destroyed.
class HostileRegistry {
 public:
  // `extra_args` go to `hostile_registry.py serve`, e.g. {"--trickle-bps", "50"}.
  explicit HostileRegistry(std::vector<std::string> extra_args = {});
  ~HostileRegistry();
  HostileRegistry(const HostileRegistry&) = delete;
  HostileRegistry& operator=(const HostileRegistry&) = delete;

  // Starts the script and waits for its port file; false (the reason in log()) if it exited,
  // did not get ready within `timeout_s` (building every scenario takes a few seconds, less
  // with the cache in the test environment's dir) or wrote an unreadable info file.
  bool start(int timeout_s = 60);
  // TERM, then KILL after 10 s, both by pid; returns the exit code, or -signal when killed.
  int stop();
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

  const std::string& dir() const { return dir_; }
  std::string log() const;

  // Set by start().
  const std::string& host() const { return host_; }  // "127.0.0.1:PORT"
  int port() const { return port_; }
  // The info file: {"host", "scenarios": {name: {"ref", "digest", "config_digest",
  // "layer_digests", "diff_ids", "attack", ...}}, ...}.
  const nlohmann::json& info() const { return info_; }
  // info()["scenarios"][name]; an unknown name fails the test and gives null.
  const nlohmann::json& scenario(const std::string& name) const;
  // "127.0.0.1:PORT/hostile/<name>:1" ("" for an unknown name, failing the test).
  std::string ref(const std::string& name) const;

  // Paths as /_stats counts them.
  std::string manifestPath(const std::string& name, const std::string& reference = "1") const;
  std::string blobPath(const std::string& name, const std::string& digest) const;
  // The first layer's blob path of scenario `name`.
  std::string layerPath(const std::string& name) const;

  // GET /_stats: {"requests": {path: n}, "bytes_sent": {path: n}, "methods": {"GET path": n}}
  // (any method counts in "requests"; /_stats itself is not counted). Null, failing the test,
  // if the registry does not answer.
  nlohmann::json stats() const;
  // Requests for `path` (any method) and body bytes sent on it so far; 0 when never asked.
  int64_t requests(const std::string& path) const;
  int64_t bytesSent(const std::string& path) const;

 private:
  std::vector<std::string> extra_args_;
  std::string dir_;
  std::string cache_dir_;
  pid_t pid_ = -1;
  int port_ = 0;
  std::string host_;
  nlohmann::json info_;
};

}  // namespace berth::testing
