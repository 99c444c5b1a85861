// Starts a real berthd with a temporary root, state dir and socket, and talks to it through the
// generated CRI client. Everything it made (process, directories) is gone when it is destroyed.
#pragma once

#include <grpcpp/grpcpp.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/v1/api.h"

namespace berth::testing {

// Result of running a program to completion.
struct RunResult {
  int exit_code = -1;  // -1 when killed by a signal
  std::string out;
  std::string err;
};

// Runs argv (argv[0] looked up in PATH) with a bounded wait (the child is killed after
// `timeout_s`), capturing output.
RunResult runProgram(const std::vector<std::string>& argv, int timeout_s = 30);

// A loopback TCP port that was free a moment ago (the kernel's choice); 0 if none was given.
uint16_t freeLoopbackPort();

class Berthd {
 public:
  // `extra_toml` is appended to the generated config (root, state and socket are set already).
  explicit Berthd(std::string extra_toml = "");
  ~Berthd();
  Berthd(const Berthd&) = delete;
  Berthd& operator=(const Berthd&) = delete;

  // Starts berthd and waits until Version answers; false (with the log in `log()`) if it
  // exited or did not answer within the bound. `env` ("KEY=value") is added to its
  // environment, e.g. BERTH_CRASH_AT.
  bool start(const std::vector<std::string>& env = {});
  // Sends `sig` and waits for the exit; returns the exit code, or -signal when killed.
  int stop(int sig = SIGTERM);
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

  const std::string& dir() const { return dir_; }
  const std::string& cgroupParent() const { return cgroup_parent_; }
  std::string root() const { return dir_ + "/root"; }
  std::string state() const { return dir_ + "/state"; }
  std::string socket() const { return dir_ + "/state/berth.sock"; }
  std::string configPath() const { return dir_ + "/config.toml"; }
  std::string endpoint() const { return "unix://" + socket(); }
  std::string log() const;

  // Pod networking: each daemon gets a CNI conf dir of its own with a bridge "bit<N>" (host
  // address .254) and the subnet 198.18.0.0/15's N-th /24 (N claimed for the daemon's
  // lifetime, so that parallel tests never share one), host-local leases under dir(), no
  // gateway, masquerading or forwarding. A test that sets
  // its own [cni] table in extra_toml gets none of this.
  const std::string& cniBridge() const { return cni_bridge_; }
  const std::string& cniSubnet() const { return cni_subnet_; }  // "198.18.N.0/24"
  std::string cniConfDir() const { return dir_ + "/cni/net.d"; }
  std::string cniLeaseDir() const { return dir_ + "/cni/ipam"; }
  // Searched for plugins before the system's dirs (for fake plugins).
  std::string cniBinDir() const { return dir_ + "/cni/bin"; }
  // The conflist the daemon uses: bridge + host-local, then `extra_plugins` (e.g. portmap).
  // Written as <conf dir>/<file>; berthd picks up a change within a second.
  void writeCniConfig(const std::string& extra_plugins_json = "",
                      const std::string& file = "10-berth-it.conflist") const;

  runtime::v1::RuntimeService::Stub& runtime();
  runtime::v1::ImageService::Stub& image();
  std::shared_ptr<grpc::Channel> channel();
  static std::unique_ptr<grpc::ClientContext> context(int timeout_s = 10);

 private:
  void removeAllPods();
  void reapLeftovers();

  std::string dir_;
  std::string cgroup_parent_;
  int cni_slot_ = -1;
  std::string cni_bridge_, cni_subnet_;
  pid_t pid_ = -1;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<runtime::v1::RuntimeService::Stub> runtime_;
  std::unique_ptr<runtime::v1::ImageService::Stub> image_;
};

// A runtime for a handler of its own: runc, except that `delete` fails while `marker` exists.
// Configure it with "[cri.runtimes.flaky]\nruntime_path = \"" + wrapper + "\"\n".
struct FlakyRuntime {
  FlakyRuntime();
  ~FlakyRuntime();
  FlakyRuntime(const FlakyRuntime&) = delete;
  FlakyRuntime& operator=(const FlakyRuntime&) = delete;
  std::string dir, marker, wrapper;
};

// Paths of the binaries under test (set by CMake).
std::string berthdPath();
std::string berthctlPath();
// The source tree (for test programs built from it).
std::string sourceDir();
// A whole file's text ("" when it cannot be read).
std::string slurp(const std::string& path);
// Regular files below `dir` (0 when it does not exist).
size_t filesUnder(const std::string& dir);

}  // namespace berth::testing
