// Metric families and their text exposition.
#include "metrics/registry.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace berth::metrics {
namespace {

// Registration mistakes are bugs in berth, found by the first test that starts the daemon.
[[noreturn]] void misuse(const std::string& name, const char* what) {
  std::fprintf(stderr, "metrics: metric \"%s\": %s\n", name.c_str(), what);
  std::abort();
}

void checkNames(const std::string& name, const std::vector<std::string>& label_names, Type type) {
  if (!validMetricName(name)) misuse(name, "invalid metric name");
  for (size_t i = 0; i < label_names.size(); ++i) {
    const std::string& l = label_names[i];
    if (!validLabelName(l)) misuse(name, "invalid label name");
    if (type == Type::kHistogram && l == "le") misuse(name, "a histogram cannot have label \"le\"");
    if (std::find(label_names.begin(), label_names.begin() + i, l) != label_names.begin() + i) {
      misuse(name, "duplicate label name");
    }
  }
}

// A counter or gauge whose samples are computed when the registry is rendered.
class CallbackFamily final : public FamilyBase {
 public:
  CallbackFamily(std::string name, std::string help, Type type,
                 std::vector<std::string> label_names, CallbackFn fn)
      : FamilyBase(std::move(name), std::move(help), type, std::move(label_names)),
        fn_(std::move(fn)) {}

  void render(std::string& out) const override {
    std::vector<CallbackSample> samples;
    fn_(samples);
    if (samples.empty()) return;
    for (auto& s : samples) s.labels.resize(label_names_.size());
    std::sort(samples.begin(), samples.end(),
              [](const CallbackSample& a, const CallbackSample& b) { return a.labels < b.labels; });
    appendHeader(out, name_, help_, type_);
    for (const auto& s : samples) appendSample(out, name_, label_names_, s.labels, s.value);
  }

 private:
  const CallbackFn fn_;
};

}  // namespace

Histogram::Histogram(std::shared_ptr<const std::vector<double>> bounds)
    : bounds_(std::move(bounds)),
      buckets_(std::make_unique<std::atomic<uint64_t>[]>(bounds_->size() + 1)) {}

void Histogram::observe(double v) {
  if (std::isnan(v)) return;
  // The first bucket whose bound is >= v; past the last bound, the +Inf bucket.
  size_t i = std::lower_bound(bounds_->begin(), bounds_->end(), v) - bounds_->begin();
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.cumulative.reserve(bounds_->size());
  uint64_t running = 0;
  for (size_t i = 0; i < bounds_->size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(running);
  }
  s.count = running + buckets_[bounds_->size()].load(std::memory_order_relaxed);
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

std::vector<double> durationBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
          0.5,    1,     2.5,    5,     10,   30,    60,   120};
}

void appendChild(std::string& out, const std::string& name,
                 const std::vector<std::string>& label_names,
                 const std::vector<std::string>& values, const Counter& c) {
  appendSample(out, name, label_names, values, c.value());
}

void appendChild(std::string& out, const std::string& name,
                 const std::vector<std::string>& label_names,
                 const std::vector<std::string>& values, const Gauge& g) {
  appendSample(out, name, label_names, values, g.value());
}

void appendChild(std::string& out, const std::string& name,
                 const std::vector<std::string>& label_names,
                 const std::vector<std::string>& values, const Histogram& h) {
  Histogram::Snapshot s = h.snapshot();
  const std::string bucket = name + "_bucket";
  for (size_t i = 0; i < s.cumulative.size(); ++i) {
    appendSample(out, bucket, label_names, values, static_cast<double>(s.cumulative[i]),
                 formatValue(h.bounds()[i]));
  }
  appendSample(out, bucket, label_names, values, static_cast<double>(s.count), "+Inf");
  appendSample(out, name + "_sum", label_names, values, s.sum);
  appendSample(out, name + "_count", label_names, values, static_cast<double>(s.count));
}

template <typename T>
Family<T>& Registry::add(std::string name, std::string help, Type type,
                         std::vector<std::string> label_names,
                         std::function<std::unique_ptr<T>()> make) {
  checkNames(name, label_names, type);
  absl::MutexLock lock(&mu_);
  if (auto it = families_.find(name); it != families_.end()) {
    auto* same = dynamic_cast<Family<T>*>(it->second.get());
    if (same == nullptr || same->type() != type || same->labelNames() != label_names) {
      misuse(name, "registered twice with another type or other labels");
    }
    return *same;
  }
  auto family = std::make_unique<Family<T>>(name, std::move(help), type, std::move(label_names),
                                            std::move(make));
  Family<T>& ref = *family;
  families_.emplace(std::move(name), std::move(family));
  return ref;
}

CounterFamily& Registry::counter(std::string name, std::string help,
                                 std::vector<std::string> label_names) {
  return add<Counter>(std::move(name), std::move(help), Type::kCounter, std::move(label_names),
                      [] { return std::make_unique<Counter>(); });
}

GaugeFamily& Registry::gauge(std::string name, std::string help,
                             std::vector<std::string> label_names) {
  return add<Gauge>(std::move(name), std::move(help), Type::kGauge, std::move(label_names),
                    [] { return std::make_unique<Gauge>(); });
}

HistogramFamily& Registry::histogram(std::string name, std::string help,
                                     std::vector<std::string> label_names,
                                     std::vector<double> bounds) {
  std::sort(bounds.begin(), bounds.end());
  bounds.erase(std::unique(bounds.begin(), bounds.end()), bounds.end());
  if (!bounds.empty() && std::isinf(bounds.back())) bounds.pop_back();  // +Inf is implicit
  auto shared = std::make_shared<const std::vector<double>>(std::move(bounds));
  return add<Histogram>(std::move(name), std::move(help), Type::kHistogram, std::move(label_names),
                        [shared] { return std::make_unique<Histogram>(shared); });
}

void Registry::callback(std::string name, std::string help, Type type,
                        std::vector<std::string> label_names, CallbackFn fn) {
  if (type == Type::kHistogram) misuse(name, "a computed metric must be a counter or a gauge");
  checkNames(name, label_names, type);
  absl::MutexLock lock(&mu_);
  if (families_.contains(name)) misuse(name, "registered twice");
  families_.emplace(name, std::make_unique<CallbackFamily>(name, std::move(help), type,
                                                           std::move(label_names), std::move(fn)));
}

std::string Registry::render() const {
  std::vector<const FamilyBase*> families;
  {
    absl::MutexLock lock(&mu_);
    families.reserve(families_.size());
    for (const auto& [name, f] : families_) families.push_back(f.get());
  }
  // Rendered without the registry lock: callbacks may take a while and must not block
  // registrations.
  std::string out;
  for (const auto* f : families) f->render(out);
  return out;
}

}  // namespace berth::metrics
