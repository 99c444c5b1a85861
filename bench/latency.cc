// Percentiles over wall-clock samples.
#include "latency.h"

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cli/client.h"

namespace berth::bench {
namespace {

std::atomic<bool> g_interrupted{false};

void onSignal(int) { g_interrupted = true; }

}  // namespace

bool check(const std::string& rpc, const grpc::Status& st) {
  static std::set<std::string> reported;
  if (st.ok()) return true;
  if (reported.insert(rpc).second) {
    std::fprintf(stderr, "%s\n", cli::describeFailure(rpc, st).c_str());
  }
  return false;
}

void catchInterrupts() {
  struct sigaction sa {};
  sa.sa_handler = onSignal;
  sa.sa_flags = SA_RESETHAND;  // a second signal ends the tool without the clean-up
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
}

bool interrupted() { return g_interrupted; }

Summary summarize(const std::string& name, std::vector<absl::Duration> samples, size_t failures) {
  Summary s{.name = name, .samples = samples.size(), .failures = failures};
  if (samples.empty()) return s;
  absl::Duration total;
  for (absl::Duration d : samples) total += d;
  std::sort(samples.begin(), samples.end());
  auto at = [&](double q) {
    size_t idx = static_cast<size_t>(q * static_cast<double>(samples.size() - 1));
    return samples[idx];
  };
  s.p50 = at(0.50);
  s.p90 = at(0.90);
  s.p99 = at(0.99);
  s.max = samples.back();
  s.mean = total / static_cast<int64_t>(samples.size());
  return s;
}

Summary measure(const std::string& name, int warmup, int iterations,
                const std::function<bool()>& op, const std::function<void()>& before) {
  for (int i = 0; i < warmup; ++i) op();
  std::vector<absl::Duration> samples;
  samples.reserve(static_cast<size_t>(iterations));
  size_t failures = 0;
  for (int i = 0; i < iterations; ++i) {
    if (before) before();
    absl::Time start = absl::Now();
    bool ok = op();
    absl::Duration d = absl::Now() - start;
    if (!ok) {
      ++failures;
      continue;
    }
    samples.push_back(d);
  }
  return summarize(name, std::move(samples), failures);
}

Footprint footprintOf(int pid) {
  Footprint f;
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Threads:", 0) == 0) f.threads = std::stol(line.substr(8));
    if (line.rfind("VmRSS:", 0) == 0)
      f.rss_mib = static_cast<double>(std::stol(line.substr(6))) / 1024.0;
  }
  std::error_code ec;
  long fds = 0;
  for (auto it = std::filesystem::directory_iterator(absl::StrCat("/proc/", pid, "/fd"), ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++fds;
  }
  if (!ec) f.fds = fds;
  return f;
}

void printSummary(const Summary& s) {
  static bool header = false;
  if (!header) {
    std::printf("%-36s %8s %8s %10s %10s %10s %10s %10s\n", "operation", "samples", "failed",
                "mean_us", "p50_us", "p90_us", "p99_us", "max_us");
    header = true;
  }
  auto us = [](absl::Duration d) { return absl::ToDoubleMicroseconds(d); };
  std::printf("%-36s %8zu %8zu %10.1f %10.1f %10.1f %10.1f %10.1f\n", s.name.c_str(), s.samples,
              s.failures, us(s.mean), us(s.p50), us(s.p90), us(s.p99), us(s.max));
}

std::string runPod(cli::Client& client, const runtime::v1::PodSandboxConfig& config) {
  runtime::v1::RunPodSandboxRequest req;
  *req.mutable_config() = config;
  runtime::v1::RunPodSandboxResponse resp;
  auto ctx = client.context();
  if (!check("RunPodSandbox", client.runtime().RunPodSandbox(ctx.get(), req, &resp))) return "";
  return resp.pod_sandbox_id();
}

}  // namespace berth::bench
