// The streaming server without a daemon: routing of tokens, the session limit, a stop that
// ends sessions and pending connections, and where it listens. The backend refuses everything.
#include "streaming/server.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "streaming/client.h"
#include "test_util.h"

namespace berth::streaming {
namespace {

using testing::connectTo;
using testing::portOf;
using testing::probe;
using testing::readAll;
using testing::RefusingBackend;

// A SPDY port-forward session that opens no stream: it stays until the client leaves.
std::unique_ptr<ByteStream> holdSession(Server& server) {
  auto url = server.urlFor(PortForwardParams{.sandbox_id = "pod", .ports = {80}});
  EXPECT_TRUE(url.ok()) << url.status();
  auto up = upgrade(*url, Transport::kSpdy, {"portforward.k8s.io"});
  EXPECT_TRUE(up.ok()) << up.status();
  EXPECT_EQ(up->status, 101) << up->body;
  return std::move(up->conn);
}

TEST(StreamingServerTest, BackendErrorsReachTheClientAsAStatus) {
  RefusingBackend backend;
  Server server({.max_sessions = 4}, backend);
  ASSERT_TRUE(server.start().ok());
  for (Transport t : {Transport::kSpdy, Transport::kWebSocket}) {
    auto url = server.urlFor(ExecParams{.container_id = "gone", .cmd = {"true"}, .stdout = true});
    ASSERT_TRUE(url.ok());
    auto c = CommandClient::connect(*url, {.stderr = false, .transport = t});
    ASSERT_TRUE(c.ok()) << c.status();
    auto r = (*c)->run([](int, std::string_view) {});
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->exit_code, -1);
    EXPECT_EQ(r->message, "no container gone");
  }
  server.stop();
}

TEST(StreamingServerTest, SessionsBeyondTheLimitAreRefusedAndKeepTheirToken) {
  RefusingBackend backend;
  Server server({.max_sessions = 1}, backend);
  ASSERT_TRUE(server.start().ok());
  auto held = holdSession(server);
  ASSERT_NE(held, nullptr);
  auto url = server.urlFor(ExecParams{.container_id = "gone", .cmd = {"true"}, .stdout = true});
  ASSERT_TRUE(url.ok());
  auto busy = upgrade(*url, Transport::kSpdy, {"v4.channel.k8s.io"});
  ASSERT_TRUE(busy.ok()) << busy.status();
  EXPECT_EQ(busy->status, 503) << busy->body;
  // Once the session ended, the same URL works: a full server did not use up its token.
  held->shutdownBoth();
  held.reset();
  absl::StatusOr<std::unique_ptr<CommandClient>> c;
  for (int i = 0; i < 100; ++i) {  // the ended session gives its slot back on its own thread
    c = CommandClient::connect(*url, {.stderr = false});
    if (c.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(c.ok()) << c.status();
  auto r = (*c)->run([](int, std::string_view) {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->message, "no container gone");
  server.stop();
}

TEST(StreamingServerTest, StopEndsSessionsAndPendingConnections) {
  RefusingBackend backend;
  Server server({.upgrade_timeout = absl::Seconds(60)}, backend);
  ASSERT_TRUE(server.start().ok());
  auto held = holdSession(server);
  ASSERT_NE(held, nullptr);
  UniqueFd idle = connectTo(portOf(server.baseUrl()));  // pending, sends nothing
  ASSERT_TRUE(probe(idle.get(), 200).open);
  // Neither the session nor the pending connection's deadline holds stop() up.
  auto start = std::chrono::steady_clock::now();
  server.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(readAll(idle.get()), "");
  std::string rest;
  held->setReadTimeout(5000);
  EXPECT_FALSE(held->readSome(&rest));
}

TEST(StreamingServerTest, UnknownPathsAndTokensAre404) {
  RefusingBackend backend;
  Server server({}, backend);
  ASSERT_TRUE(server.start().ok());
  for (const char* path : {"/exec/nope", "/metrics", "/portforward/", "/attach/a/b"}) {
    auto r = upgrade(server.baseUrl() + path, Transport::kSpdy, {"v4.channel.k8s.io"});
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->status, 404) << path;
  }
  server.stop();
}

TEST(StreamingServerTest, AWildcardAddressIsReportedAsBoundAndUrlsUseLoopback) {
  RefusingBackend backend;
  Server server({.address = "0.0.0.0"}, backend);
  ASSERT_TRUE(server.start().ok());
  int port = portOf(server.baseUrl());
  EXPECT_EQ(server.listenAddress(), "0.0.0.0:" + std::to_string(port));
  EXPECT_EQ(server.baseUrl(), "http://127.0.0.1:" + std::to_string(port));
  server.stop();

  Server v6({.address = "::"}, backend);
  if (v6.start().ok()) {
    int p6 = portOf(v6.baseUrl());
    EXPECT_EQ(v6.listenAddress(), "[::]:" + std::to_string(p6));
    EXPECT_EQ(v6.baseUrl(), "http://[::1]:" + std::to_string(p6));
  }
}

}  // namespace
}  // namespace berth::streaming
