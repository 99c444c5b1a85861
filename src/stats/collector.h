// The stats collector behind the CRI stats RPCs: a background thread samples every tracked
// container and pod into a cache, and the RPCs only copy from that cache.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "stats/sample.h"

namespace berth::stats {

// What to measure for one container or pod.
struct Target {
  // The OCI linux.cgroupsPath in cgroupfs style ("/berth/<id>"), looked up under every v1
  // controller mount and under the v2 unified mount.
  std::string cgroup_path;
  // A process in the target (the pause process for pods); network stats come from
  // /proc/<pid>/net/dev, i.e. its network namespace. 0 = no network stats.
  int pid = 0;
  // A directory whose disk usage is the writable layer (an overlay upperdir); "" = none.
  std::string writable_dir;

  friend bool operator==(const Target&, const Target&) = default;
};

struct CollectorOptions {
  std::string cgroup_root = "/sys/fs/cgroup";  // tests point it at a fake tree
  std::string proc_root = "/proc";
  absl::Duration interval = absl::Seconds(10);  // how often every target is sampled
};

// One background thread samples every tracked target each interval into a cache; readers only
// copy from the cache (no file I/O, never waiting on a slow filesystem). A target whose cgroup
// is gone keeps its last sample until it is untracked.
//
// Every method may be called from any thread. No lock is held while files are read.
class Collector {
 public:
  explicit Collector(CollectorOptions options);
  ~Collector();  // stops the thread (an unfinished disk walk is abandoned) and joins it
  Collector(const Collector&) = delete;
  Collector& operator=(const Collector&) = delete;

  // Starts the sampling thread; it takes a first round at once. Calling it again does nothing.
  void start();
  // Starts (or replaces) tracking `key`. The new target is sampled soon by the thread, without
  // waiting for the next round; re-tracking with an identical target keeps its sample.
  void track(const std::string& key, Target target);
  void untrack(const std::string& key);
  // The last sample of `key`; nullopt when it is not tracked or not sampled yet.
  std::optional<Sample> latest(const std::string& key) const;
  // The last sample of every tracked and sampled key (for the List*Stats RPCs).
  std::vector<std::pair<std::string, Sample>> latestAll() const;
  // One synchronous round over every target, in the caller's thread.
  void collectNow();

 private:
  struct Entry {
    Target target;
    std::optional<Sample> sample;
    uint64_t generation = 0;  // changes when the target is replaced
    bool pending = false;     // tracked but not sampled since
  };
  // A snapshot of one entry, sampled with no lock held.
  struct Job {
    std::string key;
    uint64_t generation = 0;
    Target target;
    std::optional<Sample> previous;
  };

  void run();
  bool wakeReady() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<Job> takeJobs(bool all) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void runJobs(std::vector<Job> jobs);

  const CollectorOptions options_;
  std::atomic<bool> stopping_{false};  // read by disk walks to give up early

  mutable absl::Mutex mu_;
  // State below is protected by mu_.
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  uint64_t next_generation_ ABSL_GUARDED_BY(mu_) = 1;
  size_t pending_ ABSL_GUARDED_BY(mu_) = 0;  // entries with pending set
  bool stop_ ABSL_GUARDED_BY(mu_) = false;

  std::thread thread_;  // started by start(), joined by the destructor
};

// Reads one target now: the collector's building block, exposed for tests. `previous` (may be
// null) gives the CPU rate; parts whose files are missing are left empty, never an error.
Sample sampleTarget(const CollectorOptions& o, const Target& t, const Sample* previous,
                    int64_t now_ns);

}  // namespace berth::stats
