// RegistryClient against real docker-registry instances on loopback (tests/env/testenv.sh):
// manifests by tag and digest, indexes and lists, blobs, auth, mirrors and failures.
#include "image/registry_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "image/digest.h"

namespace berth::image {
namespace {

std::string sourceDir() {
  if (const char* env = std::getenv("BERTH_SOURCE_DIR"); env != nullptr && *env != '\0') {
    return env;
  }
  // This file is <source>/tests/unit/image/registry_client_test.cc.
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path().parent_path();
}

// The registries and images of tests/env, started on first use and stopped at the end of the
// test program by the gtest Environment below.
class TestEnv : public ::testing::Environment {
 public:
  static TestEnv* instance;

  // Starts the environment unless it runs; false (with a message) on failure. An environment
  // named by BERTH_TEST_ENV_DIR (already up) is used as it is and left running.
  ::testing::AssertionResult ensureUp() {
    if (up_) return ::testing::AssertionSuccess();
    if (const char* shared = std::getenv("BERTH_TEST_ENV_DIR"); shared != nullptr && *shared) {
      return readEnv(shared);
    }
    std::string tmpl = (std::filesystem::temp_directory_path() / "berth-registry-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) return ::testing::AssertionFailure() << "mkdtemp";
    dir_ = tmpl;
    std::string cmd = "'" + sourceDir() + "/tests/env/testenv.sh' up '" + dir_ + "' >/dev/null";
    int rc = std::system(cmd.c_str());
    started_ = true;  // even a failed `up` may leave something for `down`
    if (rc != 0) return ::testing::AssertionFailure() << cmd << " exited with " << rc;
    return readEnv(dir_);
  }

  ::testing::AssertionResult readEnv(const std::string& dir) {
    std::ifstream in(dir + "/env.json");
    std::stringstream ss;
    ss << in.rdbuf();
    try {
      auto j = nlohmann::json::parse(ss.str());
      for (auto& [k, v] : j.items()) {
        if (v.is_string()) vars_[k] = v.get<std::string>();
      }
    } catch (const nlohmann::json::exception& e) {
      return ::testing::AssertionFailure() << "env.json: " << e.what();
    }
    up_ = true;
    return ::testing::AssertionSuccess();
  }

  std::string operator[](const std::string& key) const {
    auto it = vars_.find(key);
    return it == vars_.end() ? std::string() : it->second;
  }

  void TearDown() override {
    if (!started_) return;
    std::string cmd = "'" + sourceDir() + "/tests/env/testenv.sh' down '" + dir_ + "' >/dev/null";
    if (std::system(cmd.c_str()) != 0) ADD_FAILURE() << cmd << " failed";
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    started_ = up_ = false;
  }

 private:
  bool started_ = false;
  bool up_ = false;
  std::string dir_;
  std::map<std::string, std::string> vars_;
};

TestEnv* TestEnv::instance =
    static_cast<TestEnv*>(::testing::AddGlobalTestEnvironment(new TestEnv));

// A loopback port nothing listens on.
int closedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

class RegistryClientTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(TestEnv::instance->ensureUp()); }

  const TestEnv& env() const { return *TestEnv::instance; }

  Reference ref(const std::string& text) {
    auto r = parseReference(text);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : Reference{};
  }

  static RegistryOptions fastOptions() {
    RegistryOptions o;
    o.connect_timeout_s = 5;
    o.progress_timeout_s = 10;
    o.retries = 1;
    return o;
  }

  // Fetches a whole blob into memory.
  absl::StatusOr<std::string> blob(RegistryClient& client, const Reference& repo,
                                   const std::string& digest, const Credentials& creds = {}) {
    std::string out;
    absl::Status s = client.fetchBlob(
        repo, digest, creds,
        [&](const char* d, size_t n) {
          out.append(d, n);
          return absl::OkStatus();
        },
        nullptr);
    if (!s.ok()) return s;
    return out;
  }

  Credentials goodCreds() const {
    return Credentials{env()["BERTH_TEST_AUTH_USER"], env()["BERTH_TEST_AUTH_PASSWORD"], "", "",
                       ""};
  }
};

TEST_F(RegistryClientTest, ManifestByTag) {
  RegistryClient client(fastOptions());
  auto m = client.fetchManifest(ref(env()["BERTH_TEST_IMAGE_BUSYBOX"]), {});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->media_type, kMediaTypeOciManifest);
  EXPECT_EQ(m->digest, env()["BERTH_TEST_IMAGE_BUSYBOX_DIGEST"]);
  EXPECT_EQ(sha256Of(m->body).str(), m->digest);

  auto latest = client.fetchManifest(ref(env()["BERTH_TEST_IMAGE_BUSYBOX_LATEST"]), {});
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(latest->digest, m->digest);
}

TEST_F(RegistryClientTest, ManifestByDigest) {
  RegistryClient client(fastOptions());
  Reference r = ref(env()["BERTH_TEST_IMAGE_BUSYBOX"]);
  const std::string digest = env()["BERTH_TEST_IMAGE_BUSYBOX_DIGEST"];
  auto byRef = client.fetchManifest(ref(r.withDigest(digest)), {});
  ASSERT_TRUE(byRef.ok()) << byRef.status();
  EXPECT_EQ(byRef->digest, digest);
  EXPECT_EQ(byRef->media_type, kMediaTypeOciManifest);

  // Tag and digest: the digest wins.
  auto both = client.fetchManifest(ref(r.withTag() + "@" + digest), {});
  ASSERT_TRUE(both.ok()) << both.status();
  EXPECT_EQ(both->digest, digest);

  auto byDigest = client.fetchManifestByDigest(r, digest, {});
  ASSERT_TRUE(byDigest.ok()) << byDigest.status();
  EXPECT_EQ(byDigest->body, byRef->body);

  EXPECT_EQ(client.fetchManifestByDigest(r, "sha256:nothex", {}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(RegistryClientTest, OciIndexAndItsManifest) {
  RegistryClient client(fastOptions());
  Reference r = ref(env()["BERTH_TEST_IMAGE_BUSYBOX_INDEX"]);
  auto index = client.fetchManifest(r, {});
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_EQ(index->media_type, kMediaTypeOciIndex);
  EXPECT_TRUE(isIndexMediaType(index->media_type));
  EXPECT_EQ(index->digest, env()["BERTH_TEST_IMAGE_BUSYBOX_INDEX_DIGEST"]);

  auto m =
      client.fetchManifestByDigest(r, env()["BERTH_TEST_IMAGE_BUSYBOX_INDEX_MANIFEST_DIGEST"], {});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->media_type, kMediaTypeOciManifest);
  EXPECT_FALSE(isIndexMediaType(m->media_type));
}

TEST_F(RegistryClientTest, DockerManifestAndList) {
  RegistryClient client(fastOptions());
  auto list = client.fetchManifest(ref(env()["BERTH_TEST_IMAGE_BUSYBOX_DOCKER_LIST"]), {});
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->media_type, kMediaTypeDockerManifestList);
  EXPECT_EQ(list->digest, env()["BERTH_TEST_IMAGE_BUSYBOX_DOCKER_LIST_DIGEST"]);

  auto m = client.fetchManifest(ref(env()["BERTH_TEST_IMAGE_BUSYBOX_DOCKER"]), {});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->media_type, kMediaTypeDockerManifest);
  EXPECT_EQ(m->digest, env()["BERTH_TEST_IMAGE_BUSYBOX_DOCKER_DIGEST"]);
}

TEST_F(RegistryClientTest, ConfigAndLayerBlobsMatchTheirDigests) {
  RegistryClient client(fastOptions());
  Reference r = ref(env()["BERTH_TEST_IMAGE_BUSYBOX"]);
  auto m = client.fetchManifest(r, {});
  ASSERT_TRUE(m.ok()) << m.status();
  auto j = nlohmann::json::parse(m->body);
  const std::string config = j["config"]["digest"];
  EXPECT_EQ(config, env()["BERTH_TEST_IMAGE_BUSYBOX_CONFIG_DIGEST"]);
  std::vector<std::pair<std::string, uint64_t>> blobs = {{config, j["config"]["size"]}};
  for (const auto& layer : j["layers"]) blobs.emplace_back(layer["digest"], layer["size"]);
  ASSERT_GE(blobs.size(), 2u);

  for (const auto& [digest, size] : blobs) {
    Sha256 h;
    uint64_t got = 0;
    uint64_t last_progress = 0;
    int progress_calls = 0;
    absl::Status s = client.fetchBlob(
        r, digest, {},
        [&](const char* d, size_t n) {
          h.update(d, n);
          got += n;
          return absl::OkStatus();
        },
        [&](uint64_t so_far) {
          EXPECT_GT(so_far, last_progress);
          last_progress = so_far;
          ++progress_calls;
        });
    ASSERT_TRUE(s.ok()) << s;
    EXPECT_EQ(h.finish().str(), digest);
    EXPECT_EQ(got, size) << digest;
    EXPECT_EQ(last_progress, size) << digest;
    EXPECT_GT(progress_calls, 0);
  }
}

TEST_F(RegistryClientTest, MissingThingsAreNotFound) {
  RegistryClient client(fastOptions());
  Reference missing = ref(env()["BERTH_TEST_REGISTRY"] + "/berth-test/busybox:no-such-tag");
  auto m = client.fetchManifest(missing, {});
  EXPECT_EQ(m.status().code(), absl::StatusCode::kNotFound) << m.status();
  EXPECT_EQ(m.status().message(), "image \"" + missing.str() + "\" not found");

  Reference norepo = ref(env()["BERTH_TEST_REGISTRY"] + "/berth-test/no-such-repo:1.0");
  EXPECT_EQ(client.fetchManifest(norepo, {}).status().code(), absl::StatusCode::kNotFound);

  const std::string zero = "sha256:" + std::string(64, '0');
  auto s = blob(client, ref(env()["BERTH_TEST_IMAGE_BUSYBOX"]), zero);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kNotFound) << s.status();
  EXPECT_NE(s.status().message().find(zero), absl::string_view::npos) << s.status();
}

TEST_F(RegistryClientTest, AuthRegistryWithoutCredentialsIsUnauthenticated) {
  RegistryClient client(fastOptions());
  Reference r = ref(env()["BERTH_TEST_AUTH_IMAGE_BUSYBOX"]);
  auto m = client.fetchManifest(r, {});
  EXPECT_EQ(m.status().code(), absl::StatusCode::kUnauthenticated) << m.status();
  EXPECT_NE(m.status().message().find("pull access denied for " + r.repository()),
            absl::string_view::npos)
      << m.status();
  EXPECT_NE(m.status().message().find("authentication required"), absl::string_view::npos);
}

TEST_F(RegistryClientTest, AuthRegistryWithWrongPasswordIsUnauthenticated) {
  RegistryClient client(fastOptions());
  Reference r = ref(env()["BERTH_TEST_AUTH_IMAGE_BUSYBOX"]);
  Credentials bad = goodCreds();
  bad.password = "wrong";
  auto m = client.fetchManifest(r, bad);
  EXPECT_EQ(m.status().code(), absl::StatusCode::kUnauthenticated) << m.status();
  EXPECT_NE(m.status().message().find("invalid credentials"), absl::string_view::npos)
      << m.status();
}

TEST_F(RegistryClientTest, AuthRegistryWithRequestCredentials) {
  RegistryClient client(fastOptions());
  Reference r = ref(env()["BERTH_TEST_AUTH_IMAGE_BUSYBOX"]);
  auto m = client.fetchManifest(r, goodCreds());
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->digest, env()["BERTH_TEST_IMAGE_BUSYBOX_DIGEST"]);
  auto j = nlohmann::json::parse(m->body);
  auto config = blob(client, r, j["config"]["digest"], goodCreds());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(sha256Of(*config).str(), j["config"]["digest"]);

  // The base64 "auth" form works too; a later anonymous request does not reuse the creds.
  Credentials encoded;
  encoded.auth = base64Encode(goodCreds().username + ":" + goodCreds().password);
  EXPECT_TRUE(client.fetchManifest(r, encoded).ok());
  EXPECT_EQ(client.fetchManifest(r, {}).status().code(), absl::StatusCode::kUnauthenticated);
}

TEST_F(RegistryClientTest, AuthRegistryWithConfiguredCredentials) {
  RegistryOptions opts = fastOptions();
  Reference r = ref(env()["BERTH_TEST_AUTH_IMAGE_BUSYBOX"]);
  opts.hosts[r.domain].credentials = goodCreds();
  RegistryClient client(opts);
  auto m = client.fetchManifest(r, {});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->digest, env()["BERTH_TEST_IMAGE_BUSYBOX_DIGEST"]);

  // Request credentials take precedence over configured ones.
  Credentials bad = goodCreds();
  bad.password = "wrong";
  EXPECT_EQ(client.fetchManifest(r, bad).status().code(), absl::StatusCode::kUnauthenticated);
}

TEST_F(RegistryClientTest, MirrorServesAnotherDomain) {
  RegistryOptions opts = fastOptions();
  opts.hosts["registry.k8s.io"].mirrors.push_back(
      RegistryEndpoint{env()["BERTH_TEST_REGISTRY"], /*plain_http=*/true});
  RegistryClient client(opts);
  Reference r = ref("registry.k8s.io/berth-test/busybox:1.0");
  auto m = client.fetchManifest(r, {});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->digest, env()["BERTH_TEST_IMAGE_BUSYBOX_DIGEST"]);
  auto config = blob(client, r, env()["BERTH_TEST_IMAGE_BUSYBOX_CONFIG_DIGEST"]);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(sha256Of(*config).str(), env()["BERTH_TEST_IMAGE_BUSYBOX_CONFIG_DIGEST"]);
}

TEST_F(RegistryClientTest, DeadMirrorFallsThroughToTheNextOne) {
  RegistryOptions opts = fastOptions();
  auto& host = opts.hosts["registry.k8s.io"];
  host.mirrors.push_back(RegistryEndpoint{"127.0.0.1:" + std::to_string(closedPort()), true});
  // A mirror that does not have the image (the auth registry refuses us) is skipped too.
  host.mirrors.push_back(RegistryEndpoint{"http://" + env()["BERTH_TEST_AUTH_REGISTRY"]});
  host.mirrors.push_back(RegistryEndpoint{"http://" + env()["BERTH_TEST_REGISTRY"]});
  // The upstream is never reached: tests talk to loopback only.
  host.upstream_override = RegistryEndpoint{"127.0.0.1:" + std::to_string(closedPort()), true};
  RegistryClient client(opts);
  Reference r = ref("registry.k8s.io/berth-test/busybox:1.0");
  auto m = client.fetchManifest(r, {});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->digest, env()["BERTH_TEST_IMAGE_BUSYBOX_DIGEST"]);
  auto config = blob(client, r, env()["BERTH_TEST_IMAGE_BUSYBOX_CONFIG_DIGEST"]);
  EXPECT_TRUE(config.ok()) << config.status();

  // When every endpoint fails, each is named with what it said, and the code is that of the
  // answer about the image (not found), not the last endpoint's (unreachable).
  auto missing = client.fetchManifest(ref("registry.k8s.io/berth-test/busybox:nope"), {});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound) << missing.status();
  EXPECT_THAT(std::string(missing.status().message()),
              ::testing::HasSubstr("authentication required"));
  EXPECT_THAT(std::string(missing.status().message()), ::testing::HasSubstr("unreachable"));
}

TEST_F(RegistryClientTest, SinkErrorAbortsTheTransfer) {
  RegistryClient client(fastOptions());
  Reference r = ref(env()["BERTH_TEST_IMAGE_BUSYBOX"]);
  auto m = client.fetchManifest(r, {});
  ASSERT_TRUE(m.ok()) << m.status();
  auto j = nlohmann::json::parse(m->body);
  int calls = 0;
  absl::Status s = client.fetchBlob(
      r, j["layers"][0]["digest"], {},
      [&](const char*, size_t) {
        ++calls;
        return absl::CancelledError("pull cancelled by test");
      },
      nullptr);
  EXPECT_EQ(s, absl::CancelledError("pull cancelled by test"));
  EXPECT_EQ(calls, 1);
}

TEST_F(RegistryClientTest, ClosedPortIsUnavailableNamingTheHost) {
  RegistryClient client(fastOptions());
  const std::string host = "127.0.0.1:" + std::to_string(closedPort());
  auto m = client.fetchManifest(ref(host + "/berth-test/busybox:1.0"), {});
  EXPECT_EQ(m.status().code(), absl::StatusCode::kUnavailable) << m.status();
  EXPECT_NE(m.status().message().find(host), absl::string_view::npos) << m.status();
}

TEST_F(RegistryClientTest, ConcurrentPullsShareOneClient) {
  RegistryClient client(fastOptions());
  Reference r = ref(env()["BERTH_TEST_IMAGE_BUSYBOX"]);
  auto m = client.fetchManifest(r, {});
  ASSERT_TRUE(m.ok()) << m.status();
  auto j = nlohmann::json::parse(m->body);
  const std::string layer = j["layers"][0]["digest"];
  std::vector<std::thread> threads;
  std::vector<std::string> results(8);
  for (size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back([&, i] {
      for (int k = 0; k < 3; ++k) {
        auto b = blob(client, r, layer);
        results[i] = b.ok() ? sha256Of(*b).str() : b.status().ToString();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const std::string& got : results) EXPECT_EQ(got, layer);
}

}  // namespace
}  // namespace berth::image
