// The stats collector: sampling one target, and the thread that keeps the cache fresh.
#include "stats/collector.h"

#include <algorithm>

#include "absl/time/clock.h"
#include "common/logging.h"
#include "stats/cgroup_reader.h"
#include "stats/disk_usage.h"
#include "stats/net_dev.h"

namespace berth::stats {
namespace {

// Below this an interval would keep the thread busy for nothing.
constexpr absl::Duration kMinInterval = absl::Milliseconds(10);

// Cores used between two CPU readings, in billionths of a core.
uint64_t nanoCores(const CpuSample& prev, const CpuSample& cur) {
  if (cur.timestamp_ns <= prev.timestamp_ns) return 0;
  // A counter that went back means a new cgroup under the same path: no rate this time.
  if (cur.usage_core_nano_seconds < prev.usage_core_nano_seconds) return 0;
  // double: the product of two nanosecond counts overflows 64 bits after a few seconds.
  double used = static_cast<double>(cur.usage_core_nano_seconds - prev.usage_core_nano_seconds);
  double elapsed = static_cast<double>(cur.timestamp_ns - prev.timestamp_ns);
  return static_cast<uint64_t>(used * 1e9 / elapsed);
}

Sample sampleWith(const CgroupLayout& layout, const CollectorOptions& o, const Target& t,
                  const Sample* previous, int64_t now_ns, const std::atomic<bool>* cancel) {
  Sample s;
  s.timestamp_ns = now_ns;
  if (std::optional<std::string> path = cleanCgroupPath(t.cgroup_path)) {
    s.cpu = readCpu(layout, *path, now_ns);
    if (s.cpu && previous != nullptr && previous->cpu) {
      s.cpu->usage_nano_cores = nanoCores(*previous->cpu, *s.cpu);
    }
    s.memory = readMemory(layout, *path, now_ns);
    s.process_count = readProcessCount(layout, *path);
  }
  s.network = readNetwork(o.proc_root, t.pid, now_ns);
  if (!t.writable_dir.empty()) {
    absl::StatusOr<DiskUsage> du = diskUsage(t.writable_dir, cancel);
    if (du.ok()) {
      s.writable_layer =
          FsSample{.timestamp_ns = now_ns, .used_bytes = du->bytes, .inodes_used = du->inodes};
    } else if (!absl::IsNotFound(du.status()) && !absl::IsCancelled(du.status())) {
      logging::get("stats")->debug("writable layer {}: {}", t.writable_dir, du.status().message());
    }
  }
  return s;
}

}  // namespace

Sample sampleTarget(const CollectorOptions& o, const Target& t, const Sample* previous,
                    int64_t now_ns) {
  return sampleWith(detectCgroupLayout(o.cgroup_root), o, t, previous, now_ns, nullptr);
}

Collector::Collector(CollectorOptions options) : options_(std::move(options)) {}

Collector::~Collector() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  stopping_.store(true);
  if (thread_.joinable()) thread_.join();
}

void Collector::start() {
  absl::MutexLock lock(&mu_);
  if (thread_.joinable() || stop_) return;
  thread_ = std::thread(&Collector::run, this);
}

void Collector::track(const std::string& key, Target target) {
  absl::MutexLock lock(&mu_);
  Entry& e = entries_[key];
  if (e.generation != 0 && e.target == target) return;  // already tracked as it is
  e.target = std::move(target);
  e.sample.reset();
  e.generation = next_generation_++;
  if (!e.pending) {
    e.pending = true;
    ++pending_;
  }
}

void Collector::untrack(const std::string& key) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  if (it->second.pending) --pending_;
  entries_.erase(it);
}

std::optional<Sample> Collector::latest(const std::string& key) const {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  return it->second.sample;
}

std::vector<std::pair<std::string, Sample>> Collector::latestAll() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::pair<std::string, Sample>> out;
  out.reserve(entries_.size());
  for (const auto& [key, e] : entries_) {
    if (e.sample) out.emplace_back(key, *e.sample);
  }
  return out;
}

void Collector::collectNow() {
  std::vector<Job> jobs;
  {
    absl::MutexLock lock(&mu_);
    jobs = takeJobs(/*all=*/true);
  }
  runJobs(std::move(jobs));
}

bool Collector::wakeReady() const { return stop_ || pending_ > 0; }

std::vector<Collector::Job> Collector::takeJobs(bool all) {
  std::vector<Job> jobs;
  for (auto& [key, e] : entries_) {
    if (!all && !e.pending) continue;
    if (e.pending) {
      e.pending = false;
      --pending_;
    }
    jobs.push_back(
        Job{.key = key, .generation = e.generation, .target = e.target, .previous = e.sample});
  }
  return jobs;
}

void Collector::runJobs(std::vector<Job> jobs) {
  if (jobs.empty()) return;
  // The layout is looked up once per round: it is one directory read, and mounts rarely change.
  CgroupLayout layout = detectCgroupLayout(options_.cgroup_root);
  for (Job& job : jobs) {
    if (stopping_.load()) return;
    const Sample* previous = job.previous ? &*job.previous : nullptr;
    Sample s =
        sampleWith(layout, options_, job.target, previous, absl::GetCurrentTimeNanos(), &stopping_);
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(job.key);
    // Untracked or replaced while we were reading: this sample belongs to nobody.
    if (it == entries_.end() || it->second.generation != job.generation) continue;
    Entry& e = it->second;
    // Another round (collectNow beside the thread) already stored something newer.
    if (e.sample && e.sample->timestamp_ns > s.timestamp_ns) continue;
    // The cgroup is gone (the container exited): keep what it had until it is untracked.
    if (e.sample && e.sample->hasCgroupData() && !s.hasCgroupData()) continue;
    e.sample = std::move(s);
  }
}

void Collector::run() {
  absl::Duration interval = std::max(options_.interval, kMinInterval);
  absl::Time next_round = absl::Now();  // the first round right away
  for (;;) {
    std::vector<Job> jobs;
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithDeadline(absl::Condition(this, &Collector::wakeReady), next_round);
      if (stop_) return;
      bool full = absl::Now() >= next_round;
      jobs = takeJobs(full);
      if (full) next_round = absl::Now() + interval;
    }
    runJobs(std::move(jobs));
  }
}

}  // namespace berth::stats
