// Tests for the limits on JSON from outside: the depth scan, the checked parse, and the lenient
// reader of stored JSON.
#include "common/json_text.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace berth {
namespace {

using ::testing::HasSubstr;

std::string nested(int depth, char open = '[', char close = ']') {
  return std::string(depth, open) + std::string(depth, close);
}

TEST(JsonTextTest, DepthCountsArraysAndObjectsButNotStrings) {
  EXPECT_EQ(jsonNestingDepth("1"), 0);
  EXPECT_EQ(jsonNestingDepth("{}"), 1);
  EXPECT_EQ(jsonNestingDepth(R"({"a":[1,{"b":[]}],"c":{}})"), 4);
  EXPECT_EQ(jsonNestingDepth(R"({"a":"[[[[{{{{"})"), 1) << "brackets inside strings";
  EXPECT_EQ(jsonNestingDepth(R"(["\"[[[", [2]])"), 2) << "escaped quotes";
  EXPECT_EQ(jsonNestingDepth(R"(["\\", [[3]]])"), 3) << "an escaped backslash ends the escape";
  EXPECT_EQ(jsonNestingDepth(nested(100000), 10), 10) << "stops counting at the bound";
}

TEST(JsonTextTest, UntrustedParseRefusesDeepAndLargeDocuments) {
  auto ok = parseUntrustedJson(nested(kMaxJsonDepth), "config", 1 << 20);
  EXPECT_TRUE(ok.ok()) << ok.status();
  auto deep = parseUntrustedJson(R"({"history":)" + nested(100000) + "}", "image config", 1 << 20);
  EXPECT_EQ(deep.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(deep.status().message(), HasSubstr("image config nests JSON"));
  auto big = parseUntrustedJson(std::string(2000, ' ') + "{}", "manifest", 1000);
  EXPECT_EQ(big.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(big.status().message(), HasSubstr("more than the limit of 1000"));
  auto bad = parseUntrustedJson("{nope", "result", 1000);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("result is not JSON"));
}

TEST(JsonTextTest, StoredJsonTooDeepReadsAsTheFallback) {
  EXPECT_EQ(parseJsonOr(nested(kMaxJsonDepth + 1, '{', '}'), nlohmann::json("x")), "x");
  EXPECT_EQ(parseJsonOr("", 7), 7);
  EXPECT_EQ(parseJsonOr("[1]", 7), nlohmann::json::array({1}));
  EXPECT_EQ(parseJsonObject("[1]"), nlohmann::json::object());
}

}  // namespace
}  // namespace berth
