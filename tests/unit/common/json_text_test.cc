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

namespace berth {
namespace {

// As Go's encoding/json: every byte that does not start a valid sequence becomes U+FFFD.
TEST(CoerceToUtf8Test, InvalidBytesBecomeReplacementCharacters) {
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(coerceToUtf8("plain"), "plain");
  EXPECT_EQ(coerceToUtf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"),
            "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
  EXPECT_EQ(coerceToUtf8(std::string("a\xFF\xFE"
                                     "b",
                                     4)),
            "a" + r + r + "b");
  EXPECT_EQ(coerceToUtf8("\xC0\xAF"), r + r);                  // overlong '/'
  EXPECT_EQ(coerceToUtf8("\xE0\x80\xAF"), r + r + r);          // overlong, 3 bytes
  EXPECT_EQ(coerceToUtf8("\xED\xA0\x80"), r + r + r);          // a surrogate
  EXPECT_EQ(coerceToUtf8("\xF4\x90\x80\x80"), r + r + r + r);  // above U+10FFFF
  EXPECT_EQ(coerceToUtf8("\xE2\x82"), r + r);                  // cut short
  EXPECT_EQ(coerceToUtf8(std::string("\0x", 2)), std::string("\0x", 2));
  EXPECT_TRUE(nlohmann::json(coerceToUtf8("\xFF")).dump() == "\"\xEF\xBF\xBD\"");
}

}  // namespace
}  // namespace berth
