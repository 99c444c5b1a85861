// Stats RPCs from the collector's cache, freshened before each answer.
#include "cri/stats_handlers.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "cri/pod_handlers.h"
#include "cri/stream_batches.h"
#include "oci/spec.h"

namespace berth::cri {
namespace {

void setValue(v1::UInt64Value* out, uint64_t v) { out->set_value(v); }

void fillCpu(const stats::CpuSample& c, v1::CpuUsage* out) {
  out->set_timestamp(c.timestamp_ns);
  setValue(out->mutable_usage_core_nano_seconds(), c.usage_core_nano_seconds);
  setValue(out->mutable_usage_nano_cores(), c.usage_nano_cores);
}

void fillMemory(const stats::MemorySample& m, v1::MemoryUsage* out) {
  out->set_timestamp(m.timestamp_ns);
  setValue(out->mutable_working_set_bytes(), m.working_set_bytes);
  setValue(out->mutable_available_bytes(), m.available_bytes);
  setValue(out->mutable_usage_bytes(), m.usage_bytes);
  setValue(out->mutable_rss_bytes(), m.rss_bytes);
  setValue(out->mutable_page_faults(), m.page_faults);
  setValue(out->mutable_major_page_faults(), m.major_page_faults);
}

void fillInterface(const stats::InterfaceSample& i, v1::NetworkInterfaceUsage* out) {
  out->set_name(i.name);
  setValue(out->mutable_rx_bytes(), i.rx_bytes);
  setValue(out->mutable_rx_errors(), i.rx_errors);
  setValue(out->mutable_tx_bytes(), i.tx_bytes);
  setValue(out->mutable_tx_errors(), i.tx_errors);
}

}  // namespace

void StatsHandlers::sync() {
  std::map<std::string, stats::Target> want;
  for (const auto& c : store_.listContainers()) {
    if (c->state != store::ContainerState::kRunning) continue;
    want[c->id];  // filled below only when new
  }
  for (const auto& p : store_.listSandboxes()) {
    if (p->state == store::SandboxState::kReady) want[p->id];
  }
  absl::MutexLock lock(&mu_);
  for (auto it = tracked_.begin(); it != tracked_.end();) {
    if (want.count(it->first) == 0) {
      collector_.untrack(it->first);
      it = tracked_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [id, unused] : want) {
    if (tracked_.count(id) != 0) continue;
    stats::Target t;
    if (auto c = store_.getContainer(id); c.ok()) {
      t.cgroup_path = oci::cgroupsPathOf((*c)->spec_json);
      t.pid = (*c)->pid;
      if (auto dir = snapshots_.fsDir((*c)->snapshot_key); dir.ok()) t.writable_dir = *dir;
    } else if (auto p = store_.getSandbox(id); p.ok()) {
      // The pod's own cgroup when kubelet gave one (its containers are below it), else the
      // pause container's; network counters from the pause's namespace.
      v1::PodSandboxConfig config;
      (void)config.ParseFromString((*p)->config_bytes);
      t.cgroup_path = config.linux().cgroup_parent();
      if (t.cgroup_path.empty()) t.cgroup_path = oci::cgroupsPathOf((*p)->spec_json);
      t.pid = (*p)->pid;
    } else {
      continue;
    }
    collector_.track(id, t);
    tracked_[id] = t;
  }
}

void StatsHandlers::refresh(const std::vector<store::ContainerPtr>& containers) {
  std::vector<std::string> keys;
  keys.reserve(containers.size());
  for (const auto& c : containers) keys.push_back(c->id);
  collector_.refresh(keys);
}

void StatsHandlers::refresh(const std::vector<store::SandboxPtr>& pods) {
  std::vector<std::string> keys;
  for (const auto& p : pods) {
    keys.push_back(p->id);
    for (const auto& c : store_.listContainers(p->id)) {
      if (c->state == store::ContainerState::kRunning) keys.push_back(c->id);
    }
  }
  collector_.refresh(keys);
}

void StatsHandlers::toCri(const store::ContainerRecord& r, v1::ContainerStats* out) const {
  auto* a = out->mutable_attributes();
  a->set_id(r.id);
  a->mutable_metadata()->set_name(r.metadata.name);
  a->mutable_metadata()->set_attempt(r.metadata.attempt);
  a->mutable_labels()->insert(r.labels.begin(), r.labels.end());
  a->mutable_annotations()->insert(r.annotations.begin(), r.annotations.end());
  std::optional<stats::Sample> s = collector_.latest(r.id);
  if (!s) return;
  if (s->cpu) fillCpu(*s->cpu, out->mutable_cpu());
  if (s->memory) fillMemory(*s->memory, out->mutable_memory());
  if (s->writable_layer) {
    auto* fs = out->mutable_writable_layer();
    fs->set_timestamp(s->writable_layer->timestamp_ns);
    fs->mutable_fs_id()->set_mountpoint(snapshots_.root());
    setValue(fs->mutable_used_bytes(), s->writable_layer->used_bytes);
    setValue(fs->mutable_inodes_used(), s->writable_layer->inodes_used);
  }
}

void StatsHandlers::toCri(const store::SandboxRecord& r, v1::PodSandboxStats* out) const {
  auto* a = out->mutable_attributes();
  a->set_id(r.id);
  a->mutable_metadata()->set_name(r.metadata.name);
  a->mutable_metadata()->set_uid(r.metadata.uid);
  a->mutable_metadata()->set_namespace_(r.metadata.ns);
  a->mutable_metadata()->set_attempt(r.metadata.attempt);
  a->mutable_labels()->insert(r.labels.begin(), r.labels.end());
  a->mutable_annotations()->insert(r.annotations.begin(), r.annotations.end());
  auto* lx = out->mutable_linux();
  if (std::optional<stats::Sample> s = collector_.latest(r.id)) {
    if (s->cpu) fillCpu(*s->cpu, lx->mutable_cpu());
    if (s->memory) fillMemory(*s->memory, lx->mutable_memory());
    if (s->process_count) {
      lx->mutable_process()->set_timestamp(s->timestamp_ns);
      setValue(lx->mutable_process()->mutable_process_count(), *s->process_count);
    }
    if (s->network && !r.netns_path.empty()) {
      auto* net = lx->mutable_network();
      net->set_timestamp(s->network->timestamp_ns);
      for (size_t i = 0; i < s->network->interfaces.size(); ++i) {
        if (i == 0) fillInterface(s->network->interfaces[0], net->mutable_default_interface());
        fillInterface(s->network->interfaces[i], net->add_interfaces());
      }
    }
  }
  for (const auto& c : store_.listContainers(r.id)) {
    if (c->state == store::ContainerState::kRunning) toCri(*c, lx->add_containers());
  }
}

std::vector<store::ContainerPtr> StatsHandlers::containers(const v1::ContainerStatsFilter* f) const {
  std::vector<store::ContainerPtr> all;
  if (f != nullptr && !f->id().empty()) {
    auto id = store_.resolveContainerId(f->id());
    if (!id.ok()) return {};
    if (auto r = store_.getContainer(*id); r.ok()) all.push_back(*r);
  } else {
    all = store_.listContainers();
  }
  std::string pod;
  if (f != nullptr && !f->pod_sandbox_id().empty()) {
    auto p = store_.resolveSandboxId(f->pod_sandbox_id());
    if (!p.ok()) return {};
    pod = *p;
  }
  std::vector<store::ContainerPtr> out;
  for (auto& c : all) {
    // Stats are for containers that run (an exited one has no cgroup left).
    if (c->state != store::ContainerState::kRunning) continue;
    if (!pod.empty() && c->sandbox_id != pod) continue;
    if (f != nullptr && !matchLabels(f->label_selector(), c->labels)) continue;
    out.push_back(std::move(c));
  }
  return out;
}

std::vector<store::SandboxPtr> StatsHandlers::pods(const v1::PodSandboxStatsFilter* f) const {
  std::vector<store::SandboxPtr> all;
  if (f != nullptr && !f->id().empty()) {
    auto id = store_.resolveSandboxId(f->id());
    if (!id.ok()) return {};
    if (auto r = store_.getSandbox(*id); r.ok()) all.push_back(*r);
  } else {
    all = store_.listSandboxes();
  }
  std::vector<store::SandboxPtr> out;
  for (auto& p : all) {
    if (p->state != store::SandboxState::kReady) continue;
    if (f != nullptr && !matchLabels(f->label_selector(), p->labels)) continue;
    out.push_back(std::move(p));
  }
  return out;
}

absl::Status StatsHandlers::containerStats(const v1::ContainerStatsRequest& req,
                                           v1::ContainerStatsResponse* resp) {
  if (req.container_id().empty()) {
    return absl::InvalidArgumentError("ContainerStats: container_id is required");
  }
  BERTH_ASSIGN_OR_RETURN(std::string id, store_.resolveContainerId(req.container_id()));
  BERTH_ASSIGN_OR_RETURN(auto r, store_.getContainer(id));
  sync();
  if (r->state == store::ContainerState::kRunning) refresh(std::vector<store::ContainerPtr>{r});
  toCri(*r, resp->mutable_stats());
  return absl::OkStatus();
}

absl::Status StatsHandlers::listContainerStats(const v1::ListContainerStatsRequest& req,
                                               v1::ListContainerStatsResponse* resp) {
  sync();
  std::vector<store::ContainerPtr> list = containers(req.has_filter() ? &req.filter() : nullptr);
  refresh(list);
  for (const auto& c : list) toCri(*c, resp->add_stats());
  return absl::OkStatus();
}

absl::Status StatsHandlers::streamContainerStats(
    const v1::StreamContainerStatsRequest& req,
    grpc::ServerWriter<v1::StreamContainerStatsResponse>* w) {
  sync();
  std::vector<store::ContainerPtr> list = containers(req.has_filter() ? &req.filter() : nullptr);
  refresh(list);
  return writeInBatches("StreamContainerStats", list, w,
                        [this](const store::ContainerPtr& c, v1::StreamContainerStatsResponse& b) {
                          toCri(*c, b.add_container_stats());
                        });
}

absl::Status StatsHandlers::podSandboxStats(const v1::PodSandboxStatsRequest& req,
                                            v1::PodSandboxStatsResponse* resp) {
  if (req.pod_sandbox_id().empty()) {
    return absl::InvalidArgumentError("PodSandboxStats: pod_sandbox_id is required");
  }
  BERTH_ASSIGN_OR_RETURN(std::string id, store_.resolveSandboxId(req.pod_sandbox_id()));
  BERTH_ASSIGN_OR_RETURN(auto r, store_.getSandbox(id));
  sync();
  if (r->state == store::SandboxState::kReady) refresh(std::vector<store::SandboxPtr>{r});
  toCri(*r, resp->mutable_stats());
  return absl::OkStatus();
}

absl::Status StatsHandlers::listPodSandboxStats(const v1::ListPodSandboxStatsRequest& req,
                                                v1::ListPodSandboxStatsResponse* resp) {
  sync();
  std::vector<store::SandboxPtr> list = pods(req.has_filter() ? &req.filter() : nullptr);
  refresh(list);
  for (const auto& p : list) toCri(*p, resp->add_stats());
  return absl::OkStatus();
}

absl::Status StatsHandlers::streamPodSandboxStats(
    const v1::StreamPodSandboxStatsRequest& req,
    grpc::ServerWriter<v1::StreamPodSandboxStatsResponse>* w) {
  sync();
  std::vector<store::SandboxPtr> list = pods(req.has_filter() ? &req.filter() : nullptr);
  refresh(list);
  return writeInBatches("StreamPodSandboxStats", list, w,
                        [this](const store::SandboxPtr& p, v1::StreamPodSandboxStatsResponse& b) {
                          toCri(*p, b.add_pod_sandbox_stats());
                        });
}

}  // namespace berth::cri
