// Test helpers for berth-shim tests: a temp tree with a busybox rootfs, OCI bundles for runc,
// and clean-up of everything a test made (containers, shims, cgroups, temp dirs).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "shim/shim_client.h"

namespace berth::shim::testing {

inline constexpr const char* kShimBinary = BERTH_SHIM_BINARY;
inline constexpr const char* kPauseBinary = BERTH_PAUSE_BINARY;

// Why real-runc tests cannot run here ("" when they can): needs root, runc and busybox.
std::string runcUnavailableReason();

class TestEnv {
 public:
  TestEnv();
  ~TestEnv();
  TestEnv(const TestEnv&) = delete;
  TestEnv& operator=(const TestEnv&) = delete;

  const std::string& root() const { return root_; }
  const std::string& runtimePath() const { return runtime_path_; }
  std::string runtimeRoot() const { return root_ + "/runc"; }
  std::string rootfs() const { return root_ + "/rootfs"; }
  // A pod directory under root(), remembered for clean-up.
  std::string podDir(const std::string& pod);
  // A container id unique to this process, remembered for clean-up.
  std::string containerId(const std::string& name);
  // Writes <root>/bundles/<id>/config.json running `args` in the shared rootfs. Without
  // `own_pid_ns` the process is not PID 1 of a namespace, so plain SIGTERM kills it.
  // `memory_limit` > 0 sets linux.resources.memory.limit (and swap to the same: no swap).
  std::string makeBundle(const std::string& id, const std::vector<std::string>& args,
                         bool own_pid_ns = true, int64_t memory_limit = 0);
  ShimConfig shimConfig(const std::string& pod);

  // Cgroup directories of a container that still exist (should be none after delete).
  static std::vector<std::string> leftoverCgroups(const std::string& id);

 private:
  std::string root_;
  std::string runtime_path_;
  std::vector<std::string> pod_dirs_;
  std::vector<std::string> container_ids_;
};

// True if `pid` exists and is not a zombie.
bool processAlive(int pid);
// Polls `pred` every 20 ms for up to `ms` milliseconds.
bool eventually(int ms, const std::function<bool()>& pred);

}  // namespace berth::shim::testing
