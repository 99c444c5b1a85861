// berthd as a process: start-up, the socket, the root lock, bad configuration, signals.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "berthd_fixture.h"
#include "cri_calls.h"
#include "event_recorder.h"
#include "nlohmann/json.hpp"

namespace berth::testing {
namespace {

TEST(DaemonTest, ServesOnRootOnlySocket) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  struct stat st {};
  ASSERT_EQ(::stat(d.socket().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_gid, 0u);
  ASSERT_EQ(::stat(d.state().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & S_IWOTH, 0u) << "socket directory must not be world-writable";
  EXPECT_TRUE(std::filesystem::exists(d.root() + "/meta.db")) << "store lives in the root dir";
}

TEST(DaemonTest, SigtermExitsCleanlyAndRemovesSocket) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
  EXPECT_FALSE(std::filesystem::exists(d.socket()));
  EXPECT_NE(d.log().find("berthd stopped"), std::string::npos) << d.log();
}

// Shutdown stops the retries and the subscriptions first, then the controllers; with a pod,
// an event subscriber and a connected client it is still quick, and the pod runs on under its
// shim and is READY again after the restart (issue 14, point 8).
TEST(DaemonTest, SigtermWithPodsAndSubscribersIsQuickAndPodsRunOn) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  std::string pod;
  ASSERT_TRUE(runPod(d, hostNetworkPod("term"), &pod).ok()) << d.log();
  auto t0 = std::chrono::steady_clock::now();
  {
    EventRecorder events(d);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1)) << d.log();
  ASSERT_TRUE(d.start()) << d.log();
  EXPECT_EQ(podStatus(d, pod).status().state(), v1::SANDBOX_READY) << d.log();
}

TEST(DaemonTest, SigintExitsCleanly) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  EXPECT_EQ(d.stop(SIGINT), 0) << d.log();
}

TEST(DaemonTest, SecondDaemonOnSameRootRefuses) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  // Same root, another socket: the root lock must refuse it.
  std::string other_cfg = d.dir() + "/second.toml";
  std::ofstream(other_cfg) << "root = \"" << d.root() << "\"\nstate = \"" << d.dir()
                           << "/state2\"\n[grpc]\naddress = \"" << d.dir()
                           << "/state2/b.sock\"\n";
  RunResult r = runProgram({berthdPath(), "--config", other_cfg}, 20);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("another berthd is already running on root " + d.root()),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("pid " + std::to_string(d.pid())), std::string::npos) << r.err;
  // The first one is unharmed.
  runtime::v1::VersionResponse v;
  auto ctx = Berthd::context();
  EXPECT_TRUE(d.runtime().Version(ctx.get(), {}, &v).ok());
}

TEST(DaemonTest, SocketServedByAnotherProcessIsNotStolen) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  // Another root, same socket path.
  std::string other_cfg = d.dir() + "/second.toml";
  std::ofstream(other_cfg) << "root = \"" << d.dir() << "/root2\"\nstate = \"" << d.state()
                           << "\"\n[grpc]\naddress = \"" << d.socket() << "\"\n";
  RunResult r = runProgram({berthdPath(), "--config", other_cfg}, 20);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("is served by another process"), std::string::npos) << r.err;
}

TEST(DaemonTest, StaleSocketFromACrashIsReplaced) {
  Berthd d;
  std::filesystem::create_directories(d.state());
  {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    d.socket().copy(addr.sun_path, sizeof(addr.sun_path) - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ::close(fd);  // left behind, as by a crashed daemon
  }
  ASSERT_TRUE(std::filesystem::exists(d.socket()));
  ASSERT_TRUE(d.start()) << d.log();
  EXPECT_NE(d.log().find("removing stale socket"), std::string::npos);
}

TEST(DaemonTest, RestartsAfterKill9) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  EXPECT_EQ(d.stop(SIGKILL), -SIGKILL);
  EXPECT_TRUE(std::filesystem::exists(d.socket())) << "a killed daemon leaves its socket";
  ASSERT_TRUE(d.start()) << d.log();
}

TEST(DaemonTest, BadConfigKeyIsNamed) {
  Berthd d("bogus_key = 1");
  RunResult r = runProgram({berthdPath(), "--config", d.configPath()}, 20);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("config key \"bogus_key\" is unknown"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(d.socket()));
}

TEST(DaemonTest, BadConfigValueIsNamed) {
  Berthd d("[cri]\ndefault_runtime_handler = \"missing\"");
  RunResult r = runProgram({berthdPath(), "--config", d.configPath()}, 20);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cri.default_runtime_handler"), std::string::npos) << r.err;
}

TEST(DaemonTest, ExplicitConfigMustExist) {
  RunResult r = runProgram({berthdPath(), "--config", "/nonexistent/berth.toml"}, 20);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("/nonexistent/berth.toml"), std::string::npos) << r.err;
}

TEST(DaemonTest, PrintDefaultNetworkFollowsTheConfig) {
  Berthd d("[cni]\ndefault_bridge = \"berthx0\"\ndefault_subnet = \"10.99.0.0/16\"\n");
  RunResult r = runProgram({berthdPath(), "--config", d.configPath(), "--print-default-network"}, 20);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["name"], "berth");
  EXPECT_EQ(j["plugins"][0]["type"], "bridge");
  EXPECT_EQ(j["plugins"][0]["bridge"], "berthx0");
  EXPECT_EQ(j["plugins"][0]["ipam"]["ranges"][0][0]["subnet"], "10.99.0.0/16");
  EXPECT_EQ(j["plugins"][1]["type"], "portmap");
}

TEST(DaemonTest, PrintDefaultConfigIsCompleteAndLoadable) {
  RunResult r = runProgram({berthdPath(), "--print-default-config"}, 20);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* key : {"root = \"/var/lib/berth\"", "state = \"/run/berth\"",
                          "address = \"/run/berth/berth.sock\"", "[cri.runtimes.runc]"}) {
    EXPECT_NE(r.out.find(key), std::string::npos) << key << "\n" << r.out;
  }
  // The printed file, pointed at temp dirs, starts a daemon.
  Berthd d;
  std::string text = r.out;
  auto replace = [&](const std::string& from, const std::string& to) {
    text.replace(text.find(from), from.size(), to);
  };
  replace("\"/var/lib/berth\"", "\"" + d.root() + "\"");
  replace("\"/run/berth\"", "\"" + d.state() + "\"");
  replace("\"/run/berth/berth.sock\"", "\"" + d.socket() + "\"");
  std::ofstream(d.configPath()) << text;
  ASSERT_TRUE(d.start()) << d.log();
}

TEST(DaemonTest, JsonLogFormat) {
  Berthd d;
  // The fixture appends its own [log] table; write the file again without it.
  std::ofstream(d.configPath()) << "root = \"" << d.root() << "\"\nstate = \"" << d.state()
                                << "\"\n[grpc]\naddress = \"" << d.socket()
                                << "\"\n[log]\nformat = \"json\"\n";
  ASSERT_TRUE(d.start()) << d.log();
  ASSERT_EQ(d.stop(), 0);
  std::string log = d.log();
  ASSERT_FALSE(log.empty());
  for (size_t pos = 0; pos < log.size();) {
    size_t end = log.find('\n', pos);
    auto line = nlohmann::json::parse(log.substr(pos, end - pos));  // throws if not JSON
    EXPECT_TRUE(line.contains("time") && line.contains("level") && line.contains("msg"));
    pos = end == std::string::npos ? log.size() : end + 1;
  }
  EXPECT_NE(log.find("\"component\":\"daemon\""), std::string::npos) << log;
}

}  // namespace
}  // namespace berth::testing
