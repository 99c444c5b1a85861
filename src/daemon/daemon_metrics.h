// berthd's Prometheus metrics: the registry, the CRI and image pull counters fed by their
// components, the gauges computed at each scrape, and the /metrics endpoint ([metrics]).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "cri/rpc_metrics.h"
#include "image/image_manager.h"
#include "metrics/http_server.h"
#include "metrics/registry.h"
#include "store/store.h"

namespace berth::daemon {

// Owned by the Daemon and created first, so that every component it feeds can keep a pointer
// to it. watch(), serve() and stopServing() are called from the main thread.
class DaemonMetrics {
 public:
  DaemonMetrics();
  ~DaemonMetrics();

  metrics::Registry& registry() { return registry_; }
  cri::RpcMetrics& rpc() { return rpc_; }
  image::PullObserver* pullObserver() { return pulls_.get(); }

  // Registers the gauges computed at scrape time: pods and containers by state (from the
  // store's memory), and the running shims with their resident memory (from /proc). Both
  // `store` and whatever `shim_pids` uses must stay alive until stopServing().
  void watch(const store::Store& store, std::function<std::vector<int>()> shim_pids,
             std::string proc_root = "/proc");

  // Serves GET /metrics on `address` (metrics.address); does nothing when it is empty.
  [[nodiscard]] absl::Status serve(const std::string& address);
  // Stops the endpoint; no callback runs afterwards. Idempotent.
  void stopServing();
  // Serves on `address` instead (a reload; empty: off). When the new address cannot be served
  // the old one is served again and the error returned.
  [[nodiscard]] absl::Status moveTo(const std::string& old_address, const std::string& address);
  // The endpoint's port, 0 when not serving.
  uint16_t port() const { return server_ ? server_->port() : 0; }

 private:
  metrics::Registry registry_;
  cri::RpcMetrics rpc_;
  std::unique_ptr<image::PullObserver> pulls_;
  std::unique_ptr<metrics::MetricsHttpServer> server_;
};

}  // namespace berth::daemon
