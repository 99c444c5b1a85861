// Round-trip latency of the CRI calls kubelet makes most often, against any CRI endpoint.
#include <cstdio>

#include "CLI/CLI.hpp"
#include "cli/client.h"
#include "latency.h"

int main(int argc, char** argv) {
  CLI::App app{"cri_latency: p50/p99 of Version, Status and RuntimeConfig"};
  berth::cli::GlobalOptions options;
  int iterations = 2000;
  app.add_option("-r,--runtime-endpoint", options.endpoint, "CRI endpoint")->capture_default_str();
  app.add_option("-n,--iterations", iterations, "calls per RPC")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  berth::cli::Client client(options);
  auto& rt = client.runtime();
  std::printf("endpoint %s, %d calls per RPC, one client thread\n", options.endpoint.c_str(),
              iterations);
  berth::bench::printSummary(berth::bench::measure("Version", 50, iterations, [&] {
    runtime::v1::VersionResponse r;
    auto ctx = client.context();
    return rt.Version(ctx.get(), {}, &r).ok();
  }));
  berth::bench::printSummary(berth::bench::measure("Status", 50, iterations, [&] {
    runtime::v1::StatusResponse r;
    auto ctx = client.context();
    return rt.Status(ctx.get(), {}, &r).ok();
  }));
  berth::bench::printSummary(berth::bench::measure("Status(verbose)", 50, iterations, [&] {
    runtime::v1::StatusRequest req;
    req.set_verbose(true);
    runtime::v1::StatusResponse r;
    auto ctx = client.context();
    return rt.Status(ctx.get(), req, &r).ok();
  }));
  berth::bench::printSummary(berth::bench::measure("RuntimeConfig", 50, iterations, [&] {
    runtime::v1::RuntimeConfigResponse r;
    auto ctx = client.context();
    return rt.RuntimeConfig(ctx.get(), {}, &r).ok();
  }));
  return 0;
}
