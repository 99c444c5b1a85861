// Counters, gauges, histograms and computed metrics, rendered in the text format, and their
// use from many threads at once.
#include "metrics/registry.h"

#include <gtest/gtest.h>

#include <atomic>
#include <limits>
#include <sstream>
#include <thread>

namespace berth::metrics {
namespace {

TEST(RegistryTest, CountersAndGaugesRenderSortedWithHelpAndType) {
  Registry r;
  auto& reqs = r.counter("b_requests_total", "Requests \\ by method.\nSecond line.", {"method"});
  reqs.withLabels({"Version"}).inc();
  reqs.withLabels({"List"}).inc(2);
  reqs.withLabels({"List"}).inc(-5);  // ignored: counters only go up
  r.gauge("a_temperature", "A gauge.").get().set(-1.5);
  r.counter("c_unused_total", "No child yet: not shown.", {"x"});
  EXPECT_EQ(r.render(),
            "# HELP a_temperature A gauge.\n"
            "# TYPE a_temperature gauge\n"
            "a_temperature -1.5\n"
            "# HELP b_requests_total Requests \\\\ by method.\\nSecond line.\n"
            "# TYPE b_requests_total counter\n"
            "b_requests_total{method=\"List\"} 2\n"
            "b_requests_total{method=\"Version\"} 1\n");
}

TEST(RegistryTest, LabelValuesAreEscaped) {
  Registry r;
  r.counter("x_total", "X.", {"path"}).withLabels({"C:\\dir \"q\"\nnext"}).inc();
  EXPECT_NE(r.render().find("x_total{path=\"C:\\\\dir \\\"q\\\"\\nnext\"} 1\n"), std::string::npos)
      << r.render();
}

TEST(RegistryTest, ChildrenAreStableAndMissingValuesAreEmpty) {
  Registry r;
  auto& f = r.counter("x_total", "X.", {"a", "b"});
  Counter& one = f.withLabels({"1", "2"});
  EXPECT_EQ(&one, &f.withLabels({"1", "2"}));
  EXPECT_EQ(&f.withLabels({"1"}), &f.withLabels({"1", ""}));
  EXPECT_EQ(&f.withLabels({"1", "", "extra"}), &f.withLabels({"1", ""}));
  // The same registration returns the same family.
  EXPECT_EQ(&f, &r.counter("x_total", "Other help.", {"a", "b"}));
}

TEST(RegistryTest, HistogramBucketsAreCumulativeWithInfSumAndCount) {
  Registry r;
  // Unsorted, duplicated and +Inf bounds are tidied up.
  auto& h = r.histogram("d_seconds", "Durations.", {"m"},
                        {1, 0.25, 10, 1, std::numeric_limits<double>::infinity()});
  Histogram& x = h.withLabels({"x"});
  for (double v : {0.125, 0.25, 0.5, 4.0, 64.0}) x.observe(v);  // 0.25 lands in le="0.25"
  EXPECT_EQ(r.render(),
            "# HELP d_seconds Durations.\n"
            "# TYPE d_seconds histogram\n"
            "d_seconds_bucket{m=\"x\",le=\"0.25\"} 2\n"
            "d_seconds_bucket{m=\"x\",le=\"1\"} 3\n"
            "d_seconds_bucket{m=\"x\",le=\"10\"} 4\n"
            "d_seconds_bucket{m=\"x\",le=\"+Inf\"} 5\n"
            "d_seconds_sum{m=\"x\"} 68.875\n"
            "d_seconds_count{m=\"x\"} 5\n");
  Histogram::Snapshot s = x.snapshot();
  EXPECT_EQ(s.cumulative, (std::vector<uint64_t>{2, 3, 4}));
  EXPECT_EQ(s.count, 5u);
}

TEST(RegistryTest, UnlabelledHistogramShowsEmptyBuckets) {
  Registry r;
  r.histogram("p_seconds", "P.", {}, {0.5});
  EXPECT_EQ(r.render(),
            "# HELP p_seconds P.\n# TYPE p_seconds histogram\n"
            "p_seconds_bucket{le=\"0.5\"} 0\np_seconds_bucket{le=\"+Inf\"} 0\n"
            "p_seconds_sum 0\np_seconds_count 0\n");
}

TEST(RegistryTest, CallbacksRunAtEachRenderSortedAndPadded) {
  Registry r;
  int calls = 0;
  r.callback("pods", "Pods by state.", Type::kGauge, {"state", "kind"},
             [&calls](std::vector<CallbackSample>& out) {
               ++calls;
               out.push_back({.labels = {"ready", "x"}, .value = static_cast<double>(calls)});
               out.push_back({.labels = {"created"}, .value = 0});
             });
  r.callback("nothing", "Empty.", Type::kCounter, {}, [](std::vector<CallbackSample>&) {});
  std::string first = r.render();
  EXPECT_EQ(first,
            "# HELP pods Pods by state.\n# TYPE pods gauge\n"
            "pods{state=\"created\",kind=\"\"} 0\n"
            "pods{state=\"ready\",kind=\"x\"} 1\n");
  EXPECT_NE(r.render().find("pods{state=\"ready\",kind=\"x\"} 2\n"), std::string::npos);
}

TEST(RegistryDeathTest, ClashesAndBadNamesAbort) {
  Registry r;
  r.counter("x_total", "X.", {"a"});
  EXPECT_DEATH(r.gauge("x_total", "X."), "registered twice");
  EXPECT_DEATH(r.counter("x_total", "X.", {"b"}), "registered twice");
  EXPECT_DEATH(r.counter("bad-name", "X."), "invalid metric name");
  EXPECT_DEATH(r.counter("y_total", "X.", {"__x"}), "invalid label name");
  EXPECT_DEATH(r.histogram("h", "H.", {"le"}, {1}), "le");
  EXPECT_DEATH(r.counter("z_total", "X.", {"a", "a"}), "duplicate");
}

// Many writers on shared and new children while scrapes run: nothing is lost, and every
// scrape is well formed (its +Inf bucket equals its count).
TEST(RegistryTest, ConcurrentUpdatesAndScrapes) {
  Registry r;
  auto& counters = r.counter("c_total", "C.", {"t"});
  auto& hist = r.histogram("h_seconds", "H.", {}, {0.001, 0.01, 0.1});
  constexpr int kThreads = 8;
  constexpr int kPerThread = 20000;
  std::atomic<bool> done{false};
  std::thread scraper([&] {
    while (!done.load()) {
      std::string text = r.render();
      std::istringstream in(text);
      std::string line;
      std::string inf, count;
      while (std::getline(in, line)) {
        if (line.rfind("h_seconds_bucket{le=\"+Inf\"} ", 0) == 0)
          inf = line.substr(line.find("} ") + 2);
        if (line.rfind("h_seconds_count ", 0) == 0) count = line.substr(16);
      }
      EXPECT_EQ(inf, count);
    }
  });
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      Counter& shared = counters.withLabels({"shared"});
      for (int i = 0; i < kPerThread; ++i) {
        shared.inc();
        hist.get().observe(i % 2 == 0 ? 0.0005 : 0.5);
        if (i % 1000 == 0)
          counters.withLabels({"t" + std::to_string(t) + "-" + std::to_string(i)}).inc();
      }
    });
  }
  for (auto& w : writers) w.join();
  done = true;
  scraper.join();
  EXPECT_EQ(counters.withLabels({"shared"}).value(), kThreads * kPerThread);
  Histogram::Snapshot s = hist.get().snapshot();
  EXPECT_EQ(s.count, static_cast<uint64_t>(kThreads * kPerThread));
  EXPECT_EQ(s.cumulative[0], static_cast<uint64_t>(kThreads * kPerThread / 2));
  EXPECT_NEAR(s.sum, kThreads * (kPerThread / 2) * (0.0005 + 0.5), 1e-6);
  std::string text = r.render();
  EXPECT_NE(text.find("c_total{t=\"t7-19000\"} 1\n"), std::string::npos);
}

}  // namespace
}  // namespace berth::metrics
