// RegistryClient against a scripted HTTP server on loopback, for what a real docker-registry
// will not do on demand: bearer tokens, 5xx, broken and stalled transfers, cross-host
// redirects, bad digests and odd manifests.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "image/digest.h"
#include "image/registry_client.h"

namespace berth::image {
namespace {

struct FakeRequest {
  std::string method;
  std::string target;                          // path and query
  std::map<std::string, std::string> headers;  // names lowercase
  std::string body;

  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

void sendAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return;
    data.remove_prefix(static_cast<size_t>(n));
  }
}

std::string response(int code, const std::map<std::string, std::string>& headers,
                     absl::string_view body, size_t content_length = std::string::npos) {
  std::string out = absl::StrCat("HTTP/1.1 ", code, " X\r\nConnection: close\r\n");
  absl::StrAppend(&out, "Content-Length: ",
                  content_length == std::string::npos ? body.size() : content_length, "\r\n");
  for (const auto& [k, v] : headers) absl::StrAppend(&out, k, ": ", v, "\r\n");
  absl::StrAppend(&out, "\r\n", body);
  return out;
}

// Serves one connection at a time on 127.0.0.1:<ephemeral>; every answer closes the
// connection. The handler writes the raw response to the socket.
class FakeServer {
 public:
  using Handler = std::function<void(const FakeRequest&, int fd)>;

  explicit FakeServer(Handler handler) : handler_(std::move(handler)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listen_fd_, 16) != 0) {
      std::abort();
    }
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { loop(); });
  }
  ~FakeServer() {
    stop_ = true;
    thread_.join();
    ::close(listen_fd_);
  }

  std::string host() const { return absl::StrCat("127.0.0.1:", port_); }
  int port() const { return port_; }
  std::vector<FakeRequest> requests() {
    absl::MutexLock lock(&mu_);
    return requests_;
  }
  size_t count(absl::string_view path_prefix) {
    size_t n = 0;
    for (const FakeRequest& r : requests()) n += absl::StartsWith(r.target, path_prefix);
    return n;
  }

 private:
  void loop() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      FakeRequest req;
      if (readRequest(fd, &req)) {
        {
          absl::MutexLock lock(&mu_);
          requests_.push_back(req);
        }
        handler_(req, fd);
      }
      ::close(fd);
    }
  }

  static bool readRequest(int fd, FakeRequest* req) {
    std::string data;
    char buf[4096];
    size_t end;
    while ((end = data.find("\r\n\r\n")) == std::string::npos) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return false;
      data.append(buf, static_cast<size_t>(n));
    }
    std::vector<std::string> lines = absl::StrSplit(data.substr(0, end), "\r\n");
    std::vector<std::string> first = absl::StrSplit(lines[0], ' ');
    if (first.size() < 2) return false;
    req->method = first[0];
    req->target = first[1];
    for (size_t i = 1; i < lines.size(); ++i) {
      size_t colon = lines[i].find(':');
      if (colon == std::string::npos) continue;
      req->headers[absl::AsciiStrToLower(lines[i].substr(0, colon))] =
          std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
    }
    req->body = data.substr(end + 4);
    size_t want = 0;
    if (auto cl = req->header("content-length"); !cl.empty()) want = std::stoul(cl);
    while (req->body.size() < want) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      req->body.append(buf, static_cast<size_t>(n));
    }
    return true;
  }

  Handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  absl::Mutex mu_;
  std::vector<FakeRequest> requests_ ABSL_GUARDED_BY(mu_);
};

const std::string kManifest =
    R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
    R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:)" +
    std::string(64, 'a') + R"(","size":2},"layers":[]})";
const std::map<std::string, std::string> kOciType = {
    {"Content-Type", std::string(kMediaTypeOciManifest)}};

Reference parseRef(const std::string& text) {
  auto r = parseReference(text);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : Reference{};
}

RegistryOptions fastOptions(int retries = 2) {
  RegistryOptions o;
  o.connect_timeout_s = 5;
  o.progress_timeout_s = 5;
  o.retries = retries;
  return o;
}

std::string blobData(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + i / 7) & 0xff);
  return s;
}

absl::Status fetchAll(RegistryClient& client, const Reference& r, const std::string& digest,
                      std::string* out, const Credentials& creds = {}) {
  return client.fetchBlob(
      r, digest, creds,
      [out](const char* d, size_t n) {
        out->append(d, n);
        return absl::OkStatus();
      },
      nullptr);
}

// A registry behind docker-style token auth.
void bearerRegistry(FakeServer** self, const FakeRequest& req, int fd,
                    const std::string& expected_bearer) {
  if (absl::StartsWith(req.target, "/token")) {
    bool basic_ok = req.header("authorization") == basicAuthorization("u", "p");
    bool refresh_ok = req.method == "POST" &&
                      absl::StrContains(req.body, "grant_type=refresh_token") &&
                      absl::StrContains(req.body, "refresh_token=idt");
    if (basic_ok) return sendAll(fd, response(200, {}, R"({"token":"tok-1","expires_in":300})"));
    if (refresh_ok) return sendAll(fd, response(200, {}, R"({"access_token":"tok-2"})"));
    return sendAll(fd, response(401, {}, "{}"));
  }
  if (req.header("authorization") == "Bearer " + expected_bearer) {
    return sendAll(fd, response(200, kOciType, kManifest));
  }
  std::string challenge =
      absl::StrCat("Bearer realm=\"http://", (*self)->host(),
                   "/token\",service=\"fake\",scope=\"repository:ns/repo:pull\"");
  sendAll(fd, response(401, {{"WWW-Authenticate", challenge}}, R"({"errors":[]})"));
}

TEST(RegistryFakeTest, BearerTokenIsFetchedWithBasicCredentialsAndCached) {
  FakeServer* self = nullptr;
  FakeServer server([&](const FakeRequest& r, int fd) { bearerRegistry(&self, r, fd, "tok-1"); });
  self = &server;
  RegistryClient client(fastOptions());
  Reference r = parseRef(server.host() + "/ns/repo:1");
  Credentials creds{"u", "p", "", "", ""};
  auto m = client.fetchManifest(r, creds);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->body, kManifest);
  EXPECT_EQ(m->digest, sha256Of(kManifest).str());
  ASSERT_EQ(server.count("/token"), 1u);
  for (const FakeRequest& req : server.requests()) {
    if (!absl::StartsWith(req.target, "/token")) continue;
    EXPECT_EQ(req.method, "GET");
    EXPECT_EQ(req.target, "/token?service=fake&scope=repository%3Ans%2Frepo%3Apull&account=u");
  }
  // The token is cached: one more request, straight to the manifest.
  size_t before = server.requests().size();
  ASSERT_TRUE(client.fetchManifest(r, creds).ok());
  EXPECT_EQ(server.requests().size(), before + 1);
  // Other credentials do not reuse it.
  auto anon = client.fetchManifest(r, {});
  EXPECT_EQ(anon.status().code(), absl::StatusCode::kUnauthenticated) << anon.status();
  EXPECT_NE(anon.status().message().find("authentication required"), absl::string_view::npos);
}

TEST(RegistryFakeTest, IdentityTokenUsesTheRefreshTokenGrant) {
  FakeServer* self = nullptr;
  FakeServer server([&](const FakeRequest& r, int fd) { bearerRegistry(&self, r, fd, "tok-2"); });
  self = &server;
  RegistryClient client(fastOptions());
  Credentials creds;
  creds.identity_token = "idt";
  auto m = client.fetchManifest(parseRef(server.host() + "/ns/repo:1"), creds);
  ASSERT_TRUE(m.ok()) << m.status();
  bool saw_post = false;
  for (const FakeRequest& req : server.requests()) {
    if (req.target == "/token" && req.method == "POST") {
      saw_post = true;
      EXPECT_EQ(req.header("content-type"), "application/x-www-form-urlencoded");
      EXPECT_TRUE(absl::StrContains(req.body, "service=fake"));
      EXPECT_TRUE(absl::StrContains(req.body, "scope=repository%3Ans%2Frepo%3Apull"));
    }
  }
  EXPECT_TRUE(saw_post);
}

TEST(RegistryFakeTest, RegistryTokenIsSentAsItIs) {
  FakeServer* self = nullptr;
  FakeServer server([&](const FakeRequest& r, int fd) { bearerRegistry(&self, r, fd, "rt"); });
  self = &server;
  RegistryClient client(fastOptions());
  Credentials creds;
  creds.registry_token = "rt";
  ASSERT_TRUE(client.fetchManifest(parseRef(server.host() + "/ns/repo:1"), creds).ok());
  EXPECT_EQ(server.count("/token"), 0u);
}

TEST(RegistryFakeTest, TokenServerRefusingCredentialsIsUnauthenticated) {
  FakeServer* self = nullptr;
  FakeServer server([&](const FakeRequest& r, int fd) { bearerRegistry(&self, r, fd, "tok-1"); });
  self = &server;
  RegistryClient client(fastOptions());
  auto m = client.fetchManifest(parseRef(server.host() + "/ns/repo:1"), {"u", "wrong", "", "", ""});
  EXPECT_EQ(m.status().code(), absl::StatusCode::kUnauthenticated) << m.status();
  EXPECT_NE(m.status().message().find("invalid credentials"), absl::string_view::npos);
}

TEST(RegistryFakeTest, UnsupportedChallengeIsUnauthenticated) {
  FakeServer server([](const FakeRequest&, int fd) {
    sendAll(fd, response(401, {{"WWW-Authenticate", "Negotiate"}}, ""));
  });
  RegistryClient client(fastOptions());
  auto m = client.fetchManifest(parseRef(server.host() + "/ns/repo:1"), {"u", "p", "", "", ""});
  EXPECT_EQ(m.status().code(), absl::StatusCode::kUnauthenticated) << m.status();
  EXPECT_NE(m.status().message().find("negotiate"), absl::string_view::npos);
}

TEST(RegistryFakeTest, ServerErrorsAreRetried) {
  std::atomic<int> calls{0};
  FakeServer server([&](const FakeRequest&, int fd) {
    if (++calls <= 2) return sendAll(fd, response(503, {}, "busy"));
    sendAll(fd, response(200, kOciType, kManifest));
  });
  RegistryClient client(fastOptions(/*retries=*/2));
  auto m = client.fetchManifest(parseRef(server.host() + "/ns/repo:1"), {});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(calls, 3);
}

TEST(RegistryFakeTest, PersistentServerErrorsAreUnavailable) {
  FakeServer server([](const FakeRequest&, int fd) {
    sendAll(fd, response(500, {}, R"({"errors":[{"code":"UNKNOWN","message":"disk on fire"}]})"));
  });
  RegistryClient client(fastOptions(/*retries=*/2));
  auto m = client.fetchManifest(parseRef(server.host() + "/ns/repo:1"), {});
  EXPECT_EQ(m.status().code(), absl::StatusCode::kUnavailable) << m.status();
  EXPECT_NE(m.status().message().find("disk on fire"), absl::string_view::npos) << m.status();
  EXPECT_EQ(server.requests().size(), 3u);
}

TEST(RegistryFakeTest, ForbiddenIsPermissionDenied) {
  FakeServer server([](const FakeRequest&, int fd) { sendAll(fd, response(403, {}, "")); });
  RegistryClient client(fastOptions());
  auto m = client.fetchManifest(parseRef(server.host() + "/ns/repo:1"), {});
  EXPECT_EQ(m.status().code(), absl::StatusCode::kPermissionDenied) << m.status();
}

TEST(RegistryFakeTest, ManifestDigestMismatchIsDataLoss) {
  FakeServer server(
      [](const FakeRequest&, int fd) { sendAll(fd, response(200, kOciType, kManifest)); });
  RegistryClient client(fastOptions());
  const std::string wanted = "sha256:" + std::string(64, 'b');
  auto m = client.fetchManifestByDigest(parseRef(server.host() + "/ns/repo:1"), wanted, {});
  EXPECT_EQ(m.status().code(), absl::StatusCode::kDataLoss) << m.status();
  EXPECT_NE(m.status().message().find(wanted), absl::string_view::npos);
  EXPECT_NE(m.status().message().find(sha256Of(kManifest).str()), absl::string_view::npos);
  // The same through a reference with that digest.
  auto byRef = client.fetchManifest(parseRef(server.host() + "/ns/repo@" + wanted), {});
  EXPECT_EQ(byRef.status().code(), absl::StatusCode::kDataLoss) << byRef.status();
}

TEST(RegistryFakeTest, MediaTypeFromTheBodyAndSchema1Refused) {
  std::atomic<int> mode{0};
  FakeServer server([&](const FakeRequest&, int fd) {
    if (mode == 0) {
      return sendAll(fd, response(200, {{"Content-Type", "application/json"}}, kManifest));
    }
    sendAll(fd, response(
                    200,
                    {{"Content-Type", "application/vnd.docker.distribution.manifest.v1+prettyjws"}},
                    R"({"schemaVersion":1,"fsLayers":[]})"));
  });
  RegistryClient client(fastOptions());
  auto m = client.fetchManifest(parseRef(server.host() + "/ns/repo:1"), {});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->media_type, kMediaTypeOciManifest);
  mode = 1;
  m = client.fetchManifest(parseRef(server.host() + "/ns/repo:1"), {});
  EXPECT_EQ(m.status().code(), absl::StatusCode::kFailedPrecondition) << m.status();
}

// A blob whose first transfer breaks half way; the retry asks for the rest with Range.
class BrokenBlobTest : public ::testing::TestWithParam<bool /*server honours Range*/> {};

TEST_P(BrokenBlobTest, ResumesWithRange) {
  const bool honour_range = GetParam();
  const std::string data = blobData(200000);
  const std::string digest = sha256Of(data).str();
  std::atomic<int> calls{0};
  FakeServer server([&](const FakeRequest& req, int fd) {
    if (++calls == 1) {  // promise everything, send half, hang up
      sendAll(fd, response(200, {}, absl::string_view(data).substr(0, 80000), data.size()));
      return;
    }
    std::string range_header = req.header("range");
    absl::string_view range = range_header;
    if (honour_range && absl::ConsumePrefix(&range, "bytes=")) {
      size_t from = std::stoul(std::string(range));
      sendAll(fd, response(206, {}, absl::string_view(data).substr(from)));
    } else {
      sendAll(fd, response(200, {}, data));
    }
  });
  RegistryClient client(fastOptions());
  std::string got;
  absl::Status s = fetchAll(client, parseRef(server.host() + "/ns/repo:1"), digest, &got);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(got.size(), data.size());
  EXPECT_EQ(sha256Of(got).str(), digest);
  ASSERT_EQ(calls, 2);
  EXPECT_EQ(server.requests()[1].header("range"), "bytes=80000-");
}

INSTANTIATE_TEST_SUITE_P(Range, BrokenBlobTest, ::testing::Bool());

TEST(RegistryFakeTest, StalledBlobIsAbortedAndRetried) {
  const std::string data = blobData(50000);
  const std::string digest = sha256Of(data).str();
  std::atomic<int> calls{0};
  std::atomic<bool> client_gave_up{false};
  FakeServer server([&](const FakeRequest&, int fd) {
    if (++calls == 1) {
      // Headers, then silence until the client hangs up (at most 10 s).
      sendAll(fd, absl::StrCat("HTTP/1.1 200 OK\r\nContent-Length: ", data.size(), "\r\n\r\n"));
      pollfd p{fd, POLLIN | POLLRDHUP, 0};
      client_gave_up = ::poll(&p, 1, 10000) == 1;
      return;
    }
    sendAll(fd, response(200, {}, data));
  });
  RegistryOptions opts = fastOptions();
  opts.progress_timeout_s = 1;
  RegistryClient client(opts);
  std::string got;
  absl::Time start = absl::Now();
  absl::Status s = fetchAll(client, parseRef(server.host() + "/ns/repo:1"), digest, &got);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_LT(absl::Now() - start, absl::Seconds(8));
  EXPECT_TRUE(client_gave_up);
  EXPECT_EQ(sha256Of(got).str(), digest);
  EXPECT_EQ(calls, 2);
}

TEST(RegistryFakeTest, RedirectToAnotherHostDropsAuthorization) {
  const std::string data = blobData(1000);
  const std::string digest = sha256Of(data).str();
  FakeServer* self = nullptr;
  FakeServer server([&](const FakeRequest& req, int fd) {
    if (absl::StartsWith(req.target, "/storage/")) return sendAll(fd, response(200, {}, data));
    if (req.header("authorization") != basicAuthorization("u", "p")) {
      return sendAll(fd, response(401, {{"WWW-Authenticate", "Basic realm=\"fake\""}}, ""));
    }
    // "localhost" is another host name for curl, as object storage would be.
    sendAll(fd, response(307,
                         {{"Location",
                           absl::StrCat("http://localhost:", self->port(), "/storage/blob?sig=x")}},
                         ""));
  });
  self = &server;
  RegistryClient client(fastOptions());
  std::string got;
  absl::Status s = fetchAll(client, parseRef(server.host() + "/ns/repo:1"), digest, &got,
                            {"u", "p", "", "", ""});
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(got, data);
  bool saw_storage = false;
  for (const FakeRequest& req : server.requests()) {
    if (!absl::StartsWith(req.target, "/storage/")) continue;
    saw_storage = true;
    EXPECT_EQ(req.header("authorization"), "");
  }
  EXPECT_TRUE(saw_storage);
}

// Sends `chunk` every `every` until the client hangs up or `limit` passes; true if it hung up.
bool trickle(int fd, absl::string_view chunk, absl::Duration every, absl::Duration limit) {
  absl::Time end = absl::Now() + limit;
  while (absl::Now() < end) {
    if (::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL) < 0) return true;
    absl::SleepFor(every);
  }
  return false;
}

TEST(RegistryFakeTest, TrickledBlobIsCutByTheMinimumRate) {
  std::atomic<bool> hung_up{false};
  FakeServer server([&](const FakeRequest&, int fd) {
    sendAll(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n");
    hung_up = trickle(fd, "xxxxx", absl::Milliseconds(200), absl::Seconds(20));  // 25 B/s
  });
  RegistryOptions opts = fastOptions(/*retries=*/0);
  opts.progress_timeout_s = 1;
  opts.min_rate_bps = 1024;
  RegistryClient client(opts);
  std::string got;
  absl::Time start = absl::Now();
  absl::Status s = fetchAll(client, parseRef(server.host() + "/ns/repo:1"),
                            "sha256:" + std::string(64, 'b'), &got);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_LT(got.size(), 1000u);
}

TEST(RegistryFakeTest, BlobDeadlineCoversEveryRetry) {
  // Fast enough for the minimum rate, but the blob never ends: only the deadline stops it.
  std::atomic<int> calls{0};
  FakeServer server([&](const FakeRequest&, int fd) {
    ++calls;
    sendAll(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100000000000\r\n\r\n");
    trickle(fd, std::string(4096, 'x'), absl::Milliseconds(50), absl::Seconds(20));
  });
  RegistryOptions opts = fastOptions(/*retries=*/5);
  opts.blob_timeout_s = 2;
  RegistryClient client(opts);
  std::string got;
  absl::Time start = absl::Now();
  absl::Status s = fetchAll(client, parseRef(server.host() + "/ns/repo:1"),
                            "sha256:" + std::string(64, 'c'), &got);
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  EXPECT_THAT(s.message(), ::testing::HasSubstr("image.blob_timeout_seconds"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(6));
}

TEST(RegistryFakeTest, EndlessErrorBodyIsCut) {
  std::atomic<bool> hung_up{false};
  FakeServer server([&](const FakeRequest&, int fd) {
    sendAll(fd, "HTTP/1.1 500 Oops\r\nConnection: close\r\n\r\n");  // no length: until EOF
    hung_up = trickle(fd, std::string(65536, 'e'), absl::Milliseconds(1), absl::Seconds(20));
  });
  RegistryClient client(fastOptions(/*retries=*/0));
  std::string got;
  absl::Time start = absl::Now();
  absl::Status s = fetchAll(client, parseRef(server.host() + "/ns/repo:1"),
                            "sha256:" + std::string(64, 'd'), &got);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_THAT(s.message(), ::testing::HasSubstr("500"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(8));
  EXPECT_TRUE(got.empty());
}

TEST(RegistryFakeTest, EveryEndpointSaysWhyAndTheFirstRealAnswerGivesTheCode) {
  FakeServer mirror([](const FakeRequest&, int fd) {
    sendAll(fd, response(403, {}, R"({"errors":[{"code":"DENIED","message":"no"}]})"));
  });
  FakeServer upstream([](const FakeRequest&, int fd) { sendAll(fd, response(503, {}, "busy")); });
  RegistryOptions opts = fastOptions(/*retries=*/0);
  RegistryHost host;
  host.mirrors.push_back(RegistryEndpoint{.host = mirror.host(), .plain_http = true});
  host.upstream_override = RegistryEndpoint{.host = upstream.host(), .plain_http = true};
  opts.hosts["registry.example"] = host;
  RegistryClient client(opts);
  auto m = client.fetchManifest(parseRef("registry.example/ns/repo:1"), {});
  EXPECT_EQ(m.status().code(), absl::StatusCode::kPermissionDenied) << m.status();
  EXPECT_THAT(m.status().message(), ::testing::HasSubstr(mirror.host()));
  EXPECT_THAT(m.status().message(), ::testing::HasSubstr(upstream.host()));
  EXPECT_THAT(m.status().message(), ::testing::HasSubstr("503"));
}

}  // namespace
}  // namespace berth::image
