// The /metrics endpoint: routing, and a real server on a loopback port of its own choosing
// driven by a plain socket client.
#include "metrics/http_server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

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

// The soft RLIMIT_NOFILE under which exactly `free` more descriptors can be opened.
rlim_t limitLeavingFree(int free) {
  std::set<int> open;
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) std::abort();
  int own = ::dirfd(dir);
  while (dirent* e = ::readdir(dir)) {
    if (e->d_name[0] != '.' && std::atoi(e->d_name) != own) open.insert(std::atoi(e->d_name));
  }
  ::closedir(dir);
  rlim_t limit = 0;
  for (int left = free; left > 0; ++limit) {
    if (!open.contains(static_cast<int>(limit))) --left;
  }
  return limit;
}

// Reads one whole reply to GET /metrics (the connection stays open: keep-alive).
std::string readReply(int fd) {
  std::string out;
  char buf[4096];
  while (out.find("up 1\n") == std::string::npos) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// After accept fails with EMFILE the endpoint keeps accepting. It runs in a child process
// whose open-file limit leaves room for two connections; six clients each send a request, and
// each is answered once an earlier one has gone.
TEST(HttpServerTest, KeepsAcceptingAfterRunningOutOfDescriptors) {
  char log_path[] = "/tmp/berth-metrics-emfile-XXXXXX";
  int log_fd = ::mkstemp(log_path);
  ASSERT_GE(log_fd, 0);
  int port_pipe[2], stop_pipe[2];
  ASSERT_EQ(::pipe(port_pipe), 0);
  ASSERT_EQ(::pipe(stop_pipe), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::dup2(log_fd, STDERR_FILENO);
    ::close(port_pipe[0]);
    ::close(stop_pipe[1]);
    auto server = MetricsHttpServer::start({.host = "127.0.0.1", .port = 0}, render,
                                           {.io_timeout = absl::Seconds(60)});
    if (!server.ok()) ::_exit(2);
    rlimit r{};
    ::getrlimit(RLIMIT_NOFILE, &r);
    r.rlim_cur = limitLeavingFree(2);
    if (::setrlimit(RLIMIT_NOFILE, &r) != 0) ::_exit(3);
    uint16_t port = (*server)->port();
    if (::write(port_pipe[1], &port, sizeof port) != sizeof port) ::_exit(4);
    char c;
    (void)!::read(stop_pipe[0], &c, 1);  // until the test is done
    ::_exit(0);
  }
  ::close(log_fd);
  ::close(port_pipe[1]);
  ::close(stop_pipe[0]);
  uint16_t port = 0;
  ASSERT_EQ(::read(port_pipe[0], &port, sizeof port), static_cast<ssize_t>(sizeof port));
  ::close(port_pipe[0]);

  const std::string request = "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n";
  std::vector<int> clients;
  for (int i = 0; i < 6; ++i) {
    int fd = dial(port);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(request.size()));
    clients.push_back(fd);
  }
  // Answered one after another, as each answered client leaves and frees a descriptor.
  for (int fd : clients) {
    EXPECT_EQ(readReply(fd).rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
    ::close(fd);
  }
  ::close(stop_pipe[1]);
  int status = 0;
  ::waitpid(child, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  std::stringstream log;
  log << std::ifstream(log_path).rdbuf();
  ::unlink(log_path);
  EXPECT_NE(log.str().find("Too many open files"), std::string::npos)
      << "the server never ran out of descriptors, so this test proved nothing: " << log.str();
}

}  // namespace
}  // namespace berth::metrics
