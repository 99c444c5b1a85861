// Configuration: defaults, strict keys, value checks, and the printed default file.
#include "daemon/config.h"

#include <gtest/gtest.h>

#include "../common/test_dir.h"
#include "common/fs.h"

namespace berth::daemon {
namespace {

TEST(ConfigTest, EmptyFileGivesDefaults) {
  auto c = parseConfig("", "test.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->root, "/var/lib/berth");
  EXPECT_EQ(c->state, "/run/berth");
  EXPECT_EQ(c->grpc.address, "/run/berth/berth.sock");
  EXPECT_EQ(c->log.level, "info");
  EXPECT_EQ(c->cri.default_runtime_handler, "runc");
  EXPECT_EQ(c->cri.runtimes.at("runc").runtime_path, "runc");
  EXPECT_EQ(c->cri.runtimes.at("crun").runtime_path, "crun");
}

TEST(ConfigTest, ReadsEveryTable) {
  auto c = parseConfig(R"(
root = "/tmp/r"
state = "/tmp/s"
[grpc]
address = "/tmp/s/x.sock"
gid = 5
[log]
level = "debug"
format = "json"
[cri]
sandbox_image = "registry.k8s.io/pause:3.10"
default_runtime_handler = "kata"
[cri.runtimes.kata]
runtime_path = "/usr/bin/kata"
default_ulimits = ["nofile=1024:2048", "core=-1"]
[cri.runtimes.runc]
runtime_root = "/tmp/runc-root"
)",
                       "test.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->root, "/tmp/r");
  EXPECT_EQ(c->grpc.address, "/tmp/s/x.sock");
  EXPECT_EQ(c->grpc.gid, 5);
  EXPECT_EQ(c->log.format, "json");
  EXPECT_EQ(c->cri.sandbox_image, "registry.k8s.io/pause:3.10");
  EXPECT_EQ(c->cri.runtimes.at("kata").runtime_path, "/usr/bin/kata");
  EXPECT_EQ(c->cri.runtimes.at("kata").sandboxer, "podsandbox");
  EXPECT_EQ(c->cri.runtimes.at("kata").exec, "monitor");
  EXPECT_EQ(c->cri.runtimes.at("kata").default_ulimits,
            (std::vector<std::string>{"nofile=1024:2048", "core=-1"}));
  // A handler named in the file keeps the built-in values it does not override.
  EXPECT_EQ(c->cri.runtimes.at("runc").runtime_path, "runc");
  EXPECT_EQ(c->cri.runtimes.at("runc").runtime_root, "/tmp/runc-root");
}

TEST(ConfigTest, GrpcConnectionLimitsDefaultsAndBounds) {
  auto c = parseConfig("", "test.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->grpc.max_connections, 1024);
  c = parseConfig("[grpc]\nmax_connections = 64\n", "test.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->grpc.max_connections, 64);
  for (const char* bad : {"0", "-5", "1048577"}) {
    c = parseConfig(std::string("[grpc]\nmax_connections = ") + bad + "\n", "test.toml");
    ASSERT_FALSE(c.ok()) << bad;
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(c.status().message().find("\"grpc.max_connections\""), std::string_view::npos)
        << c.status();
  }
  EXPECT_EQ(parseConfig("", "t.toml")->grpc.idle_connection_timeout_seconds, 300);
  EXPECT_FALSE(parseConfig("[grpc]\nidle_connection_timeout_seconds = 0\n", "t.toml").ok());
}

struct BadCase {
  const char* name;
  const char* toml;
  const char* key;  // must appear in the error
};

class BadConfigTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadConfigTest, RejectedNamingTheKey) {
  auto c = parseConfig(GetParam().toml, "test.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find(GetParam().key), std::string_view::npos) << c.status();
}

INSTANTIATE_TEST_SUITE_P(
    Cases, BadConfigTest,
    ::testing::Values(
        BadCase{"UnknownTopKey", "rooot = \"/x\"", "\"rooot\""},
        BadCase{"UnknownNestedKey", "[grpc]\nadress = \"/x\"", "\"grpc.adress\""},
        BadCase{"UnknownTable", "[grpcc]\nx = 1", "\"grpcc\""},
        BadCase{"UnknownRuntimeKey", "[cri.runtimes.runc]\npath = \"x\"",
                "\"cri.runtimes.runc.path\""},
        BadCase{"WrongType", "[grpc]\ngid = \"zero\"", "\"grpc.gid\""},
        BadCase{"StringForInt", "root = 5", "\"root\""},
        BadCase{"RelativeRoot", "root = \"var/lib\"", "\"root\""},
        BadCase{"BadLevel", "[log]\nlevel = \"loud\"", "\"log.level\""},
        BadCase{"BadFormat", "[log]\nformat = \"xml\"", "\"log.format\""},
        BadCase{"NegativeGid", "[grpc]\ngid = -1", "\"grpc.gid\""},
        BadCase{"MissingDefaultHandler", "[cri]\ndefault_runtime_handler = \"nope\"",
                "\"cri.default_runtime_handler\""},
        BadCase{"UnknownSandboxer", "[cri.runtimes.x]\nruntime_path = \"runc\"\nsandboxer = \"vm\"",
                "\"cri.runtimes.x.sandboxer\""},
        BadCase{"HandlerWithoutBinary", "[cri.runtimes.x]\nsandboxer = \"podsandbox\"",
                "\"cri.runtimes.x.runtime_path\""},
        BadCase{"UnknownExecMode", "[cri.runtimes.x]\nruntime_path = \"runc\"\nexec = \"vm\"",
                "\"cri.runtimes.x.exec\""},
        BadCase{"UnknownUlimit",
                "[cri.runtimes.x]\nruntime_path = \"runc\"\ndefault_ulimits = [\"files=5\"]",
                "\"cri.runtimes.x.default_ulimits\""},
        BadCase{"UlimitSoftAboveHard",
                "[cri.runtimes.x]\nruntime_path = \"runc\"\ndefault_ulimits = [\"nofile=9:5\"]",
                "soft limit exceeds"},
        BadCase{"SyntaxError", "root = ", "test.toml:1"},
        BadCase{"MirrorWithoutScheme", "[image.registries.\"docker.io\"]\nmirrors = [\"m:5000\"]",
                "image.registries.\"docker.io\".mirrors"},
        BadCase{"MirrorsNotStrings", "[image.registries.\"docker.io\"]\nmirrors = [1]",
                "image.registries.\"docker.io\".mirrors"},
        BadCase{"UnknownRegistryKey", "[image.registries.\"docker.io\"]\nmirror = \"x\"",
                "image.registries.\"docker.io\".mirror"},
        BadCase{"BoolAsString", "[image.registries.q]\nplain_http = \"yes\"",
                "image.registries.\"q\".plain_http"},
        BadCase{"ZeroDownloads", "[image]\nmax_concurrent_downloads = 0",
                "image.max_concurrent_downloads"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(ConfigTest, PrintedDefaultsParseBackToDefaults) {
  std::string text = renderConfig(Config{});
  auto c = parseConfig(text, "default.toml");
  ASSERT_TRUE(c.ok()) << c.status() << "\n" << text;
  EXPECT_EQ(configToJson(*c), configToJson(Config{}));
  // One comment line per key.
  size_t keys = 0, comments = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    std::string line = text.substr(pos, end - pos);
    pos = end == std::string::npos ? text.size() : end + 1;
    if (line.find(" = ") != std::string::npos && line[0] != '#') ++keys;
    if (line.rfind("# ", 0) == 0) ++comments;
  }
  EXPECT_GE(keys, 10u);
  EXPECT_GE(comments, keys);
}

TEST(ConfigTest, RegistriesParseRenderAndRedact) {
  auto c = parseConfig(R"(
[image]
max_concurrent_downloads = 5
[image.registries."registry.k8s.io"]
mirrors = ["http://127.0.0.1:5000", "https://mirror.example/k8s"]
[image.registries."127.0.0.1:6000"]
plain_http = true
username = "berth"
password = "secret"
)",
                       "t");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->image.max_concurrent_downloads, 5);
  const auto& k8s = c->image.registries.at("registry.k8s.io");
  EXPECT_EQ(k8s.mirrors, (std::vector<std::string>{"http://127.0.0.1:5000",
                                                   "https://mirror.example/k8s"}));
  EXPECT_TRUE(c->image.registries.at("127.0.0.1:6000").plain_http);
  auto back = parseConfig(renderConfig(*c), "rendered");
  ASSERT_TRUE(back.ok()) << back.status() << renderConfig(*c);
  EXPECT_EQ(back->image.registries.at("127.0.0.1:6000").password, "secret");
  EXPECT_EQ(back->image.registries.at("registry.k8s.io").mirrors, k8s.mirrors);
  auto j = configToJson(*c);
  EXPECT_EQ(j["image"]["registries"]["127.0.0.1:6000"]["password"], "<redacted>");
  EXPECT_EQ(j["image"]["registries"]["127.0.0.1:6000"]["username"], "berth");
}

TEST(ConfigTest, JsonHasEffectiveValues) {
  auto c = parseConfig("root = \"/tmp/r\"\n[log]\nlevel = \"debug\"", "t");
  ASSERT_TRUE(c.ok());
  auto j = configToJson(*c);
  EXPECT_EQ(j["root"], "/tmp/r");
  EXPECT_EQ(j["log"]["level"], "debug");
  EXPECT_EQ(j["cri"]["runtimes"]["runc"]["runtime_path"], "runc");
}

TEST(ConfigTest, MissingFileUsesDefaultsOnlyWhenOptional) {
  testing::TestDir dir;
  EXPECT_TRUE(loadConfig(dir / "none.toml", false).ok());
  auto must = loadConfig(dir / "none.toml", true);
  EXPECT_EQ(must.status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(writeFileAtomic(dir / "c.toml", "[log]\nlevel = \"warn\"\n", 0600).ok());
  auto c = loadConfig(dir / "c.toml", true);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->log.level, "warn");
}

}  // namespace
}  // namespace berth::daemon
