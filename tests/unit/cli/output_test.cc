// berthctl output formats.
#include "cli/output.h"
#include "cli/progress.h"

#include <gtest/gtest.h>

#include "runtime/v1/api.h"

namespace berth::cli {
namespace {

TEST(OutputTest, ParsesFormats) {
  EXPECT_EQ(*parseOutputFormat("json"), OutputFormat::kJson);
  EXPECT_EQ(*parseOutputFormat("yaml"), OutputFormat::kYaml);
  EXPECT_EQ(*parseOutputFormat("table"), OutputFormat::kTable);
  EXPECT_EQ(parseOutputFormat("xml").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(OutputTest, MessageToJsonUsesCamelCaseLikeCrictl) {
  runtime::v1::VersionResponse v;
  v.set_version("0.1.0");
  v.set_runtime_name("berth");
  v.set_runtime_api_version("v1");
  auto j = messageToJson(v);
  EXPECT_EQ(j["runtimeName"], "berth");
  EXPECT_EQ(j["runtimeApiVersion"], "v1");
  EXPECT_EQ(j["runtimeVersion"], "") << "empty fields are printed too";
}

TEST(OutputTest, YamlNestsAndQuotes) {
  auto j = nlohmann::json::parse(R"({
    "name": "berth", "port": 5, "ok": true, "tricky": "a: b", "num": "10",
    "list": [1, {"k": "v", "k2": "v2"}, []], "empty": {}, "nested": {"x": {"y": null}}
  })");
  std::string y = toYaml(j);
  EXPECT_EQ(y,
            "empty: {}\n"
            "list:\n"
            "  - 1\n"
            "  - k: v\n"
            "    k2: v2\n"
            "  - []\n"
            "name: berth\n"
            "nested:\n"
            "  x:\n"
            "    y: null\n"
            "num: \"10\"\n"
            "ok: true\n"
            "port: 5\n"
            "tricky: \"a: b\"\n");
}

TEST(OutputTest, KeyValueTableAligns) {
  EXPECT_EQ(keyValueTable({{"A", "1"}, {"Longer", "2"}}), "A:       1\nLonger:  2\n");
}

}  // namespace
}  // namespace berth::cli

namespace berth::cli {
namespace {

TEST(ProgressTest, LinesPerBlob) {
  auto p = nlohmann::json::parse(R"({"reference":"r","blobs":[
    {"digest":"sha256:0123456789abcdef","total":1000,"done":500,"complete":false},
    {"digest":"sha256:fedcba9876543210","total":2000000,"done":2000000,"complete":true},
    {"digest":"sha256:aaaaaaaaaaaaaaaa","total":-1,"done":1500,"complete":false}]})");
  auto lines = progressLines(p, 10);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "0123456789ab: [=====>    ] 500B/1.0kB");
  EXPECT_EQ(lines[1], "fedcba987654: done (2.0MB)");
  EXPECT_EQ(lines[2], "aaaaaaaaaaaa: 1.5kB");
  EXPECT_TRUE(progressLines(nlohmann::json::object(), 10).empty());
}

}  // namespace
}  // namespace berth::cli
