// host:port parsing for the metrics endpoint.
#include "metrics/listen_address.h"

#include <gtest/gtest.h>

namespace berth::metrics {
namespace {

TEST(ListenAddressTest, AcceptedForms) {
  struct Case {
    const char* text;
    const char* host;
    uint16_t port;
  };
  const Case cases[] = {
      {"127.0.0.1:9101", "127.0.0.1", 9101}, {"[::1]:9101", "::1", 9101},
      {"localhost:80", "127.0.0.1", 80},     {":9101", "0.0.0.0", 9101},
      {"0.0.0.0:0", "0.0.0.0", 0},           {"10.1.2.3:65535", "10.1.2.3", 65535},
  };
  for (const auto& c : cases) {
    auto a = parseListenAddress(c.text);
    ASSERT_TRUE(a.ok()) << c.text << ": " << a.status();
    EXPECT_EQ(a->host, c.host) << c.text;
    EXPECT_EQ(a->port, c.port) << c.text;
  }
}

TEST(ListenAddressTest, RefusedForms) {
  for (const char* bad :
       {"", "9101", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:91a",
        "::1:9101", "[127.0.0.1]:80", "example.com:80", "[]:80", "1.2.3:80"}) {
    auto a = parseListenAddress(bad);
    EXPECT_FALSE(a.ok()) << bad;
    EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace berth::metrics
