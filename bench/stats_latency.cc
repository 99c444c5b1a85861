// Stats latency against any CRI endpoint at node density: N host-network pods (default 110, the
// kubelet's default max-pods) with M `sleep` containers each (default 3). Prints the first
// ListContainerStats after the containers started (nothing read yet), then ListContainerStats,
// ListPodSandboxStats, ContainerStats and PodSandboxStats polled back to back, then
// ListContainerStats polled every --poll-gap-ms (as kubelet and `crictl stats` do). Then, with
// --server-pid, the server's CPU time over --idle-seconds right after the calls and again from
// --quiet-seconds after them (what keeping stats fresh costs, while asked and once not), and one
// more ListContainerStats. With --server-pid it also prints the server's threads, open
// descriptors and RSS before the pods, with them all running, and 12 s after their removal.
// Whatever the tool made is removed at the end, also after failures and on SIGINT or SIGTERM.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cli/client.h"
#include "latency.h"

namespace {

namespace v1 = runtime::v1;
using berth::bench::check;
using berth::bench::interrupted;
using berth::bench::measure;
using berth::bench::printSummary;

// utime + stime of `pid` in clock ticks, or -1.
long cpuTicks(int pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t paren = text.rfind(')');
  if (paren == std::string::npos) return -1;
  std::istringstream fields(text.substr(paren + 2));
  std::string skip;
  for (int i = 3; i < 14; ++i) fields >> skip;  // state .. cmajflt
  long utime = 0, stime = 0;
  fields >> utime >> stime;
  return fields ? utime + stime : -1;
}

// Threads, open descriptors and RSS of `pid`, printed as one line.
void printFootprint(int pid, const std::string& when) {
  if (pid <= 0) return;
  berth::bench::Footprint f = berth::bench::footprintOf(pid);
  std::printf("server %s: %ld threads, %ld open descriptors, RSS %.1f MiB\n", when.c_str(),
              f.threads, f.fds, f.rss_mib);
  std::fflush(stdout);
}

// The pods and containers of one run; the destructor removes what is left of them.
class Workload {
 public:
  Workload(const berth::cli::GlobalOptions& options, std::string image)
      : client_(options), image_(std::move(image)) {}
  ~Workload() { cleanUp(); }

  berth::cli::Client& client() { return client_; }
  const std::vector<std::string>& pods() const { return pods_; }
  const std::vector<std::string>& containers() const { return containers_; }

  bool pull() {
    v1::PullImageRequest req;
    req.mutable_image()->set_image(image_);
    v1::PullImageResponse resp;
    grpc::ClientContext ctx;
    return check("PullImage", client_.image().PullImage(&ctx, req, &resp));
  }

  bool addPod(int n, int containers) {
    v1::PodSandboxConfig pod;
    std::string name = absl::StrCat("bench-stats-", ::getpid(), "-", n);
    pod.mutable_metadata()->set_name(name);
    pod.mutable_metadata()->set_namespace_("bench");
    pod.mutable_metadata()->set_uid(name);
    pod.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(
        v1::NODE);
    const std::string pod_id = berth::bench::runPod(client_, pod);
    if (pod_id.empty()) return false;
    pods_.push_back(pod_id);
    for (int k = 0; k < containers && !interrupted(); ++k) {
      v1::CreateContainerRequest req;
      req.set_pod_sandbox_id(pod_id);
      auto* c = req.mutable_config();
      c->mutable_metadata()->set_name(absl::StrCat("c", k));
      c->mutable_image()->set_image(image_);
      c->add_command("sleep");
      c->add_command("3600");
      *req.mutable_sandbox_config() = pod;
      v1::CreateContainerResponse resp;
      auto cctx = client_.context();
      if (!check("CreateContainer", client_.runtime().CreateContainer(cctx.get(), req, &resp))) {
        return false;
      }
      v1::StartContainerRequest start;
      start.set_container_id(resp.container_id());
      v1::StartContainerResponse start_resp;
      auto sctx = client_.context();
      if (!check("StartContainer",
                 client_.runtime().StartContainer(sctx.get(), start, &start_resp))) {
        return false;
      }
      containers_.push_back(resp.container_id());
    }
    return true;
  }

  // Every pod and container, with its stats; false on an error or a short answer.
  bool listContainerStats() {
    v1::ListContainerStatsResponse resp;
    auto ctx = client_.context();
    if (!check("ListContainerStats", client_.runtime().ListContainerStats(ctx.get(), {}, &resp))) {
      return false;
    }
    size_t with_cpu = 0;
    for (const auto& s : resp.stats()) with_cpu += s.has_cpu() && s.has_memory();
    if (with_cpu < containers_.size() && !short_reported_) {
      short_reported_ = true;
      std::fprintf(stderr, "ListContainerStats: %zu of %zu containers with cpu and memory\n",
                   with_cpu, containers_.size());
    }
    return with_cpu >= containers_.size();
  }

  bool listPodSandboxStats() {
    v1::ListPodSandboxStatsResponse resp;
    auto ctx = client_.context();
    return check("ListPodSandboxStats",
                 client_.runtime().ListPodSandboxStats(ctx.get(), {}, &resp)) &&
           static_cast<size_t>(resp.stats_size()) >= pods_.size();
  }

  bool containerStats(const std::string& id) {
    v1::ContainerStatsRequest req;
    req.set_container_id(id);
    v1::ContainerStatsResponse resp;
    auto ctx = client_.context();
    return check("ContainerStats", client_.runtime().ContainerStats(ctx.get(), req, &resp)) &&
           resp.stats().has_cpu();
  }

  bool podSandboxStats(const std::string& id) {
    v1::PodSandboxStatsRequest req;
    req.set_pod_sandbox_id(id);
    v1::PodSandboxStatsResponse resp;
    auto ctx = client_.context();
    return check("PodSandboxStats", client_.runtime().PodSandboxStats(ctx.get(), req, &resp)) &&
           resp.stats().linux().has_cpu();
  }

  void cleanUp() {
    for (const std::string& id : pods_) {
      v1::StopPodSandboxRequest stop;
      stop.set_pod_sandbox_id(id);
      v1::StopPodSandboxResponse stop_resp;
      auto ctx = client_.context();
      check("StopPodSandbox", client_.runtime().StopPodSandbox(ctx.get(), stop, &stop_resp));
      v1::RemovePodSandboxRequest rm;
      rm.set_pod_sandbox_id(id);
      v1::RemovePodSandboxResponse rm_resp;
      auto rctx = client_.context();
      if (!check("RemovePodSandbox",
                 client_.runtime().RemovePodSandbox(rctx.get(), rm, &rm_resp))) {
        std::fprintf(stderr, "pod %s was not removed\n", id.c_str());
      }
    }
    pods_.clear();
    containers_.clear();
  }

 private:
  berth::cli::Client client_;
  std::string image_;
  std::vector<std::string> pods_;
  std::vector<std::string> containers_;
  bool short_reported_ = false;
};

bool run(Workload& w, int pods, int per_pod, int polls, int gap_ms, int idle_s, int quiet_s,
         int server_pid) {
  printFootprint(server_pid, "before the pods");
  absl::Time begin = absl::Now();
  for (int i = 0; i < pods && !interrupted(); ++i) {
    if (!w.addPod(i, per_pod)) return false;
  }
  if (interrupted()) return false;
  std::printf("%zu pods, %zu running containers started in %.1f s\n", w.pods().size(),
              w.containers().size(), absl::ToDoubleSeconds(absl::Now() - begin));
  std::fflush(stdout);
  printFootprint(server_pid, absl::StrCat("with ", w.pods().size(), " pods x ", per_pod,
                                          " running containers"));
  const std::string n = absl::StrCat(" (", w.containers().size(), ")");
  // The first call finds nothing read yet.
  printSummary(
      measure("ListContainerStats first" + n, 0, 1, [&] { return w.listContainerStats(); }));
  printSummary(measure("ListContainerStats" + n, 10, polls,
                       [&] { return !interrupted() && w.listContainerStats(); }));
  printSummary(measure(absl::StrCat("ListPodSandboxStats (", w.pods().size(), ")"), 10, polls,
                       [&] { return !interrupted() && w.listPodSandboxStats(); }));
  size_t i = 0;
  printSummary(measure("ContainerStats", 10, polls, [&] {
    return !interrupted() && w.containerStats(w.containers()[i++ % w.containers().size()]);
  }));
  i = 0;
  printSummary(measure("PodSandboxStats", 10, polls, [&] {
    return !interrupted() && w.podSandboxStats(w.pods()[i++ % w.pods().size()]);
  }));
  // Spaced calls: each finds readings up to gap_ms old, as kubelet's and crictl's polls do.
  int spaced = std::max(1, polls / 30);
  printSummary(measure(
      absl::StrCat("ListContainerStats/", gap_ms, "ms") + n, 0, spaced,
      [&] { return !interrupted() && w.listContainerStats(); },
      [&] { std::this_thread::sleep_for(std::chrono::milliseconds(gap_ms)); }));
  if (idle_s <= 0 || interrupted()) return !interrupted();
  // What keeping stats fresh costs the server while calls come, then once they stopped long
  // enough for it to notice, and the first call after that.
  auto serverCpu = [&](const char* what) {
    long before = server_pid > 0 ? cpuTicks(server_pid) : -1;
    std::this_thread::sleep_for(std::chrono::seconds(idle_s));
    long after = server_pid > 0 ? cpuTicks(server_pid) : -1;
    if (before < 0 || after < 0) return;
    double ms = static_cast<double>(after - before) * 1000.0 / ::sysconf(_SC_CLK_TCK);
    std::printf("server CPU over %d s %s: %.0f ms (%.1f%% of a core)\n", idle_s, what, ms,
                ms / (10.0 * idle_s));
    std::fflush(stdout);
  };
  serverCpu("right after the calls");
  if (quiet_s > idle_s && !interrupted()) {
    std::this_thread::sleep_for(std::chrono::seconds(quiet_s - idle_s));
    serverCpu(absl::StrCat("from ", quiet_s, " s after the calls").c_str());
    printSummary(measure(absl::StrCat("ListContainerStats after ", quiet_s + idle_s, " s") + n, 0,
                         1, [&] { return !interrupted() && w.listContainerStats(); }));
  }
  return !interrupted();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"stats_latency: the stats RPCs at node density"};
  berth::cli::GlobalOptions options;
  options.timeout_seconds = 60;
  int pods = 110;
  int per_pod = 3;
  int polls = 300;
  int gap_ms = 1000;
  int idle_s = 10;
  int quiet_s = 40;
  int server_pid = 0;
  std::string image;
  app.add_option("-r,--runtime-endpoint", options.endpoint, "CRI endpoint")->capture_default_str();
  app.add_option("-n,--pods", pods, "host-network pods")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("-c,--containers-per-pod", per_pod, "sleep containers in each pod")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--polls", polls, "calls per measured RPC")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--poll-gap-ms", gap_ms, "gap between spaced ListContainerStats calls")
      ->capture_default_str();
  app.add_option("--server-pid", server_pid, "the server's pid, to print its CPU time");
  app.add_option("--idle-seconds", idle_s, "spell over which the server's CPU time is printed")
      ->capture_default_str();
  app.add_option("--quiet-seconds", quiet_s,
                 "second spell this long after the calls, then one more call (0: none)")
      ->capture_default_str();
  app.add_option("--image", image, "image with sleep (e.g. busybox)")->required();
  CLI11_PARSE(app, argc, argv);

  berth::bench::catchInterrupts();

  std::printf("endpoint %s, image %s, %d pods x %d containers\n", options.endpoint.c_str(),
              image.c_str(), pods, per_pod);
  std::fflush(stdout);
  bool ok = false;
  try {
    Workload w(options, image);
    ok = w.pull() && run(w, pods, per_pod, polls, gap_ms, idle_s, quiet_s, server_pid);
    w.cleanUp();
    // The stats collector lets go of removed containers' cgroup files on its next round.
    if (server_pid > 0 && !interrupted()) std::this_thread::sleep_for(std::chrono::seconds(12));
    printFootprint(server_pid, "12 s after removing them");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "stats_latency: %s\n", e.what());
  }
  if (interrupted()) std::fprintf(stderr, "interrupted\n");
  return ok && !interrupted() ? 0 : 1;
}
