// Tests for oom_score_adj clamping.
#include "oci/oom.h"

#include <cstdlib>

#include "common/fs.h"
#include "gtest/gtest.h"

namespace berth::oci {
namespace {

struct Case {
  int wanted, own;
  bool can_lower;
  int want;
};

class ClampTest : public ::testing::TestWithParam<Case> {};

TEST_P(ClampTest, Clamps) {
  const Case& c = GetParam();
  EXPECT_EQ(clampOomScoreAdj(c.wanted, c.own, c.can_lower), c.want);
}

INSTANTIATE_TEST_SUITE_P(Cases, ClampTest,
                         ::testing::Values(Case{-998, 0, false, 0}, Case{-998, -999, false, -998},
                                           Case{-998, -500, false, -500}, Case{500, 0, false, 500},
                                           Case{-998, 0, true, -998}, Case{0, 300, false, 300},
                                           Case{1000, 300, false, 1000}));

TEST(ClampTest, NeverBelowOwnValue) {
  auto own = readFile("/proc/self/oom_score_adj");
  ASSERT_TRUE(own.ok());
  int v = clampOomScoreAdj(-998);
  EXPECT_GE(v, -998);
  EXPECT_LE(v, std::max(-998, std::atoi(own->c_str())));
  EXPECT_EQ(clampOomScoreAdj(999), 999);
}

}  // namespace
}  // namespace berth::oci
