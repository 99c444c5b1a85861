// Pod lifecycle latency against any CRI endpoint: RunPodSandbox, PodSandboxStatus,
// StopPodSandbox and RemovePodSandbox over N host-network pods, and ListPodSandbox with N pods.
#include <cstdio>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "cli/client.h"
#include "latency.h"

int main(int argc, char** argv) {
  CLI::App app{"pod_latency: p50/p99 of the pod sandbox RPCs"};
  berth::cli::GlobalOptions options;
  options.timeout_seconds = 60;
  int pods = 100;
  bool pod_network = false;
  app.add_option("-r,--runtime-endpoint", options.endpoint, "CRI endpoint")->capture_default_str();
  app.add_option("-n,--pods", pods, "number of pods")->capture_default_str();
  app.add_flag("--pod-network", pod_network, "POD network namespace instead of the host's");
  CLI11_PARSE(app, argc, argv);

  berth::cli::Client client(options);
  auto& rt = client.runtime();
  std::vector<std::string> ids;
  std::string run_id = std::to_string(::getpid());
  int n = 0;
  std::printf("endpoint %s, %d %s pods\n", options.endpoint.c_str(), pods,
              pod_network ? "pod-network" : "host-network");
  berth::bench::printSummary(berth::bench::measure("RunPodSandbox", 0, pods, [&] {
    runtime::v1::RunPodSandboxRequest req;
    auto* c = req.mutable_config();
    std::string name = absl::StrCat("bench-", run_id, "-", n++);
    c->mutable_metadata()->set_name(name);
    c->mutable_metadata()->set_namespace_("bench");
    c->mutable_metadata()->set_uid(name);
    c->mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(
        pod_network ? runtime::v1::POD : runtime::v1::NODE);
    runtime::v1::RunPodSandboxResponse resp;
    auto ctx = client.context();
    if (!rt.RunPodSandbox(ctx.get(), req, &resp).ok()) return false;
    ids.push_back(resp.pod_sandbox_id());
    return true;
  }));
  size_t i = 0;
  berth::bench::printSummary(berth::bench::measure("PodSandboxStatus", 0, static_cast<int>(ids.size()), [&] {
    runtime::v1::PodSandboxStatusRequest req;
    req.set_pod_sandbox_id(ids[i++ % ids.size()]);
    runtime::v1::PodSandboxStatusResponse resp;
    auto ctx = client.context();
    return rt.PodSandboxStatus(ctx.get(), req, &resp).ok();
  }));
  berth::bench::printSummary(berth::bench::measure("ListPodSandbox", 10, 1000, [&] {
    runtime::v1::ListPodSandboxResponse resp;
    auto ctx = client.context();
    return rt.ListPodSandbox(ctx.get(), {}, &resp).ok();
  }));
  i = 0;
  berth::bench::printSummary(berth::bench::measure("StopPodSandbox", 0, static_cast<int>(ids.size()), [&] {
    runtime::v1::StopPodSandboxRequest req;
    req.set_pod_sandbox_id(ids[i++]);
    runtime::v1::StopPodSandboxResponse resp;
    auto ctx = client.context();
    return rt.StopPodSandbox(ctx.get(), req, &resp).ok();
  }));
  i = 0;
  berth::bench::printSummary(berth::bench::measure("RemovePodSandbox", 0, static_cast<int>(ids.size()), [&] {
    runtime::v1::RemovePodSandboxRequest req;
    req.set_pod_sandbox_id(ids[i++]);
    runtime::v1::RemovePodSandboxResponse resp;
    auto ctx = client.context();
    return rt.RemovePodSandbox(ctx.get(), req, &resp).ok();
  }));
  return 0;
}
