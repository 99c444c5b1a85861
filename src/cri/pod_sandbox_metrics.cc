// ListMetricDescriptors, ListPodSandboxMetrics and StreamPodSandboxMetrics, from the stats
// collector's cache (freshened first) like the stats RPCs.
#include "cri/cadvisor_metrics.h"
#include "cri/stats_handlers.h"
#include "cri/stream_batches.h"

namespace berth::cri {

void StatsHandlers::toCri(const store::SandboxRecord& r, v1::PodSandboxMetrics* out) const {
  out->set_pod_sandbox_id(r.id);
  if (std::optional<stats::Sample> s = collector_.latest(r.id)) {
    // A pod on the host's network has no network of its own to report.
    if (r.netns_path.empty()) s->network.reset();
    appendPodMetrics(*s, {.id = r.id, .name = r.metadata.name, .image = ""},
                     out->mutable_metrics());
  }
  for (const auto& c : store_.listContainers(r.id)) {
    if (c->state != store::ContainerState::kRunning) continue;
    v1::ContainerMetrics* cm = out->add_container_metrics();
    cm->set_container_id(c->id);
    if (std::optional<stats::Sample> s = collector_.latest(c->id)) {
      appendContainerMetrics(*s, {.id = c->id, .name = c->metadata.name, .image = c->image_ref},
                             specLimits(c->spec_json), cm->mutable_metrics());
    }
  }
}

absl::Status StatsHandlers::listMetricDescriptors(const v1::ListMetricDescriptorsRequest&,
                                                  v1::ListMetricDescriptorsResponse* resp) {
  for (const auto& d : metricDescriptors()) *resp->add_descriptors() = d;
  return absl::OkStatus();
}

absl::Status StatsHandlers::listPodSandboxMetrics(const v1::ListPodSandboxMetricsRequest&,
                                                  v1::ListPodSandboxMetricsResponse* resp) {
  sync();
  std::vector<store::SandboxPtr> list = pods(nullptr);
  refresh(list);
  for (const auto& p : list) toCri(*p, resp->add_pod_metrics());
  return absl::OkStatus();
}

absl::Status StatsHandlers::streamPodSandboxMetrics(
    const v1::StreamPodSandboxMetricsRequest&,
    grpc::ServerWriter<v1::StreamPodSandboxMetricsResponse>* w) {
  sync();
  std::vector<store::SandboxPtr> list = pods(nullptr);
  refresh(list);
  return writeInBatches("StreamPodSandboxMetrics", list, w,
                        [this](const store::SandboxPtr& p, v1::StreamPodSandboxMetricsResponse& b) {
                          toCri(*p, b.add_pod_sandbox_metrics());
                        });
}

}  // namespace berth::cri
