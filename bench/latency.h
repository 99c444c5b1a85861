// Latency sampling and percentile printing shared by the benchmarks.
#pragma once

#include <grpcpp/support/status.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "runtime/v1/api.pb.h"

namespace berth::cli {
class Client;
}

namespace berth::bench {

struct Summary {
  std::string name;
  size_t samples = 0;
  size_t failures = 0;
  absl::Duration p50, p90, p99, max, mean;
};

// A process's threads, open descriptors and resident memory (-1 where unreadable).
struct Footprint {
  long threads = -1;
  long fds = -1;
  double rss_mib = -1;
};
Footprint footprintOf(int pid);

// Percentiles, maximum and mean of `samples`.
Summary summarize(const std::string& name, std::vector<absl::Duration> samples, size_t failures);

// Calls `op` `iterations` times (after `warmup` untimed calls); `op` returns false on failure.
// `before` (may be empty) runs untimed before each timed call, e.g. to space the calls out.
Summary measure(const std::string& name, int warmup, int iterations,
                const std::function<bool()>& op, const std::function<void()>& before = {});

// Prints a header once, then one aligned line per summary (microseconds).
void printSummary(const Summary& s);

// True when `st` is OK. Prints the first failure of each RPC to stderr; measure() counts the
// rest.
bool check(const std::string& rpc, const grpc::Status& st);

// RunPodSandbox with `config`: the pod's id, or "" when it failed (check() said why).
std::string runPod(cli::Client& client, const runtime::v1::PodSandboxConfig& config);

// From here on SIGINT and SIGTERM set interrupted(), so that the tool stops and removes what it
// made; a second signal ends it at once, without the clean-up.
void catchInterrupts();
bool interrupted();

}  // namespace berth::bench
