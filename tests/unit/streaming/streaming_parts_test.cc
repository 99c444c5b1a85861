// The streaming server's parts that need no daemon: one-time expiring tokens, WebSocket
// framing, resize messages and the Status objects of the error channel.
#include <gtest/gtest.h>

#include <set>

#include "nlohmann/json.hpp"
#include "streaming/remote_command.h"
#include "streaming/request_cache.h"
#include "streaming/websocket.h"

namespace berth::streaming {
namespace {

absl::Time g_now = absl::UnixEpoch();
absl::Time fakeNow() { return g_now; }

TEST(RequestCacheTest, TokensAreOneTimeBoundAndExpire) {
  RequestCache cache(absl::Minutes(1), 3);
  cache.setClockForTest(&fakeNow);
  g_now = absl::FromUnixSeconds(1000);
  auto a = cache.insert(ExecParams{.container_id = "c1", .cmd = {"sh"}});
  ASSERT_TRUE(a.ok());
  // 16 base64url characters: 96 random bits (issue 12: 48 bits were guessable).
  EXPECT_EQ(a->size(), 16u);
  for (char ch : *a) EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_') << *a;
  auto got = cache.consume(*a);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(std::get<ExecParams>(*got).container_id, "c1");
  EXPECT_STREQ(kindOf(*got), "exec");
  EXPECT_FALSE(cache.consume(*a).has_value());  // used up
  EXPECT_FALSE(cache.consume("nonsense").has_value());

  auto b = cache.insert(AttachParams{.container_id = "c2"});
  g_now += absl::Seconds(59);
  EXPECT_TRUE(cache.consume(*b).has_value());
  auto c = cache.insert(PortForwardParams{.sandbox_id = "p", .ports = {80}});
  g_now += absl::Seconds(61);
  EXPECT_FALSE(cache.consume(*c).has_value());  // expired
  EXPECT_EQ(cache.size(), 0u);
}

// A reload changes the lifetime of tokens issued afterwards; one issued after a shorter TTL
// expires on time although an older, longer-lived one is still waiting before it.
TEST(RequestCacheTest, ANewTtlAppliesToNewTokensAndEachExpiresOnItsOwn) {
  RequestCache cache(absl::Minutes(10), 8);
  cache.setClockForTest(&fakeNow);
  g_now = absl::FromUnixSeconds(9000);
  auto old_token = cache.insert(ExecParams{.container_id = "old"});
  cache.setTtl(absl::Seconds(5));
  auto new_token = cache.insert(ExecParams{.container_id = "new"});
  ASSERT_TRUE(old_token.ok() && new_token.ok());
  g_now += absl::Seconds(6);
  EXPECT_FALSE(cache.consume(*new_token).has_value()) << "the new TTL";
  EXPECT_TRUE(cache.consume(*old_token).has_value()) << "issued before: keeps its 10 minutes";
}

TEST(RequestCacheTest, InFlightRequestsAreBounded) {
  RequestCache cache(absl::Minutes(1), 2);
  cache.setClockForTest(&fakeNow);
  g_now = absl::FromUnixSeconds(5000);
  ASSERT_TRUE(cache.insert(ExecParams{}).ok());
  ASSERT_TRUE(cache.insert(ExecParams{}).ok());
  auto full = cache.insert(ExecParams{});
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted);
  g_now += absl::Minutes(2);  // the waiting ones expire and make room
  EXPECT_TRUE(cache.insert(ExecParams{}).ok());
}

TEST(RequestCacheTest, TokensCarryAtLeast64RandomBits) {
  std::set<std::string> seen;
  std::set<char> alphabet;
  for (int i = 0; i < 2000; ++i) {
    auto t = newToken();
    ASSERT_TRUE(t.ok()) << t.status();
    ASSERT_EQ(t->size(), 16u) << *t;
    for (char ch : *t) {
      ASSERT_TRUE(std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_') << *t;
      alphabet.insert(ch);
    }
    EXPECT_TRUE(seen.insert(*t).second);
  }
  // Every position varies over the whole base64url alphabet: no fixed or padding characters.
  EXPECT_EQ(alphabet.size(), 64u);
  for (size_t pos = 0; pos < 16; ++pos) {
    std::set<char> at;
    for (const auto& t : seen) at.insert(t[pos]);
    EXPECT_GT(at.size(), 32u) << "position " << pos;
  }
}

TEST(WebSocketTest, AcceptKeyFollowsRfc6455) {
  // The example of RFC 6455 section 1.3.
  EXPECT_EQ(wsAcceptKey("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(WebSocketTest, FramesRoundTripAtEveryLengthForm) {
  for (size_t len : {size_t{0}, size_t{1}, size_t{125}, size_t{126}, size_t{65535},
                     size_t{65536}, size_t{200000}}) {
    for (bool mask : {false, true}) {
      std::string payload(len, '\0');
      for (size_t i = 0; i < len; ++i) payload[i] = static_cast<char>(i * 7);
      std::string wire = encodeWsFrame(WsOpcode::kBinary, payload, mask);
      WsParser p;
      WsFrame f;
      bool got = true;
      // Byte by byte for the header, then the rest.
      size_t split = std::min<size_t>(wire.size(), 3);
      p.feed(std::string_view(wire).substr(0, split));
      ASSERT_TRUE(p.next(&f, &got).ok());
      if (split < wire.size()) {
        EXPECT_FALSE(got);
      }
      if (!got) {
        p.feed(std::string_view(wire).substr(split));
        ASSERT_TRUE(p.next(&f, &got).ok());
      }
      ASSERT_TRUE(got) << len;
      EXPECT_EQ(f.opcode, WsOpcode::kBinary);
      EXPECT_TRUE(f.fin);
      EXPECT_EQ(f.payload, payload) << len << " mask " << mask;
    }
  }
}

TEST(WebSocketTest, OversizeAndReservedBitsAreRefused) {
  WsParser small(10);
  small.feed(encodeWsFrame(WsOpcode::kBinary, std::string(11, 'x'), true));
  WsFrame f;
  bool got = false;
  EXPECT_EQ(small.next(&f, &got).code(), absl::StatusCode::kResourceExhausted);
  WsParser p;
  std::string bad = encodeWsFrame(WsOpcode::kText, "hi", false);
  bad[0] = static_cast<char>(bad[0] | 0x40);
  p.feed(bad);
  EXPECT_FALSE(p.next(&f, &got).ok());
}

TEST(ResizeDecoderTest, SizesSplitAcrossMessages) {
  ResizeDecoder d;
  EXPECT_TRUE(d.feed(R"({"Width":80,)").empty());
  auto sizes = d.feed(R"("Height":24}{"Width":100,"Height":40})" "\n" R"({"Width":"x"})");
  ASSERT_EQ(sizes.size(), 2u);
  EXPECT_EQ(sizes[0], std::make_pair(uint16_t{80}, uint16_t{24}));
  EXPECT_EQ(sizes[1], std::make_pair(uint16_t{100}, uint16_t{40}));
  EXPECT_TRUE(d.feed("garbage").empty());
  EXPECT_EQ(d.feed(R"({"Height":1,"Width":2})").size(), 1u);
}

TEST(StatusTest, ExitCodesAsKubernetesClientsReadThem) {
  EXPECT_EQ(successStatus(), R"({"metadata":{},"status":"Success"})");
  auto j = nlohmann::json::parse(exitCodeStatus({"sh", "-c", "exit 3"}, 3));
  EXPECT_EQ(j["status"], "Failure");
  EXPECT_EQ(j["reason"], "NonZeroExitCode");
  EXPECT_EQ(j["details"]["causes"][0]["reason"], "ExitCode");
  EXPECT_EQ(j["details"]["causes"][0]["message"], "3");
  EXPECT_EQ(j["message"],
            "command terminated with non-zero exit code: error executing command [sh -c exit 3], "
            "exit code 3");
  auto f = nlohmann::json::parse(failureStatus("boom \"quoted\""));
  EXPECT_EQ(f["message"], "boom \"quoted\"");
  EXPECT_EQ(f["status"], "Failure");
}

}  // namespace
}  // namespace berth::streaming
