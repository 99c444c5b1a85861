// The stats collector: the cache, its two threads, and refresh() on the caller's thread.
#include "stats/collector.h"

#include <sys/resource.h>

#include <algorithm>

#include "absl/time/clock.h"

namespace berth::stats {
namespace {

// Below this a period would keep a thread busy for nothing.
constexpr absl::Duration kMinInterval = absl::Milliseconds(10);
// Two CPU readings closer than this (two callers refreshing at once) give no rate of their own:
// the later one keeps the earlier one's, rather than a figure made of a few microseconds.
constexpr int64_t kMinRateWindowNs = 100'000'000;

int64_t fdBudgetOf(const CollectorOptions& o) {
  if (o.max_open_files >= 0) return o.max_open_files;
  struct rlimit r {};
  if (::getrlimit(RLIMIT_NOFILE, &r) != 0) return 0;
  return defaultFdBudget(r.rlim_cur);
}

}  // namespace

Collector::Collector(CollectorOptions options)
    : options_(std::move(options)), fd_budget_(std::make_shared<FdBudget>(fdBudgetOf(options_))) {
  interval_ns_.store(absl::ToInt64Nanoseconds(options_.interval));
}

Collector::~Collector() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  stopping_.store(true);
  if (slow_thread_.joinable()) slow_thread_.join();
  if (fast_thread_.joinable()) fast_thread_.join();
}

int64_t Collector::now() const {
  return options_.clock ? options_.clock() : absl::GetCurrentTimeNanos();
}

absl::Duration Collector::demandWindow() const {
  return std::max(absl::Seconds(30), 3 * absl::Nanoseconds(interval_ns_.load()));
}

absl::Duration Collector::fastInterval() const {
  // A quarter of max_age is left for a round to finish and the thread to wake, so that a
  // refresh() rarely finds anything to read itself.
  return std::max(options_.max_age * 3 / 4, kMinInterval);
}

void Collector::start() {
  absl::MutexLock lock(&mu_);
  if (slow_thread_.joinable() || stop_) return;
  slow_thread_ = std::thread(&Collector::runSlow, this);
  fast_thread_ = std::thread(&Collector::runFast, this);
}

void Collector::track(const std::string& key, Target target) {
  auto files = std::make_shared<OpenFiles>(fd_budget_);
  absl::MutexLock lock(&mu_);
  Entry& e = entries_[key];
  if (e.generation != 0 && e.target == target) return;  // already tracked as it is
  e.target = std::move(target);
  // The old files close when `files` goes, after the lock.
  std::swap(e.files, files);
  e.sample.reset();
  e.cgroup_read_ns = 0;
  e.generation = next_generation_++;
  if (!e.pending) {
    e.pending = true;
    ++pending_;
  }
}

void Collector::untrack(const std::string& key) {
  std::shared_ptr<OpenFiles> files;  // closed after the lock
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  if (it->second.pending) --pending_;
  files = std::move(it->second.files);
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

std::shared_ptr<const CgroupLayout> Collector::layout() {
  {
    absl::MutexLock lock(&mu_);
    if (layout_) return layout_;
  }
  auto found = std::make_shared<const CgroupLayout>(detectCgroupLayout(options_.cgroup_root));
  absl::MutexLock lock(&mu_);
  if (!layout_) layout_ = found;
  return layout_;
}

Collector::Job Collector::jobFor(const std::string& key, const Entry& e, bool cgroup,
                                 bool slow) const {
  return Job{.key = key,
             .generation = e.generation,
             .target = e.target,
             .files = e.files,
             .cgroup = cgroup,
             .slow = slow};
}

std::vector<Collector::Job> Collector::staleJobs(const std::vector<std::string>* keys,
                                                 int64_t read_before) const {
  std::vector<Job> jobs;
  auto consider = [&](const std::string& key, const Entry& e) {
    if (e.cgroup_read_ns <= read_before) jobs.push_back(jobFor(key, e, true, false));
  };
  if (keys == nullptr) {
    for (const auto& [key, e] : entries_) consider(key, e);
  } else {
    for (const std::string& key : *keys) {
      if (auto it = entries_.find(key); it != entries_.end()) consider(key, it->second);
    }
  }
  return jobs;
}

void Collector::refresh(const std::vector<std::string>& keys) {
  std::vector<Job> jobs;
  {
    absl::MutexLock lock(&mu_);
    absl::Time real_now = absl::Now();
    if (real_now >= demand_until_) fast_wake_ = true;  // the fast thread was idle: start it
    demand_until_ = real_now + demandWindow();
    jobs = staleJobs(&keys, now() - absl::ToInt64Nanoseconds(options_.max_age));
  }
  if (jobs.empty()) return;
  readCgroups(jobs, *layout());
}

void Collector::readCgroups(const std::vector<Job>& jobs, const CgroupLayout& layout) {
  std::vector<CgroupReading> readings;
  readings.reserve(jobs.size());
  for (const Job& job : jobs) {
    if (stopping_.load(std::memory_order_relaxed)) break;
    OpenFiles::Lease lease = job.files->tryUse();
    readings.push_back(readCgroupPart(layout, job.target, now(), lease.source()));
    if (readings.back().empty()) lease.closeAll();  // gone: nothing is to pin its cgroup
  }
  absl::MutexLock lock(&mu_);
  for (size_t i = 0; i < readings.size(); ++i) storeCgroup(jobs[i], readings[i]);
}

void Collector::storeCgroup(const Job& job, CgroupReading r) {
  auto it = entries_.find(job.key);
  // Untracked or replaced while we were reading: this reading belongs to nobody.
  if (it == entries_.end() || it->second.generation != job.generation) return;
  Entry& e = it->second;
  // Another caller already stored a later reading.
  if (r.at <= e.cgroup_read_ns) return;
  e.cgroup_read_ns = r.at;
  Sample& s = e.sample ? *e.sample : e.sample.emplace();
  // Not created yet, or gone (the container exited): keep what it had.
  if (r.empty()) return;
  if (r.cpu && s.cpu) {
    r.cpu->usage_nano_cores = r.cpu->timestamp_ns - s.cpu->timestamp_ns >= kMinRateWindowNs
                                  ? nanoCores(*s.cpu, *r.cpu)
                                  : s.cpu->usage_nano_cores;
  }
  if (r.cpu) s.cpu = r.cpu;
  if (r.memory) s.memory = r.memory;
  if (r.process_count) s.process_count = r.process_count;
  s.timestamp_ns = r.at;
}

void Collector::storeSlow(const Job& job, SlowReading r) {
  auto it = entries_.find(job.key);
  if (it == entries_.end() || it->second.generation != job.generation) return;
  Sample& s = it->second.sample ? *it->second.sample : it->second.sample.emplace();
  // A part that could not be read (process or directory gone) keeps its last value.
  if (r.network && (!s.network || s.network->timestamp_ns < r.network->timestamp_ns)) {
    s.network = std::move(r.network);
  }
  if (r.writable_layer &&
      (!s.writable_layer || s.writable_layer->timestamp_ns < r.writable_layer->timestamp_ns)) {
    s.writable_layer = r.writable_layer;
  }
}

void Collector::runSlowJobs(const std::vector<Job>& jobs, const CgroupLayout& layout) {
  for (const Job& job : jobs) {
    if (stopping_.load(std::memory_order_relaxed)) return;
    if (job.cgroup) {
      CgroupReading c;
      {
        OpenFiles::Lease lease = job.files->tryUse();
        c = readCgroupPart(layout, job.target, now(), lease.source());
        if (c.empty()) lease.closeAll();
      }
      absl::MutexLock lock(&mu_);
      storeCgroup(job, c);
    }
    if (job.slow) {
      SlowReading slow = readSlowPart(options_.proc_root, job.target, now(), &stopping_);
      absl::MutexLock lock(&mu_);
      storeSlow(job, std::move(slow));
    }
  }
}

std::vector<Collector::Job> Collector::takeSlowJobs(bool full) {
  // The cgroup part rides along only when the fast thread is not keeping it fresh (nobody
  // asked for stats lately), or was never read.
  int64_t stale = now() - absl::ToInt64Nanoseconds(fastInterval());
  std::vector<Job> jobs;
  for (auto& [key, e] : entries_) {
    if (!full && !e.pending) continue;
    if (e.pending) {
      e.pending = false;
      --pending_;
    }
    jobs.push_back(jobFor(key, e, e.cgroup_read_ns <= stale, true));
  }
  return jobs;
}

void Collector::collectNow() {
  auto found = std::make_shared<const CgroupLayout>(detectCgroupLayout(options_.cgroup_root));
  std::vector<Job> jobs;
  {
    absl::MutexLock lock(&mu_);
    layout_ = found;
    jobs = takeSlowJobs(/*full=*/true);
    for (Job& job : jobs) job.cgroup = true;
  }
  runSlowJobs(jobs, *found);
  if (options_.on_slow_round) options_.on_slow_round();
}

bool Collector::slowWakeReady() const { return stop_ || pending_ > 0; }

bool Collector::fastWakeReady() const { return stop_ || fast_wake_; }

void Collector::runSlow() {
  absl::Time next_round = absl::Now();  // the first round right away
  for (;;) {
    const absl::Duration interval = std::max(absl::Nanoseconds(interval_ns_.load()), kMinInterval);
    std::vector<Job> jobs;
    std::shared_ptr<const CgroupLayout> layout;
    bool full = false;
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithDeadline(absl::Condition(this, &Collector::slowWakeReady), next_round);
      if (stop_) return;
      full = absl::Now() >= next_round;
      if (full) next_round = absl::Now() + interval;
      jobs = takeSlowJobs(full);
      layout = layout_;
    }
    if (full || !layout) {
      layout = std::make_shared<const CgroupLayout>(detectCgroupLayout(options_.cgroup_root));
      absl::MutexLock lock(&mu_);
      layout_ = layout;
    }
    runSlowJobs(jobs, *layout);
    if (full && options_.on_slow_round && !stopping_.load()) options_.on_slow_round();
  }
}

void Collector::runFast() {
  const absl::Duration interval = fastInterval();
  absl::Time next_round = absl::InfiniteFuture();
  for (;;) {
    std::vector<Job> jobs;
    absl::Time started;
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithDeadline(absl::Condition(this, &Collector::fastWakeReady), next_round);
      if (stop_) return;
      started = absl::Now();
      if (fast_wake_) {
        // Demand just began with a refresh() that read what it needed: start a period later.
        fast_wake_ = false;
        next_round = started + interval;
        continue;
      }
      if (started < next_round) continue;
      if (started >= demand_until_) {
        next_round = absl::InfiniteFuture();  // nobody asks: sleep until someone does
        continue;
      }
      // What a refresh() read in the last half period is left alone.
      jobs = staleJobs(nullptr, now() - absl::ToInt64Nanoseconds(interval / 2));
    }
    if (!jobs.empty()) readCgroups(jobs, *layout());
    // Late rounds (an overloaded machine) leave a gap rather than run back to back.
    next_round = std::max(started + interval, absl::Now() + interval / 4);
  }
}

}  // namespace berth::stats
