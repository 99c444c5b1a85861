// CRI metrics from stats samples: descriptors, names, label values, units and spec limits.
#include "cri/cadvisor_metrics.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

namespace berth::cri {
namespace {

std::map<std::string, const v1::MetricDescriptor*> descriptorsByName() {
  std::map<std::string, const v1::MetricDescriptor*> out;
  for (const auto& d : metricDescriptors()) out[d.name()] = &d;
  return out;
}

// Every metric names a descriptor and carries one value per label key.
void expectConsistent(const MetricList& metrics) {
  auto descs = descriptorsByName();
  for (const auto& m : metrics) {
    auto it = descs.find(m.name());
    ASSERT_NE(it, descs.end()) << m.name();
    EXPECT_EQ(m.label_values_size(), it->second->label_keys_size()) << m.DebugString();
  }
}

// The value of the metric `name` whose extra label values (after id, name, image) are `extra`.
std::optional<uint64_t> valueOf(const MetricList& metrics, const std::string& name,
                                std::vector<std::string> extra = {}) {
  for (const auto& m : metrics) {
    if (m.name() != name) continue;
    std::vector<std::string> rest(m.label_values().begin() + 3, m.label_values().end());
    if (rest == extra) return m.value().value();
  }
  return std::nullopt;
}

stats::Sample sample() {
  stats::Sample s;
  s.timestamp_ns = 1'000;
  s.cpu = stats::CpuSample{.timestamp_ns = 1'000, .usage_core_nano_seconds = 2'900'000'000};
  s.memory = stats::MemorySample{.timestamp_ns = 1'000,
                                 .working_set_bytes = 300,
                                 .usage_bytes = 400,
                                 .rss_bytes = 200,
                                 .page_faults = 7,
                                 .major_page_faults = 1};
  s.process_count = 3;
  return s;
}

TEST(CadvisorMetricsTest, DescriptorsAreUniqueSortedAndStartWithBaseLabels) {
  const auto& descs = metricDescriptors();
  ASSERT_FALSE(descs.empty());
  std::set<std::string> names;
  for (size_t i = 0; i < descs.size(); ++i) {
    const auto& d = descs[i];
    EXPECT_TRUE(names.insert(d.name()).second) << d.name();
    if (i > 0) {
      EXPECT_LT(descs[i - 1].name(), d.name());
    }
    EXPECT_FALSE(d.help().empty()) << d.name();
    ASSERT_GE(d.label_keys_size(), 3) << d.name();
    EXPECT_EQ(d.label_keys(0), "id");
    EXPECT_EQ(d.label_keys(1), "name");
    EXPECT_EQ(d.label_keys(2), "image");
    // kubelet appends these itself; a runtime that sent them would break its collector.
    for (const auto& k : d.label_keys()) {
      EXPECT_TRUE(k != "namespace" && k != "pod" && k != "container") << d.name();
    }
  }
  for (const char* name :
       {"container_cpu_usage_seconds_total", "container_memory_usage_bytes",
        "container_memory_working_set_bytes", "container_memory_rss", "container_processes",
        "container_fs_usage_bytes", "container_network_receive_bytes_total",
        "container_network_transmit_bytes_total", "container_spec_memory_limit_bytes"}) {
    EXPECT_TRUE(names.contains(name)) << name;
  }
}

TEST(CadvisorMetricsTest, ContainerMetricsCarryLabelsUnitsAndTypes) {
  stats::Sample s = sample();
  s.writable_layer = stats::FsSample{.timestamp_ns = 900, .used_bytes = 4096, .inodes_used = 2};
  SpecLimits spec{
      .memory_limit_bytes = 1 << 20, .cpu_quota = 50000, .cpu_period = 100000, .cpu_shares = 512};
  MetricList out;
  appendContainerMetrics(s, {.id = "c1", .name = "web", .image = "busybox:1.0"}, spec, &out);
  expectConsistent(out);
  EXPECT_EQ(valueOf(out, "container_cpu_usage_seconds_total", {"total"}), 2u);  // whole seconds
  EXPECT_EQ(valueOf(out, "container_memory_usage_bytes"), 400u);
  EXPECT_EQ(valueOf(out, "container_memory_working_set_bytes"), 300u);
  EXPECT_EQ(valueOf(out, "container_memory_rss"), 200u);
  EXPECT_EQ(valueOf(out, "container_memory_failures_total", {"pgfault", "container"}), 7u);
  EXPECT_EQ(valueOf(out, "container_memory_failures_total", {"pgmajfault", "container"}), 1u);
  EXPECT_EQ(valueOf(out, "container_processes"), 3u);
  EXPECT_EQ(valueOf(out, "container_fs_usage_bytes"), 4096u);
  EXPECT_EQ(valueOf(out, "container_spec_memory_limit_bytes"), 1u << 20);
  EXPECT_EQ(valueOf(out, "container_spec_cpu_quota"), 50000u);
  EXPECT_EQ(valueOf(out, "container_spec_cpu_period"), 100000u);
  EXPECT_EQ(valueOf(out, "container_spec_cpu_shares"), 512u);
  EXPECT_EQ(valueOf(out, "container_network_receive_bytes_total", {"eth0"}), std::nullopt);
  for (const auto& m : out) {
    EXPECT_EQ(m.label_values(0), "c1");
    EXPECT_EQ(m.label_values(1), "web");
    EXPECT_EQ(m.label_values(2), "busybox:1.0");
    bool counter = m.name().ends_with("_total");
    EXPECT_EQ(m.metric_type(), counter ? v1::COUNTER : v1::GAUGE) << m.name();
    EXPECT_EQ(m.timestamp(), m.name() == "container_fs_usage_bytes" ? 900 : 1000) << m.name();
  }
}

TEST(CadvisorMetricsTest, NoQuotaNoLimitAndEmptySamples) {
  MetricList out;
  appendContainerMetrics(stats::Sample{}, {.id = "c"}, SpecLimits{}, &out);
  expectConsistent(out);
  EXPECT_EQ(valueOf(out, "container_spec_memory_limit_bytes"), 0u);  // no limit
  EXPECT_EQ(valueOf(out, "container_spec_cpu_quota"), std::nullopt);
  EXPECT_EQ(valueOf(out, "container_cpu_usage_seconds_total", {"total"}), std::nullopt);
}

TEST(CadvisorMetricsTest, PodMetricsHaveNetworkPerInterface) {
  stats::Sample s = sample();
  s.network = stats::NetworkSample{
      .timestamp_ns = 1'000,
      .interfaces = {
          {.name = "eth0", .rx_bytes = 10, .rx_errors = 1, .tx_bytes = 20, .tx_errors = 2},
          {.name = "net1", .rx_bytes = 30}}};
  MetricList out;
  appendPodMetrics(s, {.id = "p1", .name = "nginx", .image = ""}, &out);
  expectConsistent(out);
  EXPECT_EQ(valueOf(out, "container_network_receive_bytes_total", {"eth0"}), 10u);
  EXPECT_EQ(valueOf(out, "container_network_receive_errors_total", {"eth0"}), 1u);
  EXPECT_EQ(valueOf(out, "container_network_transmit_bytes_total", {"eth0"}), 20u);
  EXPECT_EQ(valueOf(out, "container_network_transmit_errors_total", {"eth0"}), 2u);
  EXPECT_EQ(valueOf(out, "container_network_receive_bytes_total", {"net1"}), 30u);
  EXPECT_EQ(valueOf(out, "container_memory_working_set_bytes"), 300u);
  EXPECT_EQ(valueOf(out, "container_spec_memory_limit_bytes"), std::nullopt);  // containers only
}

TEST(CadvisorMetricsTest, SpecLimitsFromOciJson) {
  SpecLimits l = specLimits(R"({"linux": {"resources": {"memory": {"limit": 268435456},
      "cpu": {"shares": 256, "quota": 20000, "period": 100000}}}})");
  EXPECT_EQ(l.memory_limit_bytes, 268435456u);
  EXPECT_EQ(l.cpu_quota, 20000);
  EXPECT_EQ(l.cpu_period, 100000u);
  EXPECT_EQ(l.cpu_shares, 256u);
  SpecLimits none = specLimits(R"({"linux": {"resources": {"memory": {"limit": -1},
      "cpu": {"quota": -1}}}})");
  EXPECT_EQ(none.memory_limit_bytes, 0u);
  EXPECT_EQ(none.cpu_quota, 0);
  EXPECT_EQ(none.cpu_shares, std::nullopt);
  EXPECT_EQ(specLimits("not json").memory_limit_bytes, 0u);
  EXPECT_EQ(specLimits("").cpu_quota, 0);
}

}  // namespace
}  // namespace berth::cri
