// The CRI metrics of ListMetricDescriptors / ListPodSandboxMetrics, converted from stats
// samples. Names, types and label keys follow cAdvisor (and CRI-O's implementation of these
// RPCs) so that kubelet's /metrics/cadvisor keeps its familiar series: label keys are
// "id", "name", "image" (+ "cpu", "interface", "failure_type"/"scope" where cAdvisor has
// them); kubelet itself appends "namespace", "pod" and "container".
//
// CRI values are unsigned integers: seconds are whole seconds, as in CRI-O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "google/protobuf/repeated_field.h"
#include "runtime/v1/api.h"
#include "stats/sample.h"

namespace berth::cri {

namespace v1 = ::runtime::v1;

// Every metric ListPodSandboxMetrics may report, sorted by name.
const std::vector<v1::MetricDescriptor>& metricDescriptors();

// Values of the base label keys.
struct MetricLabels {
  std::string id;     // container id, or pod sandbox id for pod-level metrics
  std::string name;   // container name, or the pod's name for pod-level metrics
  std::string image;  // the container's image; "" for pod-level metrics (as cAdvisor's pod cgroups)
};

// Resource settings from a container's OCI spec (linux.resources), for container_spec_*.
struct SpecLimits {
  uint64_t memory_limit_bytes = 0;  // 0: no limit (cAdvisor's convention)
  int64_t cpu_quota = 0;            // 0: no quota
  uint64_t cpu_period = 0;
  std::optional<uint64_t> cpu_shares;
};
// Reads them from the spec's JSON text; missing or malformed parts stay at their defaults.
SpecLimits specLimits(const std::string& spec_json);

using MetricList = google::protobuf::RepeatedPtrField<v1::Metric>;

// A running container's metrics from its sample: CPU, memory, processes, writable layer, and
// spec limits.
void appendContainerMetrics(const stats::Sample& sample, const MetricLabels& labels,
                            const SpecLimits& spec, MetricList* out);
// A ready pod's own metrics from the sample of its cgroup and network namespace: CPU, memory,
// processes and one set of network counters per interface.
void appendPodMetrics(const stats::Sample& sample, const MetricLabels& labels, MetricList* out);

}  // namespace berth::cri
