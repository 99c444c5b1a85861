// Version, Status, RuntimeConfig and UpdateRuntimeConfig through the generated client, and
// berthctl's view of them.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>

#include "berthd_fixture.h"
#include "nlohmann/json.hpp"

namespace berth::testing {
namespace {

class RuntimeInfoTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    daemon_ = new Berthd();
    // As on a node, anyone may search the folders above state (user namespaces need it).
    ASSERT_EQ(::chmod(daemon_->dir().c_str(), 0755), 0);
    ASSERT_TRUE(daemon_->start()) << daemon_->log();
  }
  static void TearDownTestSuite() {
    delete daemon_;
    daemon_ = nullptr;
  }
  static Berthd* daemon_;
};
Berthd* RuntimeInfoTest::daemon_ = nullptr;

TEST_F(RuntimeInfoTest, Version) {
  runtime::v1::VersionRequest req;
  req.set_version("v1");
  runtime::v1::VersionResponse resp;
  auto ctx = Berthd::context();
  ASSERT_TRUE(daemon_->runtime().Version(ctx.get(), req, &resp).ok());
  EXPECT_EQ(resp.version(), "0.1.0");
  EXPECT_EQ(resp.runtime_name(), "berth");
  EXPECT_FALSE(resp.runtime_version().empty());
  EXPECT_EQ(resp.runtime_api_version(), "v1");
}

TEST_F(RuntimeInfoTest, StatusConditions) {
  runtime::v1::StatusRequest req;
  runtime::v1::StatusResponse resp;
  auto ctx = Berthd::context();
  ASSERT_TRUE(daemon_->runtime().Status(ctx.get(), req, &resp).ok());
  ASSERT_EQ(resp.status().conditions_size(), 2);
  const auto& runtime = resp.status().conditions(0);
  EXPECT_EQ(runtime.type(), "RuntimeReady");
  EXPECT_TRUE(runtime.status()) << "runc is installed: " << runtime.message();
  const auto& network = resp.status().conditions(1);
  EXPECT_EQ(network.type(), "NetworkReady");
  // The fixture's CNI config and Debian's plugins make the network ready (NetworkTest covers
  // NetworkPluginNotReady).
  EXPECT_TRUE(network.status()) << network.reason() << ": " << network.message();
  EXPECT_TRUE(resp.info().empty()) << "info only when verbose";
  std::vector<std::string> handlers;
  for (const auto& h : resp.runtime_handlers()) handlers.push_back(h.name());
  EXPECT_EQ(handlers, (std::vector<std::string>{"", "crun", "runc"}));
  // Recursive read-only mounts where the runtime lists "rro" in `<runtime> features` (Debian's
  // runc does; its crun has no features command); the default handler ("") is runc.
  auto features = [](const std::string& runtime) {
    std::string out;
    if (FILE* p = ::popen((runtime + " features 2>/dev/null").c_str(), "r")) {
      char buf[4096];
      for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
      ::pclose(p);
    }
    return out;
  };
  auto knowsRro = [&](const std::string& runtime) {
    return features(runtime).find("\"rro\"") != std::string::npos;
  };
  ASSERT_TRUE(knowsRro("runc")) << "Debian 12's runc 1.1.5 knows rro";
  // User namespaces where `<runtime> features` lists them (berth makes the idmapped mounts
  // runc 1.1.5 cannot; this kernel has them): runc yes, crun (no features command) no.
  auto joinsUserns = [&](const std::string& runtime) {
    return features(runtime).find("\"user\"") != std::string::npos;
  };
  ASSERT_TRUE(joinsUserns("runc"));
  EXPECT_TRUE(resp.features().supplemental_groups_policy());
  for (const auto& h : resp.runtime_handlers()) {
    std::string runtime = h.name().empty() ? "runc" : h.name();
    EXPECT_EQ(h.features().recursive_read_only_mounts(), knowsRro(runtime)) << h.name();
    EXPECT_EQ(h.features().user_namespaces(), joinsUserns(runtime)) << h.name();
  }
}

TEST_F(RuntimeInfoTest, VerboseStatusShowsEffectiveConfig) {
  runtime::v1::StatusRequest req;
  req.set_verbose(true);
  runtime::v1::StatusResponse resp;
  auto ctx = Berthd::context();
  ASSERT_TRUE(daemon_->runtime().Status(ctx.get(), req, &resp).ok());
  ASSERT_TRUE(resp.info().contains("config"));
  auto config = nlohmann::json::parse(resp.info().at("config"));
  EXPECT_EQ(config["root"], daemon_->root());
  EXPECT_EQ(config["grpc"]["address"], daemon_->socket());
  EXPECT_EQ(config["log"]["level"], "debug");
  EXPECT_EQ(config["cri"]["default_runtime_handler"], "runc");
  // Where each value came from (issue 17, point 4): the file, or the built-in default.
  ASSERT_TRUE(resp.info().contains("configSources"));
  auto sources = nlohmann::json::parse(resp.info().at("configSources"));
  EXPECT_EQ(sources["/root"], daemon_->configPath());
  EXPECT_EQ(sources["/log/level"], daemon_->configPath());
  EXPECT_EQ(sources["/cri/pids_limit"], "default");
  EXPECT_EQ(sources["/cri/runtimes/runc/runtime_path"], "default");
  EXPECT_EQ(sources.size(), config.flatten().size()) << "every value has its source";
  // berthctl info shows both: as a table, each value with its source; as JSON, both maps.
  RunResult table = runProgram({berthctlPath(), "-r", daemon_->endpoint(), "info"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("cri/pids_limit"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("4096  (default)"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find(daemon_->root() + "  (" + daemon_->configPath() + ")"),
            std::string::npos)
      << table.out;
  RunResult json = runProgram({berthctlPath(), "-r", daemon_->endpoint(), "info", "-o", "json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  auto shown = nlohmann::json::parse(json.out, nullptr, false);
  EXPECT_EQ(shown["configSources"]["/cri/pids_limit"], "default") << json.out;
}

TEST_F(RuntimeInfoTest, RuntimeConfigIsCgroupfs) {
  runtime::v1::RuntimeConfigResponse resp;
  auto ctx = Berthd::context();
  ASSERT_TRUE(daemon_->runtime().RuntimeConfig(ctx.get(), {}, &resp).ok());
  EXPECT_EQ(resp.linux().cgroup_driver(), runtime::v1::CgroupDriver::CGROUPFS);
}

TEST_F(RuntimeInfoTest, MissingRuntimeBinaryMakesRuntimeNotReady) {
  Berthd d("[cri.runtimes.runc]\nruntime_path = \"/nonexistent/runc\"");
  ASSERT_TRUE(d.start()) << d.log();
  runtime::v1::StatusResponse resp;
  auto ctx = Berthd::context();
  ASSERT_TRUE(d.runtime().Status(ctx.get(), {}, &resp).ok());
  const auto& c = resp.status().conditions(0);
  EXPECT_EQ(c.type(), "RuntimeReady");
  EXPECT_FALSE(c.status());
  EXPECT_EQ(c.reason(), "OCIRuntimeNotFound");
  EXPECT_NE(c.message().find("/nonexistent/runc"), std::string::npos) << c.message();
}

TEST_F(RuntimeInfoTest, BerthctlVersionMatchesRpc) {
  RunResult table = runProgram({berthctlPath(), "-r", daemon_->endpoint(), "version"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("RuntimeName:        berth"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("RuntimeApiVersion:  v1"), std::string::npos) << table.out;
  RunResult json = runProgram({berthctlPath(), "version", "-o", "json", "--runtime-endpoint",
                               daemon_->socket()});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  auto j = nlohmann::json::parse(json.out);
  EXPECT_EQ(j["runtimeName"], "berth");
  EXPECT_EQ(j["version"], "0.1.0");
  EXPECT_EQ(j["runtimeApiVersion"], "v1");
}

TEST_F(RuntimeInfoTest, BerthctlInfoJsonLikeCrictl) {
  RunResult r = runProgram({berthctlPath(), "-r", daemon_->endpoint(), "info", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["status"]["conditions"].size(), 2u) << r.out;
  EXPECT_EQ(j["status"]["conditions"][0]["type"], "RuntimeReady");
  EXPECT_EQ(j["status"]["conditions"][0]["status"], true);
  EXPECT_EQ(j["status"]["conditions"][1]["type"], "NetworkReady");
  EXPECT_EQ(j["status"]["conditions"][1]["status"], true);
  EXPECT_EQ(j["config"]["root"], daemon_->root()) << "info entries are parsed JSON";
}

TEST_F(RuntimeInfoTest, BerthctlInfoYamlAndEnvEndpoint) {
  ::setenv("BERTH_RUNTIME_ENDPOINT", daemon_->endpoint().c_str(), 1);
  RunResult r = runProgram({berthctlPath(), "info", "-o", "yaml"});
  ::unsetenv("BERTH_RUNTIME_ENDPOINT");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("status:\n  conditions:\n    - "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("type: RuntimeReady"), std::string::npos) << r.out;
}

TEST_F(RuntimeInfoTest, BerthctlReportsUnreachableEndpoint) {
  RunResult r =
      runProgram({berthctlPath(), "-t", "2", "-r", "unix:///nonexistent/x.sock", "version"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("Version failed: Unavailable"), std::string::npos) << r.err;
}

TEST(UpdateRuntimeConfigTest, PodCidrIsCheckedAndKept) {
  namespace v1 = runtime::v1;
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  auto call = [&](const std::string& cidr) {
    v1::UpdateRuntimeConfigRequest req;
    req.mutable_runtime_config()->mutable_network_config()->set_pod_cidr(cidr);
    v1::UpdateRuntimeConfigResponse resp;
    auto ctx = Berthd::context();
    return d.runtime().UpdateRuntimeConfig(ctx.get(), req, &resp);
  };
  // Nothing to apply.
  EXPECT_TRUE(call("").ok());
  grpc::Status st = call("10.244.1.0/24,nonsense");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("\"nonsense\" is not a CIDR"), std::string::npos)
      << st.error_message();
  // The test daemon has a CNI config of its own, which stays in use; the CIDRs are kept (for
  // the built-in network) across a restart of berthd, as kubelet does not send them again.
  st = call("10.244.1.0/24, fd00:10:244:1::/64");
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(slurp(d.state() + "/pod-cidrs"), "10.244.1.0/24\nfd00:10:244:1::/64\n");
  auto status = [&] {
    v1::StatusRequest req;
    v1::StatusResponse resp;
    auto ctx = Berthd::context();
    EXPECT_TRUE(d.runtime().Status(ctx.get(), req, &resp).ok());
    return resp;
  };
  bool network_ready = false;
  v1::StatusResponse now = status();
  for (const auto& c : now.status().conditions()) {
    if (c.type() == "NetworkReady") network_ready = c.status();
  }
  EXPECT_TRUE(network_ready);
}

}  // namespace
}  // namespace berth::testing
