// default_ulimits (CRI-O's syntax) to OCI process.rlimits.
#include "oci/rlimits.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

namespace berth::oci {
namespace {

TEST(UlimitTest, SoftAndHard) {
  auto r = parseUlimit("nofile=1024:2048");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->type, "RLIMIT_NOFILE");
  EXPECT_EQ(r->soft, 1024u);
  EXPECT_EQ(r->hard, 2048u);
}

TEST(UlimitTest, OneValueIsBothAndMinusOneIsUnlimited) {
  auto r = parseUlimit("core=0");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->type, "RLIMIT_CORE");
  EXPECT_EQ(r->soft, 0u);
  EXPECT_EQ(r->hard, 0u);
  r = parseUlimit("memlock=65536:-1");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->hard, RLIM_INFINITY);
  r = parseUlimit("stack=-1");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->soft, RLIM_INFINITY);
}

TEST(UlimitTest, BadOnesAreNamed) {
  for (const char* bad : {"nofile", "files=1", "nofile=", "nofile=x", "nofile=1:y", "nofile=-2",
                          "nofile=10:5", "nofile=-1:5", "nofile=1:2:3"}) {
    auto r = parseUlimit(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(bad), std::string::npos) << r.status();
  }
}

TEST(UlimitTest, EachTypeOnce) {
  EXPECT_FALSE(parseUlimits({"nofile=1", "nofile=2"}).ok());
  auto all = parseUlimits({"nofile=1024:2048", "core=0"});
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(rlimitsJson(*all).dump(), R"([{"hard":2048,"soft":1024,"type":"RLIMIT_NOFILE"},)"
                                      R"({"hard":0,"soft":0,"type":"RLIMIT_CORE"}])");
}

}  // namespace
}  // namespace berth::oci
