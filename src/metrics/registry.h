// A small metrics registry in the Prometheus model: counters, gauges and histograms with
// labels, gauges computed when scraped, and the text exposition of all of them.
//
// Threads: everything here may be used from any thread. Updating a metric is lock-free (one
// relaxed atomic add); looking up a labelled child takes its family's mutex and allocates only
// the first time a label combination is seen. Children are never removed, so hot paths keep a
// reference to the children they use and skip the lookup altogether.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "metrics/exposition.h"

namespace berth::metrics {

// A value that only goes up. inc() ignores negative and NaN amounts.
class Counter {
 public:
  void inc(double v = 1) {
    if (v > 0) value_.fetch_add(v, std::memory_order_relaxed);
  }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Gauge {
 public:
  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  void add(double v) { value_.fetch_add(v, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Observations counted into buckets with upper bounds (`le`), plus their count and sum.
class Histogram {
 public:
  // `bounds` ascending, finite; the +Inf bucket is implicit.
  explicit Histogram(std::shared_ptr<const std::vector<double>> bounds);
  void observe(double v);

  struct Snapshot {
    std::vector<uint64_t> cumulative;  // per bound, observations <= bound
    uint64_t count = 0;                // all observations (the +Inf bucket)
    double sum = 0;
  };
  // Each bucket is read atomically; count is the sum of the buckets, so the +Inf bucket and
  // _count always agree, and cumulative counts never decrease along the bounds.
  Snapshot snapshot() const;
  const std::vector<double>& bounds() const { return *bounds_; }

 private:
  std::shared_ptr<const std::vector<double>> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // bounds + 1 (+Inf), not cumulative
  std::atomic<double> sum_{0};
};

// Buckets for durations in seconds, from half a millisecond to two minutes.
std::vector<double> durationBuckets();

// What every family shares: its name, help, type and label names.
class FamilyBase {
 public:
  FamilyBase(std::string name, std::string help, Type type, std::vector<std::string> label_names)
      : name_(std::move(name)),
        help_(std::move(help)),
        type_(type),
        label_names_(std::move(label_names)) {}
  virtual ~FamilyBase() = default;

  const std::string& name() const { return name_; }
  Type type() const { return type_; }
  const std::vector<std::string>& labelNames() const { return label_names_; }
  // Appends the family in text format; nothing when it has no sample.
  virtual void render(std::string& out) const = 0;

 protected:
  const std::string name_;
  const std::string help_;
  const Type type_;
  const std::vector<std::string> label_names_;
};

// The children of one metric, by label values (in the order of the label names).
template <typename T>
class Family final : public FamilyBase {
 public:
  Family(std::string name, std::string help, Type type, std::vector<std::string> label_names,
         std::function<std::unique_ptr<T>()> make)
      : FamilyBase(std::move(name), std::move(help), type, std::move(label_names)),
        make_(std::move(make)) {
    // A metric without labels has its one child from the start (and always shows).
    if (label_names_.empty()) children_.emplace(std::vector<std::string>{}, make_());
  }

  // The child for `values`, made on first use. Missing values count as "", extra ones are
  // dropped. The reference stays valid as long as the family.
  T& withLabels(std::vector<std::string> values) {
    values.resize(label_names_.size());
    absl::MutexLock lock(&mu_);
    auto it = children_.find(values);
    if (it == children_.end()) it = children_.emplace(std::move(values), make_()).first;
    return *it->second;
  }
  // The only child of a family without labels.
  T& get() { return withLabels({}); }

  void render(std::string& out) const override;

 private:
  const std::function<std::unique_ptr<T>()> make_;
  mutable absl::Mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<T>> children_ ABSL_GUARDED_BY(mu_);
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

// The sample lines of one child (`values` in the order of `label_names`).
void appendChild(std::string& out, const std::string& name,
                 const std::vector<std::string>& label_names,
                 const std::vector<std::string>& values, const Counter& c);
void appendChild(std::string& out, const std::string& name,
                 const std::vector<std::string>& label_names,
                 const std::vector<std::string>& values, const Gauge& g);
void appendChild(std::string& out, const std::string& name,
                 const std::vector<std::string>& label_names,
                 const std::vector<std::string>& values, const Histogram& h);

template <typename T>
void Family<T>::render(std::string& out) const {
  absl::MutexLock lock(&mu_);
  if (children_.empty()) return;
  appendHeader(out, name_, help_, type_);
  for (const auto& [values, child] : children_)
    appendChild(out, name_, label_names_, values, *child);
}

// One sample of a metric computed at scrape time.
struct CallbackSample {
  std::vector<std::string> labels;  // values, in the order of the label names
  double value = 0;
};
// Fills `out` with the current samples. Runs on the scraping thread: keep it quick (memory
// and small /proc reads), and never register metrics from it.
using CallbackFn = std::function<void(std::vector<CallbackSample>& out)>;

class Registry {
 public:
  // Registering a name again with the same type and label names returns the same family; a
  // clash (other type or labels) or an invalid name is a programming error and aborts.
  CounterFamily& counter(std::string name, std::string help,
                         std::vector<std::string> label_names = {});
  GaugeFamily& gauge(std::string name, std::string help, std::vector<std::string> label_names = {});
  HistogramFamily& histogram(std::string name, std::string help,
                             std::vector<std::string> label_names, std::vector<double> bounds);
  // A counter or gauge whose samples `fn` computes at each scrape.
  void callback(std::string name, std::string help, Type type, std::vector<std::string> label_names,
                CallbackFn fn);

  // Every family with at least one sample, sorted by name; children sorted by label values.
  std::string render() const;

 private:
  template <typename T>
  Family<T>& add(std::string name, std::string help, Type type,
                 std::vector<std::string> label_names, std::function<std::unique_ptr<T>()> make);

  mutable absl::Mutex mu_;
  // Families are never removed, so pointers to them stay valid without the lock.
  std::map<std::string, std::unique_ptr<FamilyBase>, std::less<>> families_ ABSL_GUARDED_BY(mu_);
};

}  // namespace berth::metrics
