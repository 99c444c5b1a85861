// CRI stats RPCs (ContainerStats, ListContainerStats, PodSandboxStats, ListPodSandboxStats,
// ListMetricDescriptors, ListPodSandboxMetrics and their Stream forms), answered from the stats
// collector's cache. Before answering, the set of tracked targets is brought in line with the
// store (running containers, ready pods; a walk over memory), and the collector makes the CPU
// and memory of what is answered at most max_age old (usually already so; otherwise it reads
// cgroup files in place). A call never waits on a shim, the OCI runtime or a disk walk.
#pragma once

#include <grpcpp/support/sync_stream.h>

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "image/snapshot.h"
#include "runtime/v1/api.h"
#include "stats/collector.h"
#include "store/store.h"

namespace berth::cri {

namespace v1 = ::runtime::v1;

// Thread-safe.
class StatsHandlers {
 public:
  StatsHandlers(store::Store& store, image::OverlaySnapshotter& snapshots,
                stats::Collector& collector)
      : store_(store), snapshots_(snapshots), collector_(collector) {}

  [[nodiscard]] absl::Status containerStats(const v1::ContainerStatsRequest& req,
                                            v1::ContainerStatsResponse* resp);
  [[nodiscard]] absl::Status listContainerStats(const v1::ListContainerStatsRequest& req,
                                                v1::ListContainerStatsResponse* resp);
  [[nodiscard]] absl::Status streamContainerStats(
      const v1::StreamContainerStatsRequest& req,
      grpc::ServerWriter<v1::StreamContainerStatsResponse>* w);
  [[nodiscard]] absl::Status podSandboxStats(const v1::PodSandboxStatsRequest& req,
                                             v1::PodSandboxStatsResponse* resp);
  [[nodiscard]] absl::Status listPodSandboxStats(const v1::ListPodSandboxStatsRequest& req,
                                                 v1::ListPodSandboxStatsResponse* resp);
  [[nodiscard]] absl::Status streamPodSandboxStats(
      const v1::StreamPodSandboxStatsRequest& req,
      grpc::ServerWriter<v1::StreamPodSandboxStatsResponse>* w);
  // The metrics RPCs (pod_sandbox_metrics.cc): cAdvisor-named metrics of ready pods and their
  // running containers, from the same cache.
  [[nodiscard]] absl::Status listMetricDescriptors(const v1::ListMetricDescriptorsRequest& req,
                                                   v1::ListMetricDescriptorsResponse* resp);
  [[nodiscard]] absl::Status listPodSandboxMetrics(const v1::ListPodSandboxMetricsRequest& req,
                                                   v1::ListPodSandboxMetricsResponse* resp);
  [[nodiscard]] absl::Status streamPodSandboxMetrics(
      const v1::StreamPodSandboxMetricsRequest& req,
      grpc::ServerWriter<v1::StreamPodSandboxMetricsResponse>* w);

 private:
  // Tracks what runs and stops tracking what is gone.
  void sync();
  // Freshens the cgroup part of the containers, or of the pods and their running containers,
  // about to be answered.
  void refresh(const std::vector<store::ContainerPtr>& containers);
  void refresh(const std::vector<store::SandboxPtr>& pods);
  std::vector<store::ContainerPtr> containers(const v1::ContainerStatsFilter* f) const;
  std::vector<store::SandboxPtr> pods(const v1::PodSandboxStatsFilter* f) const;
  void toCri(const store::ContainerRecord& r, v1::ContainerStats* out) const;
  void toCri(const store::SandboxRecord& r, v1::PodSandboxStats* out) const;
  void toCri(const store::SandboxRecord& r, v1::PodSandboxMetrics* out) const;

  store::Store& store_;
  image::OverlaySnapshotter& snapshots_;
  stats::Collector& collector_;
  absl::Mutex mu_;  // serialises sync()
  std::map<std::string, stats::Target> tracked_ ABSL_GUARDED_BY(mu_);
};

}  // namespace berth::cri
