// What berthd exports besides the per-RPC metrics: image pulls, pods, containers and shims.
#include "daemon/daemon_metrics.h"

#include <array>

#include "common/logging.h"
#include "metrics/process_memory.h"

namespace berth::daemon {
namespace {

std::vector<double> pullBuckets() {
  return {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800};
}

class PullMetrics final : public image::PullObserver {
 public:
  explicit PullMetrics(metrics::Registry& r)
      : bytes_(r.counter("berth_image_pull_bytes_total",
                         "Bytes of image blobs downloaded from registries.")
                   .get()),
        duration_(r.histogram("berth_image_pull_duration_seconds",
                              "Time taken by successful image pulls.", {}, pullBuckets())
                      .get()),
        success_(r.counter("berth_image_pulls_total",
                           "Image pulls, by result (success or failure).", {"result"})
                     .withLabels({"success"})),
        failure_(r.counter("berth_image_pulls_total",
                           "Image pulls, by result (success or failure).", {"result"})
                     .withLabels({"failure"})) {}

  void blobBytes(uint64_t n) override { bytes_.inc(static_cast<double>(n)); }
  void pullDone(bool ok, absl::Duration took) override {
    if (ok) {
      success_.inc();
      duration_.observe(absl::ToDoubleSeconds(took));
    } else {
      failure_.inc();
    }
  }

 private:
  metrics::Counter& bytes_;
  metrics::Histogram& duration_;
  metrics::Counter& success_;
  metrics::Counter& failure_;
};

// Counts of `items` by state, every state present (0 included) so series never vanish.
template <typename State, size_t N, typename Items>
void countByState(const std::array<State, N>& states, const Items& items,
                  std::vector<metrics::CallbackSample>& out) {
  std::array<double, N> counts{};
  for (const auto& item : items) {
    for (size_t i = 0; i < N; ++i) {
      if (item->state == states[i]) ++counts[i];
    }
  }
  for (size_t i = 0; i < N; ++i) {
    out.push_back({.labels = {std::string(store::toString(states[i]))}, .value = counts[i]});
  }
}

}  // namespace

DaemonMetrics::DaemonMetrics()
    : rpc_(registry_), pulls_(std::make_unique<PullMetrics>(registry_)) {}

DaemonMetrics::~DaemonMetrics() { stopServing(); }

void DaemonMetrics::watch(const store::Store& store, std::function<std::vector<int>()> shim_pids,
                          std::string proc_root) {
  registry_.callback("berth_pods", "Pod sandboxes known to berthd, by state.",
                     metrics::Type::kGauge, {"state"},
                     [&store](std::vector<metrics::CallbackSample>& out) {
                       static constexpr std::array kStates = {
                           store::SandboxState::kCreated, store::SandboxState::kReady,
                           store::SandboxState::kNotReady, store::SandboxState::kUnknown};
                       countByState(kStates, store.listSandboxes(), out);
                     });
  registry_.callback("berth_containers", "Containers known to berthd, by state.",
                     metrics::Type::kGauge, {"state"},
                     [&store](std::vector<metrics::CallbackSample>& out) {
                       static constexpr std::array kStates = {
                           store::ContainerState::kCreated, store::ContainerState::kRunning,
                           store::ContainerState::kExited, store::ContainerState::kUnknown};
                       countByState(kStates, store.listContainers(), out);
                     });
  // Shims berthd is connected to whose process is alive; RSS from /proc/<pid>/statm.
  auto shims = std::make_shared<std::function<std::vector<uint64_t>()>>(
      [pids = std::move(shim_pids), proc = std::move(proc_root)] {
        std::vector<uint64_t> rss;
        for (int pid : pids()) {
          if (auto bytes = metrics::residentBytes(proc, pid)) rss.push_back(*bytes);
        }
        return rss;
      });
  registry_.callback("berth_shims", "Running berth-shim processes (one per pod).",
                     metrics::Type::kGauge, {}, [shims](std::vector<metrics::CallbackSample>& out) {
                       out.push_back({.value = static_cast<double>((*shims)().size())});
                     });
  registry_.callback("berth_shim_memory_bytes",
                     "Resident memory of all berth-shim processes, in bytes.",
                     metrics::Type::kGauge, {}, [shims](std::vector<metrics::CallbackSample>& out) {
                       double sum = 0;
                       for (uint64_t b : (*shims)()) sum += static_cast<double>(b);
                       out.push_back({.value = sum});
                     });
}

absl::Status DaemonMetrics::serve(const std::string& address) {
  if (address.empty()) return absl::OkStatus();
  absl::StatusOr<metrics::ListenAddress> addr = metrics::parseListenAddress(address);
  if (!addr.ok()) return addr.status();
  auto server = metrics::MetricsHttpServer::start(*addr, [this] { return registry_.render(); });
  if (!server.ok()) return server.status();
  server_ = std::move(*server);
  logging::get("metrics")->info(
      "serving Prometheus metrics on http://{}:{}/metrics",
      addr->host.find(':') == std::string::npos ? addr->host : "[" + addr->host + "]",
      server_->port());
  return absl::OkStatus();
}

void DaemonMetrics::stopServing() { server_.reset(); }

absl::Status DaemonMetrics::moveTo(const std::string& old_address, const std::string& address) {
  stopServing();  // first: the new address may be the old port on another host
  absl::Status st = serve(address);
  if (!st.ok()) (void)serve(old_address);
  return st;
}

}  // namespace berth::daemon
