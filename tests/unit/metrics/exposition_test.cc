// Escaping, number formatting and sample lines of the text format.
#include "metrics/exposition.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace berth::metrics {
namespace {

TEST(ExpositionTest, LabelValuesEscapeBackslashQuoteAndNewline) {
  std::string out;
  appendEscapedLabelValue(out, "a\\b\"c\nd\te");
  EXPECT_EQ(out, "a\\\\b\\\"c\\nd\te");
}

TEST(ExpositionTest, HelpEscapesBackslashAndNewlineOnly) {
  std::string out;
  appendEscapedHelp(out, "say \"hi\"\\\nbye");
  EXPECT_EQ(out, "say \"hi\"\\\\\\nbye");
}

TEST(ExpositionTest, ValuesReadBackExactly) {
  struct Case {
    double v;
    const char* text;
  };
  const Case cases[] = {
      {0, "0"},
      {3, "3"},
      {-2, "-2"},
      {0.25, "0.25"},
      {0.005, "0.005"},
      {0.0005, "0.0005"},
      {0.0001, "0.0001"},
      {0.00001, "1e-05"},
      {1.0375e-05, "1.0375e-05"},
      {1234.5, "1234.5"},
      {2.5, "2.5"},
      {1e21, "1e+21"},
      {123456789012, "123456789012"},
      {1.5e-7, "1.5e-07"},
      {std::numeric_limits<double>::infinity(), "+Inf"},
      {-std::numeric_limits<double>::infinity(), "-Inf"},
      {std::numeric_limits<double>::quiet_NaN(), "NaN"},
  };
  for (const auto& c : cases) EXPECT_EQ(formatValue(c.v), c.text) << c.v;
}

TEST(ExpositionTest, HeaderAndSampleLines) {
  std::string out;
  appendHeader(out, "x_total", "Things.\nMore.", Type::kCounter);
  appendSample(out, "x_total", {}, {}, 7);
  appendSample(out, "x_total", {"a", "b"}, {"1", "q\""}, 2.5);
  appendSample(out, "h_bucket", {}, {}, 1, "0.1");
  appendSample(out, "h_bucket", {"m"}, {"v"}, 3, "+Inf");
  EXPECT_EQ(out,
            "# HELP x_total Things.\\nMore.\n"
            "# TYPE x_total counter\n"
            "x_total 7\n"
            "x_total{a=\"1\",b=\"q\\\"\"} 2.5\n"
            "h_bucket{le=\"0.1\"} 1\n"
            "h_bucket{m=\"v\",le=\"+Inf\"} 3\n");
}

TEST(ExpositionTest, NameRules) {
  for (const char* ok : {"a", "berth_cri_requests_total", "_x", "a:b", "A9"}) {
    EXPECT_TRUE(validMetricName(ok)) << ok;
  }
  for (const char* bad : {"", "9a", "a-b", "a b", "é"}) EXPECT_FALSE(validMetricName(bad)) << bad;
  for (const char* ok : {"method", "_x", "le", "a9"}) EXPECT_TRUE(validLabelName(ok)) << ok;
  for (const char* bad : {"", "__name", "a:b", "9", "a-b"}) {
    EXPECT_FALSE(validLabelName(bad)) << bad;
  }
}

}  // namespace
}  // namespace berth::metrics
