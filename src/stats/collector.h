// The stats collector behind the CRI stats RPCs: a cache of every tracked container's and pod's
// stats, kept fresh by two background threads, that the RPCs copy from.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "stats/cgroup_reader.h"
#include "stats/open_files.h"
#include "stats/sample.h"
#include "stats/sampling.h"

namespace berth::stats {

struct CollectorOptions {
  std::string cgroup_root = "/sys/fs/cgroup";  // tests point it at a fake tree
  std::string proc_root = "/proc";
  // How often the slow parts of every target are read (writable layers: a directory walk;
  // network counters), followed by on_slow_round.
  absl::Duration interval = absl::Seconds(10);
  // CPU, memory and process counts are at most this old after refresh().
  absl::Duration max_age = absl::Seconds(1);
  // Run by the slow thread after each of its full rounds, with no lock held (berthd: the image
  // filesystem's usage). May be empty.
  std::function<void()> on_slow_round;
  // Stamps readings and ages them, in Unix nanoseconds; empty: the real clock. The threads'
  // schedules always use the real clock.
  std::function<int64_t()> clock;
  // Cgroup files kept open between readings, all targets together; -1: defaultFdBudget() of
  // this process's RLIMIT_NOFILE.
  int64_t max_open_files = -1;
};

// Two threads fill the cache:
//  - the slow thread reads every target's slow part (network, writable layer) each interval,
//    and a new target's at once;
//  - the fast thread re-reads every target's cgroup part (CPU, memory, process count: a few
//    small files) each 3/4 of max_age, but only while stats are being asked for (a refresh()
//    within demandWindow()), so an idle node pays nothing.
// refresh() reads in the caller's thread whatever the fast thread has not kept within max_age:
// a target tracked a moment ago, or every target after an idle spell. Each target's cgroup files
// stay open between readings (within a descriptor budget), which makes a reading several times
// cheaper than opening them each time. All readings touch only
// cgroup and proc files and directories: never a shim or the OCI runtime, so a hung shim slows
// no one. A target whose cgroup is gone keeps its last values until it is untracked.
//
// Every method may be called from any thread. No lock is held while files are read.
class Collector {
 public:
  // How often the slow parts are measured, from the next round on (a reload).
  void setInterval(absl::Duration interval) {
    interval_ns_.store(absl::ToInt64Nanoseconds(interval));
  }

  explicit Collector(CollectorOptions options);
  ~Collector();  // stops the threads (an unfinished disk walk is abandoned) and joins them
  Collector(const Collector&) = delete;
  Collector& operator=(const Collector&) = delete;

  // Starts the threads; the slow one takes a first round at once. Calling it again does nothing.
  void start();
  // Starts (or replaces) tracking `key`. The slow thread reads the new target soon, without
  // waiting for its next round; re-tracking with an identical target keeps its sample.
  void track(const std::string& key, Target target);
  void untrack(const std::string& key);
  // Makes the cgroup part of each tracked key in `keys` at most max_age old, reading in the
  // caller's thread the ones that are older or were never read. Keys not tracked are skipped.
  void refresh(const std::vector<std::string>& keys);
  // The last sample of `key`; nullopt when it is not tracked or was never read.
  std::optional<Sample> latest(const std::string& key) const;
  // The last sample of every tracked and read key.
  std::vector<std::pair<std::string, Sample>> latestAll() const;
  // One synchronous full round over every target (all parts, then on_slow_round), in the
  // caller's thread.
  void collectNow();

  // The fast thread runs while refresh() was called within this long: three slow periods, and
  // at least 30 s, so that kubelet's polling every 10-15 s keeps it going.
  absl::Duration demandWindow() const;
  // How often the fast thread re-reads cgroup parts.
  absl::Duration fastInterval() const;

 private:
  std::atomic<int64_t> interval_ns_{0};  // options_.interval, or what setInterval() set

  struct Entry {
    Target target;
    std::shared_ptr<OpenFiles> files;  // the target's cgroup files, kept open
    std::optional<Sample> sample;
    uint64_t generation = 0;     // changes when the target is replaced
    int64_t cgroup_read_ns = 0;  // the last attempt at the cgroup part, found or not; 0: never
    bool pending = false;        // tracked, slow part not read since
  };
  // One target to read, with no lock held.
  struct Job {
    std::string key;
    uint64_t generation = 0;
    Target target;
    std::shared_ptr<OpenFiles> files;
    bool cgroup = false;  // read the cgroup part
    bool slow = false;    // read the slow part
  };

  int64_t now() const;
  std::shared_ptr<const CgroupLayout> layout();
  bool slowWakeReady() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool fastWakeReady() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Job jobFor(const std::string& key, const Entry& e, bool cgroup, bool slow) const;
  // Cgroup-only jobs for the entries (all, or those named) whose last attempt is at or before
  // `read_before`.
  std::vector<Job> staleJobs(const std::vector<std::string>* keys, int64_t read_before) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<Job> takeSlowJobs(bool full) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Reads the cgroup part of every job, then stores the readings under one lock.
  void readCgroups(const std::vector<Job>& jobs, const CgroupLayout& layout);
  // Reads each job (slow jobs may walk directories) and stores it as soon as it is read.
  void runSlowJobs(const std::vector<Job>& jobs, const CgroupLayout& layout);
  // Stores a reading unless its entry was untracked or replaced, or holds a newer one.
  void storeCgroup(const Job& job, CgroupReading r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void storeSlow(const Job& job, SlowReading r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void runSlow();
  void runFast();

  const CollectorOptions options_;
  const std::shared_ptr<FdBudget> fd_budget_;
  std::atomic<bool> stopping_{false};  // read by disk walks to give up early

  mutable absl::Mutex mu_;
  // State below is protected by mu_.
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  uint64_t next_generation_ ABSL_GUARDED_BY(mu_) = 1;
  size_t pending_ ABSL_GUARDED_BY(mu_) = 0;  // entries with pending set
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  // Looked up once and again each full round: one directory read, and mounts rarely change.
  std::shared_ptr<const CgroupLayout> layout_ ABSL_GUARDED_BY(mu_);
  absl::Time demand_until_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  bool fast_wake_ ABSL_GUARDED_BY(mu_) = false;  // demand began: the fast thread starts over

  std::thread slow_thread_;  // started by start(), joined by the destructor
  std::thread fast_thread_;
};

}  // namespace berth::stats
