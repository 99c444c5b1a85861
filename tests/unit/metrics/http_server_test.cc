// The /metrics endpoint: routing, and a real server on a loopback port of its own choosing
// driven by a plain socket client.
#include "metrics/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>

namespace berth::metrics {
namespace {

std::string render() { return "# HELP up Up.\n# TYPE up gauge\nup 1\n"; }

TEST(HttpRouteTest, GetMetricsOtherMethodsAndPaths) {
  HttpReply ok = routeMetricsRequest("GET", "/metrics", render);
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(ok.body, render());
  EXPECT_EQ(routeMetricsRequest("GET", "/metrics?name[]=up", render).status, 200);
  HttpReply post = routeMetricsRequest("POST", "/metrics", render);
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(post.allow, "GET");
  EXPECT_EQ(routeMetricsRequest("HEAD", "/metrics", render).status, 405);
  EXPECT_EQ(routeMetricsRequest("GET", "/", render).status, 404);
  EXPECT_EQ(routeMetricsRequest("GET", "/metrics/x", render).status, 404);
  EXPECT_EQ(routeMetricsRequest("DELETE", "/other", render).status, 404);
  HttpReply err = routeMetricsRequest("GET", "/metrics",
                                      []() -> std::string { throw std::runtime_error("boom"); });
  EXPECT_EQ(err.status, 500);
  EXPECT_NE(err.body.find("boom"), std::string::npos);
}

// A connected socket to 127.0.0.1:port with a receive timeout; -1 on failure.
int dial(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{.tv_sec = 5, .tv_usec = 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Everything the server sends until it closes the connection (or 5 s pass).
std::string readAll(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::string roundTrip(uint16_t port, const std::string& request) {
  int fd = dial(port);
  if (fd < 0) return "";
  (void)!::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string reply = readAll(fd);
  ::close(fd);
  return reply;
}

std::string get(const std::string& method, const std::string& target) {
  return method + " " + target + " HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
}

TEST(HttpServerTest, ServesMetricsAnd404And405) {
  auto server = MetricsHttpServer::start({.host = "127.0.0.1", .port = 0}, render);
  ASSERT_TRUE(server.ok()) << server.status();
  uint16_t port = (*server)->port();
  ASSERT_GT(port, 0);

  std::string ok = roundTrip(port, get("GET", "/metrics"));
  EXPECT_EQ(ok.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << ok;
  EXPECT_NE(ok.find("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
            std::string::npos)
      << ok;
  EXPECT_NE(ok.find("\r\n\r\n" + render()), std::string::npos) << ok;

  std::string missing = roundTrip(port, get("GET", "/nope"));
  EXPECT_EQ(missing.rfind("HTTP/1.1 404 ", 0), 0u) << missing;
  std::string post = roundTrip(port, get("POST", "/metrics"));
  EXPECT_EQ(post.rfind("HTTP/1.1 405 ", 0), 0u) << post;
  EXPECT_NE(post.find("Allow: GET\r\n"), std::string::npos) << post;
  // Garbage is dropped without a reply; the server keeps serving.
  EXPECT_EQ(roundTrip(port, "\x01\x02 not http\r\n\r\n").find("200 OK"), std::string::npos);
  EXPECT_EQ(roundTrip(port, get("GET", "/metrics")).rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
}

TEST(HttpServerTest, KeepAliveAnswersEachRequestOnOneConnection) {
  auto server = MetricsHttpServer::start({.host = "127.0.0.1", .port = 0}, render);
  ASSERT_TRUE(server.ok()) << server.status();
  std::string two = "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n" + get("GET", "/metrics");
  std::string replies = roundTrip((*server)->port(), two);
  size_t first = replies.find("HTTP/1.1 200 OK");
  ASSERT_NE(first, std::string::npos) << replies;
  EXPECT_NE(replies.find("HTTP/1.1 200 OK", first + 1), std::string::npos) << replies;
}

TEST(HttpServerTest, IdleClientsNeitherBlockScrapesNorShutdown) {
  auto server = MetricsHttpServer::start({.host = "127.0.0.1", .port = 0}, render,
                                         {.io_timeout = absl::Milliseconds(300)});
  ASSERT_TRUE(server.ok()) << server.status();
  uint16_t port = (*server)->port();
  int idle = dial(port);
  ASSERT_GE(idle, 0);
  EXPECT_EQ(roundTrip(port, get("GET", "/metrics")).rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
  // The idle connection is closed by the server once its timeout passes.
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(readAll(idle), "");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  ::close(idle);

  int idle2 = dial(port);
  ASSERT_GE(idle2, 0);
  start = std::chrono::steady_clock::now();
  server->reset();  // stops with a connection open
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  ::close(idle2);
  EXPECT_LT(dial(port), 0);  // nothing listens any more
}

TEST(HttpServerTest, BusyPortIsUnavailable) {
  auto first = MetricsHttpServer::start({.host = "127.0.0.1", .port = 0}, render);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = MetricsHttpServer::start({.host = "127.0.0.1", .port = (*first)->port()}, render);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(second.status().message().find("bind"), std::string::npos) << second.status();
}

}  // namespace
}  // namespace berth::metrics
