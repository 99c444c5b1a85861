// The streaming server without a daemon: routing of tokens, the session limit, and a stop that
// ends sessions in progress. The backend is a fake that refuses everything.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "absl/strings/numbers.h"
#include "streaming/client.h"
#include "streaming/server.h"

namespace berth::streaming {
namespace {

class RefusingBackend : public Backend {
 public:
  absl::StatusOr<std::unique_ptr<shim::StreamedProcess>> exec(const ExecParams& p) override {
    return absl::NotFoundError("no container " + p.container_id);
  }
  absl::StatusOr<std::unique_ptr<shim::Attachment>> attach(const AttachParams& p) override {
    return absl::NotFoundError("no container " + p.container_id);
  }
  void attachStdinEnded(const AttachParams&) override {}
  absl::StatusOr<UniqueFd> dialPort(const std::string&, int32_t) override {
    return absl::UnavailableError("nothing listens");
  }
};

int portOf(const std::string& base) {
  int port = 0;
  EXPECT_TRUE(absl::SimpleAtoi(base.substr(base.rfind(':') + 1), &port)) << base;
  return port;
}

UniqueFd connectTo(int port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  return fd;
}

std::string readAll(int fd) {
  std::string out;
  char buf[512];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
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

TEST(StreamingServerTest, SessionsBeyondTheLimitAreRefused) {
  RefusingBackend backend;
  Server server({.max_sessions = 1}, backend);
  ASSERT_TRUE(server.start().ok());
  int port = portOf(server.baseUrl());
  UniqueFd idle = connectTo(port);  // holds the one session, sending nothing
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  UniqueFd second = connectTo(port);
  std::string reply = readAll(second.get());
  EXPECT_EQ(reply.rfind("HTTP/1.1 503", 0), 0u) << reply;
  // Stopping ends the idle session too, without waiting for its request timeout.
  auto start = std::chrono::steady_clock::now();
  server.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(readAll(idle.get()), "");
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

}  // namespace
}  // namespace berth::streaming
