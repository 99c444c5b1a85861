// cAdvisor-style CRI metrics from stats samples.
#include "cri/cadvisor_metrics.h"

#include <algorithm>
#include <initializer_list>

#include "common/json_text.h"

namespace berth::cri {
namespace {

struct Def {
  const char* name;
  const char* help;
  const char* extra_keys[2];  // after id, name, image; unused ones are null
};

// One table for the descriptors; the append functions below use the same names.
constexpr const char* kCpuUsage = "container_cpu_usage_seconds_total";
constexpr const char* kMemUsage = "container_memory_usage_bytes";
constexpr const char* kMemWorkingSet = "container_memory_working_set_bytes";
constexpr const char* kMemRss = "container_memory_rss";
constexpr const char* kMemFailures = "container_memory_failures_total";
constexpr const char* kProcesses = "container_processes";
constexpr const char* kFsUsage = "container_fs_usage_bytes";
constexpr const char* kSpecMemLimit = "container_spec_memory_limit_bytes";
constexpr const char* kSpecCpuQuota = "container_spec_cpu_quota";
constexpr const char* kSpecCpuPeriod = "container_spec_cpu_period";
constexpr const char* kSpecCpuShares = "container_spec_cpu_shares";
constexpr const char* kNetRxBytes = "container_network_receive_bytes_total";
constexpr const char* kNetRxErrors = "container_network_receive_errors_total";
constexpr const char* kNetTxBytes = "container_network_transmit_bytes_total";
constexpr const char* kNetTxErrors = "container_network_transmit_errors_total";

const Def kDefs[] = {
    {kCpuUsage, "Cumulative cpu time consumed in seconds.", {"cpu"}},
    {kMemUsage,
     "Current memory usage in bytes, including all memory regardless of when it was "
     "accessed",
     {}},
    {kMemWorkingSet, "Current working set in bytes.", {}},
    {kMemRss, "Size of RSS in bytes.", {}},
    {kMemFailures, "Cumulative count of memory allocation failures.", {"failure_type", "scope"}},
    {kProcesses, "Number of processes running inside the container.", {}},
    {kFsUsage, "Number of bytes that are consumed by the container on this filesystem.", {}},
    {kSpecMemLimit, "Memory limit for the container.", {}},
    {kSpecCpuQuota, "CPU quota of the container.", {}},
    {kSpecCpuPeriod, "CPU period of the container.", {}},
    {kSpecCpuShares, "CPU share of the container.", {}},
    {kNetRxBytes, "Cumulative count of bytes received", {"interface"}},
    {kNetRxErrors, "Cumulative count of errors encountered while receiving", {"interface"}},
    {kNetTxBytes, "Cumulative count of bytes transmitted", {"interface"}},
    {kNetTxErrors, "Cumulative count of errors encountered while transmitting", {"interface"}},
};

void add(MetricList* out, const char* name, v1::MetricType type, int64_t timestamp_ns,
         const MetricLabels& l, std::initializer_list<std::string> extra, uint64_t value) {
  v1::Metric* m = out->Add();
  m->set_name(name);
  m->set_timestamp(timestamp_ns);
  m->set_metric_type(type);
  m->add_label_values(l.id);
  m->add_label_values(l.name);
  m->add_label_values(l.image);
  for (const auto& e : extra) m->add_label_values(e);
  m->mutable_value()->set_value(value);
}

// CPU, memory and processes: what pods and containers share.
void appendCgroupMetrics(const stats::Sample& s, const MetricLabels& l, MetricList* out) {
  if (s.cpu) {
    add(out, kCpuUsage, v1::COUNTER, s.cpu->timestamp_ns, l, {"total"},
        s.cpu->usage_core_nano_seconds / 1'000'000'000);
  }
  if (s.memory) {
    const stats::MemorySample& m = *s.memory;
    add(out, kMemUsage, v1::GAUGE, m.timestamp_ns, l, {}, m.usage_bytes);
    add(out, kMemWorkingSet, v1::GAUGE, m.timestamp_ns, l, {}, m.working_set_bytes);
    add(out, kMemRss, v1::GAUGE, m.timestamp_ns, l, {}, m.rss_bytes);
    add(out, kMemFailures, v1::COUNTER, m.timestamp_ns, l, {"pgfault", "container"}, m.page_faults);
    add(out, kMemFailures, v1::COUNTER, m.timestamp_ns, l, {"pgmajfault", "container"},
        m.major_page_faults);
  }
  if (s.process_count) add(out, kProcesses, v1::GAUGE, s.timestamp_ns, l, {}, *s.process_count);
}

uint64_t unsignedOr0(const nlohmann::json& j) {
  if (j.is_number_unsigned()) return j.get<uint64_t>();
  if (j.is_number_integer() && j.get<int64_t>() > 0) return static_cast<uint64_t>(j.get<int64_t>());
  return 0;
}

}  // namespace

const std::vector<v1::MetricDescriptor>& metricDescriptors() {
  static const std::vector<v1::MetricDescriptor> descriptors = [] {
    std::vector<v1::MetricDescriptor> out;
    for (const Def& d : kDefs) {
      v1::MetricDescriptor desc;
      desc.set_name(d.name);
      desc.set_help(d.help);
      for (const char* k : {"id", "name", "image"}) desc.add_label_keys(k);
      for (const char* k : d.extra_keys) {
        if (k != nullptr) desc.add_label_keys(k);
      }
      out.push_back(std::move(desc));
    }
    std::sort(out.begin(), out.end(),
              [](const auto& a, const auto& b) { return a.name() < b.name(); });
    return out;
  }();
  return descriptors;
}

SpecLimits specLimits(const std::string& spec_json) {
  SpecLimits out;
  nlohmann::json spec = parseJsonObject(spec_json);
  const nlohmann::json* res = nullptr;
  if (auto lx = spec.find("linux"); lx != spec.end() && lx->is_object()) {
    if (auto r = lx->find("resources"); r != lx->end() && r->is_object()) res = &*r;
  }
  if (res == nullptr) return out;
  if (auto mem = res->find("memory"); mem != res->end() && mem->is_object()) {
    out.memory_limit_bytes = unsignedOr0(mem->value("limit", nlohmann::json()));
  }
  if (auto cpu = res->find("cpu"); cpu != res->end() && cpu->is_object()) {
    nlohmann::json quota = cpu->value("quota", nlohmann::json());
    if (quota.is_number_integer() && quota.get<int64_t>() > 0) out.cpu_quota = quota.get<int64_t>();
    out.cpu_period = unsignedOr0(cpu->value("period", nlohmann::json()));
    if (auto shares = cpu->find("shares"); shares != cpu->end() && shares->is_number()) {
      out.cpu_shares = unsignedOr0(*shares);
    }
  }
  return out;
}

void appendContainerMetrics(const stats::Sample& s, const MetricLabels& l, const SpecLimits& spec,
                            MetricList* out) {
  appendCgroupMetrics(s, l, out);
  if (s.writable_layer) {
    add(out, kFsUsage, v1::GAUGE, s.writable_layer->timestamp_ns, l, {},
        s.writable_layer->used_bytes);
  }
  // Like cAdvisor: the limit always (0 when there is none), quota and period only with a quota.
  add(out, kSpecMemLimit, v1::GAUGE, s.timestamp_ns, l, {}, spec.memory_limit_bytes);
  if (spec.cpu_quota > 0) {
    add(out, kSpecCpuQuota, v1::GAUGE, s.timestamp_ns, l, {},
        static_cast<uint64_t>(spec.cpu_quota));
    add(out, kSpecCpuPeriod, v1::GAUGE, s.timestamp_ns, l, {}, spec.cpu_period);
  }
  if (spec.cpu_shares) add(out, kSpecCpuShares, v1::GAUGE, s.timestamp_ns, l, {}, *spec.cpu_shares);
}

void appendPodMetrics(const stats::Sample& s, const MetricLabels& l, MetricList* out) {
  appendCgroupMetrics(s, l, out);
  if (!s.network) return;
  for (const stats::InterfaceSample& i : s.network->interfaces) {
    int64_t ts = s.network->timestamp_ns;
    add(out, kNetRxBytes, v1::COUNTER, ts, l, {i.name}, i.rx_bytes);
    add(out, kNetRxErrors, v1::COUNTER, ts, l, {i.name}, i.rx_errors);
    add(out, kNetTxBytes, v1::COUNTER, ts, l, {i.name}, i.tx_bytes);
    add(out, kNetTxErrors, v1::COUNTER, ts, l, {i.name}, i.tx_errors);
  }
}

}  // namespace berth::cri
