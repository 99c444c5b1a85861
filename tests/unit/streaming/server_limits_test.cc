// The streaming server against clients that do not play fair (issue 12): idle connections,
// slow requests, many connections from one client, guessed tokens. Clients of other users run
// in forked children that setuid() (these tests need root; they skip without it).
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "streaming/client.h"
#include "streaming/server.h"
#include "test_util.h"

namespace berth::streaming {
namespace {

using testing::connectTo;
using testing::forkAs;
using testing::kNobody;
using testing::Pipe;
using testing::portOf;
using testing::probe;
using testing::rawConnect;
using testing::rawRequestStatus;
using testing::RefusingBackend;
using testing::waitExit;

constexpr uid_t kOtherUser = 65533;

// Exec through a fresh URL: the refusing backend's answer proves the session ran.
void expectExecWorks(Server& server) {
  auto url = server.urlFor(ExecParams{.container_id = "x", .cmd = {"true"}, .stdout = true});
  ASSERT_TRUE(url.ok()) << url.status();
  auto c = CommandClient::connect(*url, {.stderr = false});
  ASSERT_TRUE(c.ok()) << c.status();
  auto r = (*c)->run([](int, std::string_view) {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->message, "no container x");
}

// How a client's connections fared.
struct Tally {
  int open = 0, refused_429 = 0, refused_503 = 0, closed = 0;
};

// A client of another user: it opens `n` connections, reports after two seconds how they
// look, and holds them until the parent closes `hold`.
class Crowd {
 public:
  Crowd(uid_t uid, int port, int n) {
    pid_ = forkAs(uid, [&] {
      ::close(hold_.w.get());  // the parent's end: its closing is the signal
      int fds[512];
      for (int i = 0; i < n && i < 512; ++i) fds[i] = rawConnect(port);
      timespec settle{2, 0};
      ::nanosleep(&settle, nullptr);
      Tally t;
      for (int i = 0; i < n && i < 512; ++i) {
        auto s = fds[i] < 0 ? testing::ConnState{} : probe(fds[i], 0);
        if (s.open) {
          ++t.open;
        } else if (s.status == 429) {
          ++t.refused_429;
        } else if (s.status == 503) {
          ++t.refused_503;
        } else {
          ++t.closed;
        }
      }
      (void)!::write(result_.w.get(), &t, sizeof t);
      char c;
      (void)!::read(hold_.r.get(), &c, 1);
      return 0;
    });
    result_.w.reset();
    hold_.r.reset();
  }
  ~Crowd() {
    hold_.w.reset();
    if (pid_ > 0) waitExit(pid_);
  }
  Tally tally() {
    Tally t;
    EXPECT_EQ(::read(result_.r.get(), &t, sizeof t), static_cast<ssize_t>(sizeof t));
    return t;
  }

 private:
  Pipe result_, hold_;
  pid_t pid_ = -1;
};

TEST(StreamingLimitsTest, IdleConnectionsDoNotHoldSessionSlots) {
  RefusingBackend backend;
  Server server({.max_sessions = 1}, backend);
  ASSERT_TRUE(server.start().ok());
  int port = portOf(server.baseUrl());
  std::vector<UniqueFd> idle;
  for (int i = 0; i < 10; ++i) idle.push_back(connectTo(port));
  ASSERT_TRUE(probe(idle.back().get(), 200).open);
  expectExecWorks(server);
  // The one slot comes back once the first session's connection has ended on the server's
  // side, a moment after its client has the result.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (server.sessionCount() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  expectExecWorks(server);
  server.stop();
}

TEST(StreamingLimitsTest, PendingConnectionsAreBoundedPerPeerAndInAll) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run clients as other users";
  RefusingBackend backend;
  Server server({.upgrade_timeout = absl::Seconds(60), .max_pending = 6, .max_pending_per_peer = 4},
                backend);
  ASSERT_TRUE(server.start().ok());
  int port = portOf(server.baseUrl());
  // One user's extra connections are refused at once, without waiting for the deadline.
  Crowd a(kNobody, port, 8);
  Tally ta = a.tally();
  EXPECT_EQ(ta.open, 4);
  EXPECT_EQ(ta.refused_429, 4);
  // A second user gets what is left of the total.
  Crowd b(kOtherUser, port, 4);
  Tally tb = b.tally();
  EXPECT_EQ(tb.open, 2);
  EXPECT_EQ(tb.refused_503, 2);
  // Root (kubelet) has its own budget beyond the total, and its exec works.
  std::vector<UniqueFd> mine;
  for (int i = 0; i < 3; ++i) mine.push_back(connectTo(port));
  for (auto& fd : mine) EXPECT_TRUE(probe(fd.get(), 300).open);
  expectExecWorks(server);
  server.stop();
}

TEST(StreamingLimitsTest, SessionsDoNotCountAgainstThePendingBound) {
  RefusingBackend backend;
  Server server({.max_pending_per_peer = 2}, backend);
  ASSERT_TRUE(server.start().ok());
  // kubelet proxies every session from one peer: many sessions, then more requests.
  std::vector<std::unique_ptr<ByteStream>> sessions;
  for (int i = 0; i < 4; ++i) {
    auto url = server.urlFor(PortForwardParams{.sandbox_id = "pod", .ports = {80}});
    ASSERT_TRUE(url.ok());
    auto up = upgrade(*url, Transport::kSpdy, {"portforward.k8s.io"});
    ASSERT_TRUE(up.ok()) << up.status();
    ASSERT_EQ(up->status, 101) << up->body;
    sessions.push_back(std::move(up->conn));
  }
  UniqueFd idle = connectTo(portOf(server.baseUrl()));
  expectExecWorks(server);
  server.stop();
}

TEST(StreamingLimitsTest, TheWholeUpgradeHasADeadline) {
  RefusingBackend backend;
  Server server({.upgrade_timeout = absl::Seconds(1)}, backend);
  ASSERT_TRUE(server.start().ok());
  UniqueFd slow = connectTo(portOf(server.baseUrl()));
  // One byte every 100 ms: each read is quick, the request never ends.
  const std::string req = "GET /exec/AAAAAAAAAAAAAAAA HTTP/1.1\r\nHost: x\r\nX-Slow: ";
  auto start = std::chrono::steady_clock::now();
  bool closed = false;
  for (size_t i = 0; i < 100 && !closed; ++i) {  // ten seconds at most
    char b = i < req.size() ? req[i] : 'a';
    closed = ::send(slow.get(), &b, 1, MSG_NOSIGNAL) != 1 || !probe(slow.get(), 100).open;
  }
  EXPECT_TRUE(closed);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(6));
  // An idle connection goes the same way, and the server still serves.
  UniqueFd idle = connectTo(portOf(server.baseUrl()));
  EXPECT_FALSE(probe(idle.get(), 6000).open);
  expectExecWorks(server);
  server.stop();
}

TEST(StreamingLimitsTest, AcceptErrorsDoNotStopTheServer) {
  RefusingBackend backend;
  Server server({}, backend);
  ASSERT_TRUE(server.start().ok());
  int port = portOf(server.baseUrl());
  UniqueFd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(client.valid());
  // No descriptor is free for this process: accept() fails with EMFILE.
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  int lowest_free = ::dup(0);
  ASSERT_GE(lowest_free, 0);
  ::close(lowest_free);
  rlimit tight = saved;
  tight.rlim_cur = static_cast<rlim_t>(lowest_free);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &tight), 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int rc = ::connect(client.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);  // the backlog
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &saved), 0);
  ASSERT_EQ(rc, 0);
  // The waiting client is served once descriptors are back, and so are new ones.
  const std::string req = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(::send(client.get(), req.data(), req.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(req.size()));
  EXPECT_EQ(probe(client.get(), 10000).status, 404);
  EXPECT_EQ(rawRequestStatus(port, req), 404);
  expectExecWorks(server);
  server.stop();
}

// A self-signed certificate and key for 127.0.0.1 in `dir`.
void writeCertificate(const std::string& dir) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  ASSERT_NE(key, nullptr);
  X509* cert = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("127.0.0.1"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  X509_sign(cert, key, EVP_sha256());
  FILE* k = std::fopen((dir + "/key.pem").c_str(), "w");
  FILE* c = std::fopen((dir + "/cert.pem").c_str(), "w");
  ASSERT_TRUE(k != nullptr && c != nullptr);
  EXPECT_EQ(PEM_write_PrivateKey(k, key, nullptr, nullptr, 0, nullptr, nullptr), 1);
  EXPECT_EQ(PEM_write_X509(c, cert), 1);
  std::fclose(k);
  std::fclose(c);
  X509_free(cert);
  EVP_PKEY_free(key);
}

TEST(StreamingLimitsTest, TheDeadlineCoversTheTlsHandshake) {
  char tmpl[] = "/tmp/berth-tls-unit-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  writeCertificate(dir);
  RefusingBackend backend;
  {
    Server server({.upgrade_timeout = absl::Seconds(1),
                   .tls_cert_file = dir + "/cert.pem",
                   .tls_key_file = dir + "/key.pem"},
                  backend);
    ASSERT_TRUE(server.start().ok());
    ASSERT_EQ(server.baseUrl().rfind("https://", 0), 0u) << server.baseUrl();
    UniqueFd idle = connectTo(portOf(server.baseUrl()));  // never says hello
    auto start = std::chrono::steady_clock::now();
    EXPECT_FALSE(probe(idle.get(), 8000).open);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(6));
    expectExecWorks(server);  // over TLS
    server.stop();
  }
  std::filesystem::remove_all(dir);
}

TEST(StreamingLimitsTest, GuessingTokensIsRateLimitedPerPeer) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run a client as another user";
  RefusingBackend backend;
  Server server({.max_failed_lookups = 3, .failure_window = absl::Seconds(60)}, backend);
  ASSERT_TRUE(server.start().ok());
  int port = portOf(server.baseUrl());
  const std::string guess = "GET /exec/AAAAAAAAAAAAAAAA HTTP/1.1\r\nHost: x\r\n\r\n";
  Pipe result;
  pid_t child = forkAs(kNobody, [&] {
    int codes[5];
    for (int& c : codes) c = rawRequestStatus(port, guess);
    (void)!::write(result.w.get(), codes, sizeof codes);
    return 0;
  });
  ASSERT_GT(child, 0);
  result.w.reset();
  int codes[5] = {};
  EXPECT_EQ(::read(result.r.get(), codes, sizeof codes), static_cast<ssize_t>(sizeof codes));
  EXPECT_EQ(waitExit(child), 0);
  EXPECT_EQ(codes[0], 404);
  EXPECT_EQ(codes[1], 404);
  EXPECT_EQ(codes[2], 404);
  EXPECT_EQ(codes[3], 429);  // refused without a lookup from now on
  EXPECT_EQ(codes[4], 429);
  // Another peer is not affected: its unknown token is a 404, its valid one works.
  EXPECT_EQ(rawRequestStatus(port, guess), 404);
  expectExecWorks(server);
  server.stop();
}

}  // namespace
}  // namespace berth::streaming
