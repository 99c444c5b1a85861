// Tests for the number and "key value" parsers.
#include "stats/text_files.h"

#include "gtest/gtest.h"

namespace berth::stats {
namespace {

TEST(ParseUintTest, AcceptsNumbersWithWhitespaceOnly) {
  EXPECT_EQ(parseUint("42\n"), 42u);
  EXPECT_EQ(parseUint("  18446744073709551615 "), UINT64_MAX);
  EXPECT_EQ(parseUint("max\n"), std::nullopt);
  EXPECT_EQ(parseUint(""), std::nullopt);
  EXPECT_EQ(parseUint("12 34"), std::nullopt);
  EXPECT_EQ(parseUint("-1"), std::nullopt);
  EXPECT_EQ(parseUint("18446744073709551616"), std::nullopt);  // overflow
}

TEST(KeyedValueTest, MatchesWholeKeysOnly) {
  const char* stat = "rss 10\ntotal_rss 20\nrss_huge 30\ncache\t40\n";
  EXPECT_EQ(keyedValue(stat, "rss"), 10u);
  EXPECT_EQ(keyedValue(stat, "total_rss"), 20u);
  EXPECT_EQ(keyedValue(stat, "rss_huge"), 30u);
  EXPECT_EQ(keyedValue(stat, "cache"), 40u);
  EXPECT_EQ(keyedValue(stat, "total"), std::nullopt);
  EXPECT_EQ(keyedValue("", "rss"), std::nullopt);
}

}  // namespace
}  // namespace berth::stats
