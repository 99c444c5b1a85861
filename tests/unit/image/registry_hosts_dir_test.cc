// hosts.toml folders (containerd's format): what each key does, the order of the mirrors, the
// _default folder, docker's certs.d layout, and errors that name the file and the key.
#include "image/registry_hosts_dir.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/test_dir.h"

namespace berth::image {
namespace {

using testing::TestDir;

void write(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << text;
}

std::vector<RegistryEndpoint> endpoints(const TestDir& dir, const std::string& domain,
                                        bool inline_config = false) {
  auto got = endpointsFromHostsDir(dir.path(), domain, inline_config);
  EXPECT_TRUE(got.ok()) << got.status();
  if (!got.ok() || !got->has_value()) return {};
  return **got;
}

TEST(RegistryHostsDirTest, MirrorsInFileOrderThenTheServerWithEveryKey) {
  TestDir dir;
  write(dir / "docker.io/hosts.toml", R"(
server = "https://registry-1.docker.io"
capabilities = ["pull", "resolve"]

[host."https://zz-mirror.example.com/v2/"]
  capabilities = ["pull"]
  ca = "zz-ca.crt"
  client = [["/etc/c.cert", "c.key"]]
  skip_verify = true

[host."http://aa-mirror.example.com:5000/cache"]
  capabilities = ["pull", "resolve"]
  override_path = true
  client = "both.pem"
  [host."http://aa-mirror.example.com:5000/cache".header]
    x-token = "t"
    x-multi = ["a", "b"]
)");
  auto eps = endpoints(dir, "docker.io");
  ASSERT_EQ(eps.size(), 3u);
  EXPECT_EQ(eps[0].host, "zz-mirror.example.com") << "file order, not key order";
  EXPECT_EQ(eps[0].baseUrl(), "https://zz-mirror.example.com/v2/");
  EXPECT_TRUE(eps[0].can_pull);
  EXPECT_FALSE(eps[0].can_resolve);
  EXPECT_EQ(eps[0].ca_file, dir / "docker.io/zz-ca.crt") << "relative to the folder";
  EXPECT_EQ(eps[0].client_cert, "/etc/c.cert");
  EXPECT_EQ(eps[0].client_key, dir / "docker.io/c.key");
  EXPECT_TRUE(eps[0].skip_verify);
  EXPECT_EQ(eps[1].baseUrl(), "http://aa-mirror.example.com:5000/cache/")
      << "override_path: the path is the API root";
  EXPECT_EQ(eps[1].client_cert, dir / "docker.io/both.pem");
  EXPECT_EQ(eps[1].client_key, dir / "docker.io/both.pem");
  EXPECT_EQ(eps[1].headers, (std::vector<std::string>{"x-multi: a", "x-multi: b", "x-token: t"}));
  EXPECT_EQ(eps[2].baseUrl(), "https://registry-1.docker.io/v2/");
  EXPECT_TRUE(eps[2].can_resolve);
}

TEST(RegistryHostsDirTest, WithoutAServerTheDomainItselfIsTheUpstream) {
  TestDir dir;
  write(dir / "127.0.0.1:5000/hosts.toml", "");
  write(dir / "quay.io/hosts.toml", "skip_verify = true\n");
  auto local = endpoints(dir, "127.0.0.1:5000");
  ASSERT_EQ(local.size(), 1u);
  EXPECT_EQ(local[0].baseUrl(), "http://127.0.0.1:5000/v2/") << "loopback: plain HTTP";
  auto quay = endpoints(dir, "quay.io");
  ASSERT_EQ(quay.size(), 1u);
  EXPECT_EQ(quay[0].baseUrl(), "https://quay.io/v2/");
  EXPECT_TRUE(quay[0].skip_verify);
}

TEST(RegistryHostsDirTest, DefaultFolderStandsInUnlessTheDomainHasInlineKeys) {
  TestDir dir;
  EXPECT_FALSE(endpointsFromHostsDir(dir.path(), "quay.io", false)->has_value());
  write(dir / "_default/hosts.toml", R"([host."https://cache.internal"]
  capabilities = ["pull", "resolve"]
)");
  auto eps = endpoints(dir, "quay.io");
  ASSERT_EQ(eps.size(), 2u);
  EXPECT_EQ(eps[0].host, "cache.internal");
  EXPECT_EQ(eps[1].host, "quay.io");
  EXPECT_FALSE(endpointsFromHostsDir(dir.path(), "quay.io", true)->has_value())
      << "inline [image.registries] keys win over _default";
  // A folder of the domain's own wins over inline keys.
  write(dir / "quay.io/hosts.toml", "");
  EXPECT_EQ(endpoints(dir, "quay.io", true).size(), 1u);
  // Names that are no folder name are not looked up.
  EXPECT_FALSE(endpointsFromHostsDir(dir.path(), "..", false).value().has_value());
}

TEST(RegistryHostsDirTest, SeveralRootsTheFirstWithTheHostWins) {
  TestDir a, b;
  write(b / "quay.io/hosts.toml", "skip_verify = true\n");
  write(a / "_default/hosts.toml", "skip_verify = false\n");
  const std::string both = a.path() + ":" + b.path();
  auto got = endpointsFromHostsDir(both, "quay.io", false);
  ASSERT_TRUE(got.ok() && got->has_value()) << got.status();
  EXPECT_TRUE((**got)[0].skip_verify) << "b's own folder before a's _default";
  got = endpointsFromHostsDir(both, "ghcr.io", false);
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_FALSE((**got)[0].skip_verify);
}

TEST(RegistryHostsDirTest, DockerCertsFolderWithoutHostsToml) {
  TestDir dir;
  write(dir / "registry.example.com/ca.crt", "x");
  write(dir / "registry.example.com/client.cert", "x");
  write(dir / "registry.example.com/client.key", "x");
  auto eps = endpoints(dir, "registry.example.com");
  ASSERT_EQ(eps.size(), 1u);
  EXPECT_EQ(eps[0].ca_file, dir / "registry.example.com/ca.crt");
  EXPECT_EQ(eps[0].client_cert, dir / "registry.example.com/client.cert");
  EXPECT_EQ(eps[0].client_key, dir / "registry.example.com/client.key");
}

TEST(RegistryHostsDirTest, MistakesNameTheFileAndTheKey) {
  TestDir dir;
  auto says = [&](const std::string& text) {
    write(dir / "r.io/hosts.toml", text);
    auto got = endpointsFromHostsDir(dir.path(), "r.io", false);
    EXPECT_TRUE(absl::IsInvalidArgument(got.status())) << text;
    return std::string(got.status().message());
  };
  const std::string file = dir / "r.io/hosts.toml";
  EXPECT_EQ(says("capabilities = [\"pull\", \"fly\"]"),
            file + ": capabilities: unknown capability \"fly\" (pull, resolve, push)");
  EXPECT_EQ(says("skip_verify = \"yes\""), file + ": skip_verify: a boolean");
  EXPECT_EQ(says("[host.\"mirror.example.com\"]"),
            file + ": host.\"mirror.example.com\": a URL with http:// or https://");
  EXPECT_EQ(says("[host.\"https://m\"]\n  cert = \"x\""),
            file + ": host.\"https://m\".cert: unknown key");
  EXPECT_EQ(says("server = 5"), file + ": server: a URL string");
  EXPECT_EQ(says("server = \"https://x").rfind(file + ": ", 0), 0u);
}

}  // namespace
}  // namespace berth::image
