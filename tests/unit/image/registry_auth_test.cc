// Unit tests of the registry client's pure parts: WWW-Authenticate parsing, credentials,
// token responses, the token cache and endpoint resolution.
#include "image/registry_auth.h"

#include <gtest/gtest.h>

#include "image/registry_hosts.h"

namespace berth::image {
namespace {

using Params = std::map<std::string, std::string>;

struct ChallengeCase {
  std::string header;
  std::vector<AuthChallenge> want;
};

class WwwAuthenticateTest : public ::testing::TestWithParam<ChallengeCase> {};

TEST_P(WwwAuthenticateTest, Parses) {
  const ChallengeCase& c = GetParam();
  EXPECT_EQ(parseWwwAuthenticate(c.header), c.want) << c.header;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, WwwAuthenticateTest,
    ::testing::Values(
        ChallengeCase{"Basic realm=\"Registry Realm\"",
                      {{"basic", Params{{"realm", "Registry Realm"}}}}},
        ChallengeCase{
            "Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
            "scope=\"repository:library/busybox:pull\"",
            {{"bearer", Params{{"realm", "https://auth.docker.io/token"},
                               {"service", "registry.docker.io"},
                               {"scope", "repository:library/busybox:pull"}}}}},
        // Case-insensitive scheme and parameter names, spaces around '=' and ','.
        ChallengeCase{"BEARER Realm = \"https://a/t\" , Service=svc",
                      {{"bearer", Params{{"realm", "https://a/t"}, {"service", "svc"}}}}},
        // Escapes and commas inside quoted values.
        ChallengeCase{
            R"(Bearer realm="https://x/t",scope="repository:a/b:pull,push",error="say \"hi\"")",
            {{"bearer", Params{{"realm", "https://x/t"},
                               {"scope", "repository:a/b:pull,push"},
                               {"error", "say \"hi\""}}}}},
        // Several challenges in one header.
        ChallengeCase{"Basic realm=\"r1\", Bearer realm=\"https://t\",service=\"s\"",
                      {{"basic", Params{{"realm", "r1"}}},
                       {"bearer", Params{{"realm", "https://t"}, {"service", "s"}}}}},
        ChallengeCase{"Negotiate, Basic realm=x",
                      {{"negotiate", Params{}}, {"basic", Params{{"realm", "x"}}}}},
        // Unquoted values with characters outside token (':' and '/').
        ChallengeCase{
            "Bearer realm=https://r/token,scope=repository:x:pull",
            {{"bearer", Params{{"realm", "https://r/token"}, {"scope", "repository:x:pull"}}}}},
        ChallengeCase{"Basic", {{"basic", Params{}}}}, ChallengeCase{"", {}},
        ChallengeCase{" , ,", {}},
        // token68 is skipped, the rest still parses.
        ChallengeCase{"Negotiate abc==, Basic realm=\"r\"",
                      {{"negotiate", Params{}}, {"basic", Params{{"realm", "r"}}}}},
        // Unterminated quote: the value runs to the end.
        ChallengeCase{"Basic realm=\"open", {{"basic", Params{{"realm", "open"}}}}}));

TEST(Base64Test, RoundTripsAndRejectsGarbage) {
  EXPECT_EQ(base64Encode("berth:berth-pass"), "YmVydGg6YmVydGgtcGFzcw==");
  auto d = base64Decode("YmVydGg6YmVydGgtcGFzcw==");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(*d, "berth:berth-pass");
  EXPECT_EQ(*base64Decode(""), "");
  EXPECT_FALSE(base64Decode("!!!notbase64").ok());
  EXPECT_EQ(basicAuthorization("a", "b"), "Basic YTpi");
}

TEST(CredentialsTest, NormaliseDecodesAuth) {
  Credentials c;
  EXPECT_TRUE(c.empty());
  c.auth = base64Encode("user:pa:ss");
  EXPECT_FALSE(c.empty());
  auto n = normalizeCredentials(c);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(n->username, "user");
  EXPECT_EQ(n->password, "pa:ss");  // only the first ':' separates
  EXPECT_TRUE(n->auth.empty());

  // An explicit username wins over auth.
  c.username = "explicit";
  c.password = "pw";
  n = normalizeCredentials(c);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->username, "explicit");
  EXPECT_EQ(n->password, "pw");

  for (const std::string& bad :
       {std::string("%%%"), base64Encode("nocolon"), base64Encode(":nouser")}) {
    Credentials b;
    b.auth = bad;
    auto r = normalizeCredentials(b);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(CredentialsTest, KeyTellsCredentialSetsApart) {
  Credentials a{"u", "p1", "", "", ""};
  Credentials b{"u", "p2", "", "", ""};
  Credentials t{"", "", "", "", "u"};
  EXPECT_EQ(credentialsKey(Credentials{}), "anonymous");
  EXPECT_EQ(credentialsKey(a), credentialsKey(a));
  EXPECT_NE(credentialsKey(a), credentialsKey(b));
  EXPECT_NE(credentialsKey(a), credentialsKey(t));
  EXPECT_EQ(credentialsKey(a).find("p1"), std::string::npos);
}

TEST(TokenResponseTest, Parses) {
  auto t = parseTokenResponse(R"({"token":"abc","expires_in":300})");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->token, "abc");
  EXPECT_EQ(t->expires_in, absl::Seconds(300));

  t = parseTokenResponse(R"({"access_token":"xyz"})");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->token, "xyz");
  EXPECT_EQ(t->expires_in, absl::Seconds(60));

  t = parseTokenResponse(R"({"token":"short","expires_in":5})");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->expires_in, absl::Seconds(60));

  for (const char* bad : {"", "not json", "[]", "{}", R"({"token":""})", R"({"token":5})"}) {
    EXPECT_EQ(parseTokenResponse(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(UrlEncodeTest, EncodesReserved) {
  EXPECT_EQ(urlEncode("repository:library/busybox:pull"), "repository%3Alibrary%2Fbusybox%3Apull");
  EXPECT_EQ(urlEncode("a-b_c.d~e"), "a-b_c.d~e");
  EXPECT_EQ(urlEncode("a b&c=d"), "a%20b%26c%3Dd");
}

absl::Time fakeNow = absl::UnixEpoch();
absl::Time clockForTest() { return fakeNow; }

TEST(TokenCacheTest, ExpiresEntries) {
  fakeNow = absl::UnixEpoch() + absl::Hours(1);
  TokenCache cache(&clockForTest);
  EXPECT_FALSE(cache.get("k").has_value());
  cache.put("k", "Bearer a", fakeNow + absl::Seconds(10));
  EXPECT_EQ(cache.get("k"), "Bearer a");
  fakeNow += absl::Seconds(10);
  EXPECT_FALSE(cache.get("k").has_value());
  cache.put("k", "Bearer b", fakeNow + absl::Seconds(10));
  cache.erase("k");
  EXPECT_FALSE(cache.get("k").has_value());
}

// Endpoint resolution.

TEST(EndpointsTest, DefaultUpstreams) {
  RegistryOptions opts;
  auto eps = resolveEndpoints(opts, "docker.io").value();
  ASSERT_EQ(eps.size(), 1u);
  EXPECT_EQ(eps[0].host, "registry-1.docker.io");
  EXPECT_FALSE(eps[0].plain_http);
  EXPECT_EQ(eps[0].baseUrl(), "https://registry-1.docker.io/v2/");

  eps = resolveEndpoints(opts, "registry.k8s.io").value();
  ASSERT_EQ(eps.size(), 1u);
  EXPECT_EQ(eps[0].baseUrl(), "https://registry.k8s.io/v2/");

  // Loopback registries use plain HTTP, like containerd.
  for (const char* local :
       {"localhost:5000", "localhost", "127.0.0.1:5000", "[::1]:5000", "127.1.2.3"}) {
    eps = resolveEndpoints(opts, local).value();
    ASSERT_EQ(eps.size(), 1u);
    EXPECT_TRUE(eps[0].plain_http) << local;
    EXPECT_EQ(eps[0].host, local);
  }
  eps = resolveEndpoints(opts, "myhost:5000").value();
  EXPECT_FALSE(eps[0].plain_http);
}

TEST(EndpointsTest, MirrorsComeFirstInOrder) {
  RegistryOptions opts;
  RegistryHost& k8s = opts.hosts["registry.k8s.io"];
  k8s.mirrors.push_back(RegistryEndpoint{"127.0.0.1:5000", true, false, "", ""});
  k8s.mirrors.push_back(RegistryEndpoint{"mirror.example.com", false, true, "/ca.pem", ""});
  auto eps = resolveEndpoints(opts, "registry.k8s.io").value();
  ASSERT_EQ(eps.size(), 3u);
  EXPECT_EQ(eps[0].baseUrl(), "http://127.0.0.1:5000/v2/");
  EXPECT_EQ(eps[1].baseUrl(), "https://mirror.example.com/v2/");
  EXPECT_TRUE(eps[1].skip_verify);
  EXPECT_EQ(eps[1].ca_file, "/ca.pem");
  EXPECT_EQ(eps[2].baseUrl(), "https://registry.k8s.io/v2/");
  // Other domains are not affected.
  EXPECT_EQ(resolveEndpoints(opts, "quay.io").value().size(), 1u);
}

TEST(EndpointsTest, UpstreamOverrideReplacesTheDomain) {
  RegistryOptions opts;
  opts.hosts["docker.io"].upstream_override = RegistryEndpoint{"https://hub.internal:8443"};
  opts.hosts["docker.io"].mirrors.push_back(RegistryEndpoint{"http://10.0.0.1:5000"});
  auto eps = resolveEndpoints(opts, "docker.io").value();
  ASSERT_EQ(eps.size(), 2u);
  EXPECT_EQ(eps[0].baseUrl(), "http://10.0.0.1:5000/v2/");
  EXPECT_TRUE(eps[0].plain_http);
  EXPECT_EQ(eps[0].host, "10.0.0.1:5000");
  EXPECT_EQ(eps[1].baseUrl(), "https://hub.internal:8443/v2/");
}

TEST(EndpointsTest, PathPrefix) {
  RegistryOptions opts;
  auto& mirrors = opts.hosts["docker.io"].mirrors;
  mirrors.push_back(RegistryEndpoint{"https://art.example.com/api/docker/hub/v2/"});
  RegistryEndpoint explicit_prefix{"mirror:5000"};
  explicit_prefix.path_prefix = "cache/";
  mirrors.push_back(explicit_prefix);
  RegistryEndpoint slash_prefix{"mirror:5001"};
  slash_prefix.path_prefix = "/";
  mirrors.push_back(slash_prefix);
  auto eps = resolveEndpoints(opts, "docker.io").value();
  ASSERT_EQ(eps.size(), 4u);
  EXPECT_EQ(eps[0].host, "art.example.com");
  EXPECT_EQ(eps[0].path_prefix, "/api/docker/hub");
  EXPECT_EQ(eps[0].baseUrl(), "https://art.example.com/api/docker/hub/v2/");
  EXPECT_EQ(eps[1].baseUrl(), "https://mirror:5000/cache/v2/");
  EXPECT_EQ(eps[2].baseUrl(), "https://mirror:5001/v2/");
  EXPECT_EQ(eps[3].baseUrl(), "https://registry-1.docker.io/v2/");
}

TEST(EndpointsTest, LoopbackHosts) {
  for (const char* h :
       {"localhost", "localhost:1", "127.0.0.1", "127.0.0.1:5000", "::1", "[::1]", "[::1]:5000"}) {
    EXPECT_TRUE(isLoopbackHost(h)) << h;
  }
  for (const char* h :
       {"example.com", "10.0.0.1:5000", "[fe80::1]:5000", "localhost.example", "128.0.0.1"}) {
    EXPECT_FALSE(isLoopbackHost(h)) << h;
  }
}

}  // namespace
}  // namespace berth::image
