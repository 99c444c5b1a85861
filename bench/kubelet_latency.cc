// The calls kubelet makes, timed against any CRI endpoint, for side-by-side runs
// (bench/side_by_side.sh runs it against berthd and containerd in alternating rounds).
// N pods (default 50; host network, or with --pod-network the runtime's CNI network) with M `sleep`
// containers each (default 3), one of them exited; then:
//   Version                   the client's round trip (the floor of every call)
//   RunPodSandbox             per pod
//   CreateStartContainer      CreateContainer + StartContainer, per container
//   PodStatusSequence         kubelet's per-pod status sync: PodSandboxStatus, ListContainers
//                             for the pod, ContainerStatus of each container (2 + M calls)
//   Relist                    ListPodSandbox + ListContainers (2 calls)
//   ExecSync                  `true` in a running container
//   StopPodSandbox, RemovePodSandbox   per pod
// and, with --server-pid, the server's threads, descriptors and RSS with everything running.
// Each measure is printed for people (printSummary) and as one machine line:
//   RESULT <name> <p50 µs> <p99 µs> <calls per sample>
// Whatever the tool made is removed at the end, also after failures and on SIGINT or SIGTERM.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "cli/client.h"
#include "latency.h"

namespace {

namespace v1 = runtime::v1;
using berth::bench::check;
using berth::bench::interrupted;
using berth::bench::measure;
using berth::bench::printSummary;
using berth::bench::Summary;

void result(const Summary& s, int calls) {
  printSummary(s);
  std::printf("RESULT %s %.1f %.1f %d\n", s.name.c_str(), absl::ToDoubleMicroseconds(s.p50),
              absl::ToDoubleMicroseconds(s.p99), calls);
  std::fflush(stdout);
}

void footprint(int pid) {
  if (pid <= 0) return;
  berth::bench::Footprint f = berth::bench::footprintOf(pid);
  std::printf("FOOTPRINT threads %ld fds %ld rss_mib %.1f\n", f.threads, f.fds, f.rss_mib);
}

class Run {
 public:
  Run(const berth::cli::GlobalOptions& options, std::string image, bool pod_network, bool seccomp)
      : client_(options), image_(std::move(image)), pod_network_(pod_network), seccomp_(seccomp) {}
  ~Run() { cleanUp(); }

  bool pull() { return pull(image_); }
  bool pull(const std::string& ref) {
    v1::PullImageRequest req;
    req.mutable_image()->set_image(ref);
    v1::PullImageResponse resp;
    grpc::ClientContext ctx;
    return check("PullImage", client_.image().PullImage(&ctx, req, &resp));
  }
  bool removeImage(const std::string& ref) {
    v1::RemoveImageRequest req;
    req.mutable_image()->set_image(ref);
    v1::RemoveImageResponse resp;
    auto ctx = client_.context();
    return check("RemoveImage", client_.image().RemoveImage(ctx.get(), req, &resp));
  }

  v1::PodSandboxConfig podConfig(int n) const {
    v1::PodSandboxConfig pod;
    std::string name = absl::StrCat("bench-kubelet-", ::getpid(), "-", n);
    pod.mutable_metadata()->set_name(name);
    pod.mutable_metadata()->set_namespace_("bench");
    pod.mutable_metadata()->set_uid(name);
    pod.set_log_directory(absl::StrCat("/tmp/bench-kubelet-logs/", name));
    pod.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(
        pod_network_ ? v1::POD : v1::NODE);
    return pod;
  }

  bool runPod(int n) {
    v1::PodSandboxConfig config = podConfig(n);
    std::string id = berth::bench::runPod(client_, config);
    if (id.empty()) return false;
    pods_.push_back(id);
    configs_.push_back(std::move(config));
    containers_.emplace_back();
    return true;
  }

  // Container k of the pod last run; `exits` makes it one that exits at once.
  bool createAndStart(int k, bool exits) {
    v1::CreateContainerRequest req;
    req.set_pod_sandbox_id(pods_.back());
    auto* c = req.mutable_config();
    c->mutable_metadata()->set_name(absl::StrCat("c", k));
    c->mutable_image()->set_image(image_);
    c->set_log_path(absl::StrCat("c", k, ".log"));
    if (seccomp_) {  // as kubelet sends `seccompProfile: RuntimeDefault` (PSS restricted)
      c->mutable_linux()->mutable_security_context()->mutable_seccomp()->set_profile_type(
          v1::SecurityProfile::RuntimeDefault);
    }
    if (exits) {
      c->add_command("true");
    } else {
      c->add_command("sleep");
      c->add_command("3600");
    }
    *req.mutable_sandbox_config() = configs_.back();
    v1::CreateContainerResponse resp;
    auto ctx = client_.context();
    if (!check("CreateContainer", client_.runtime().CreateContainer(ctx.get(), req, &resp))) {
      return false;
    }
    containers_.back().push_back(resp.container_id());
    v1::StartContainerRequest start;
    start.set_container_id(resp.container_id());
    v1::StartContainerResponse start_resp;
    auto sctx = client_.context();
    return check("StartContainer",
                 client_.runtime().StartContainer(sctx.get(), start, &start_resp));
  }

  bool version() {
    v1::VersionResponse resp;
    auto ctx = client_.context();
    return check("Version", client_.runtime().Version(ctx.get(), {}, &resp));
  }

  // What kubelet's pod worker asks for one pod each sync.
  bool podStatusSequence(size_t i) {
    v1::PodSandboxStatusRequest ps;
    ps.set_pod_sandbox_id(pods_[i]);
    v1::PodSandboxStatusResponse ps_resp;
    auto ctx = client_.context();
    if (!check("PodSandboxStatus", client_.runtime().PodSandboxStatus(ctx.get(), ps, &ps_resp))) {
      return false;
    }
    v1::ListContainersRequest lc;
    lc.mutable_filter()->set_pod_sandbox_id(pods_[i]);
    v1::ListContainersResponse lc_resp;
    auto lctx = client_.context();
    if (!check("ListContainers", client_.runtime().ListContainers(lctx.get(), lc, &lc_resp))) {
      return false;
    }
    for (const auto& c : lc_resp.containers()) {
      v1::ContainerStatusRequest cs;
      cs.set_container_id(c.id());
      v1::ContainerStatusResponse cs_resp;
      auto cctx = client_.context();
      if (!check("ContainerStatus", client_.runtime().ContainerStatus(cctx.get(), cs, &cs_resp))) {
        return false;
      }
    }
    return lc_resp.containers_size() == static_cast<int>(containers_[i].size());
  }

  // kubelet's PLEG relist.
  bool relist() {
    v1::ListPodSandboxResponse pods;
    auto ctx = client_.context();
    if (!check("ListPodSandbox", client_.runtime().ListPodSandbox(ctx.get(), {}, &pods))) {
      return false;
    }
    v1::ListContainersResponse containers;
    auto cctx = client_.context();
    return check("ListContainers", client_.runtime().ListContainers(cctx.get(), {}, &containers)) &&
           static_cast<size_t>(pods.items_size()) >= pods_.size();
  }

  bool execSync(const std::string& id) {
    v1::ExecSyncRequest req;
    req.set_container_id(id);
    req.add_cmd("true");
    req.set_timeout(10);
    v1::ExecSyncResponse resp;
    auto ctx = client_.context();
    return check("ExecSync", client_.runtime().ExecSync(ctx.get(), req, &resp)) &&
           resp.exit_code() == 0;
  }

  bool stopPod(size_t i) {
    v1::StopPodSandboxRequest req;
    req.set_pod_sandbox_id(pods_[i]);
    v1::StopPodSandboxResponse resp;
    auto ctx = client_.context();
    return check("StopPodSandbox", client_.runtime().StopPodSandbox(ctx.get(), req, &resp));
  }

  bool removePod(size_t i) {
    v1::RemovePodSandboxRequest req;
    req.set_pod_sandbox_id(pods_[i]);
    v1::RemovePodSandboxResponse resp;
    auto ctx = client_.context();
    bool ok = check("RemovePodSandbox", client_.runtime().RemovePodSandbox(ctx.get(), req, &resp));
    if (ok) removed_.push_back(i);
    return ok;
  }

  size_t pods() const { return pods_.size(); }
  const std::vector<std::vector<std::string>>& containers() const { return containers_; }

  void cleanUp() {
    for (size_t i = 0; i < pods_.size(); ++i) {
      if (std::find(removed_.begin(), removed_.end(), i) != removed_.end()) continue;
      (void)stopPod(i);
      if (!removePod(i)) std::fprintf(stderr, "pod %s was not removed\n", pods_[i].c_str());
    }
    pods_.clear();
    removed_.clear();
  }

 private:
  berth::cli::Client client_;
  std::string image_;
  bool pod_network_ = false;
  bool seccomp_ = false;
  std::vector<std::string> pods_;
  std::vector<v1::PodSandboxConfig> configs_;
  std::vector<std::vector<std::string>> containers_;
  std::vector<size_t> removed_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"kubelet's CRI calls, timed"};
  berth::cli::GlobalOptions options;
  app.add_option("-r,--runtime-endpoint", options.endpoint, "CRI endpoint")->capture_default_str();
  std::string image;
  app.add_option("--image", image, "image with sleep and true (busybox)")->required();
  int pods = 50, containers = 3, sequences = 5, server_pid = 0;
  app.add_option("-n,--pods", pods, "pods");
  app.add_option("-m,--containers", containers, "containers per pod (the last one exits)");
  app.add_option("--sequences", sequences, "status sequences per pod");
  bool pod_network = false;
  app.add_flag("--pod-network", pod_network, "pods in the runtime's CNI network");
  bool seccomp = false;
  app.add_flag("--seccomp", seccomp, "containers under the runtime's default seccomp profile");
  app.add_option("--server-pid", server_pid, "the server's pid, for its footprint");
  app.add_option("--timeout", options.timeout_seconds, "seconds per call");
  std::string pull_ref;
  app.add_option("--pull", pull_ref,
                 "an image to pull (timed, one PullImage call) and remove at the end");
  CLI11_PARSE(app, argc, argv);
  berth::bench::catchInterrupts();

  Run run(options, image, pod_network, seccomp);
  if (!run.pull()) return 1;
  result(measure("Version", 20, 200, [&] { return run.version(); }), 1);
  // Pods and their containers in order (each pod's last container exits at once), each call
  // timed on its own.
  std::vector<absl::Duration> run_samples, start_samples;
  size_t run_failures = 0, start_failures = 0;
  auto timed = [](std::vector<absl::Duration>& into, size_t& failures, auto op) {
    absl::Time t0 = absl::Now();
    bool ok = op();
    if (ok) {
      into.push_back(absl::Now() - t0);
    } else {
      ++failures;
    }
    return ok;
  };
  for (int n = 0; n < pods && !interrupted(); ++n) {
    if (!timed(run_samples, run_failures, [&] { return run.runPod(n); })) return 1;
    for (int k = 0; k < containers && !interrupted(); ++k) {
      bool exits = k == containers - 1;
      if (!timed(start_samples, start_failures, [&] { return run.createAndStart(k, exits); })) {
        return 1;
      }
    }
  }
  if (interrupted()) return 1;
  result(berth::bench::summarize("RunPodSandbox", run_samples, run_failures), 1);
  result(berth::bench::summarize("CreateStartContainer", start_samples, start_failures), 2);
  absl::SleepFor(absl::Seconds(1));  // the exiting containers have exited
  footprint(server_pid);

  size_t i = 0;
  result(measure("PodStatusSequence", static_cast<int>(run.pods()),
                 sequences * static_cast<int>(run.pods()),
                 [&] { return run.podStatusSequence(i++ % run.pods()); }),
         2 + containers);
  result(measure("Relist", 10, 200, [&] { return run.relist(); }), 2);
  const std::string& running = run.containers()[0][0];
  result(measure("ExecSync", 5, 100, [&] { return run.execSync(running); }), 1);

  i = 0;
  result(
      measure("StopPodSandbox", 0, static_cast<int>(run.pods()), [&] { return run.stopPod(i++); }),
      1);
  i = 0;
  result(measure("RemovePodSandbox", 0, static_cast<int>(run.pods()),
                 [&] { return run.removePod(i++); }),
         1);
  if (!pull_ref.empty()) {
    result(measure("Pull", 0, 1, [&] { return run.pull(pull_ref); }), 1);
    if (!run.removeImage(pull_ref)) return 1;
  }
  return 0;
}
