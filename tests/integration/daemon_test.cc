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

// Issue 17, point 4: a config is checked without starting anything; each problem is named.
TEST(DaemonTest, CheckConfigNamesEveryProblemAndPassesAGoodFile) {
  Berthd d;  // its config (temp root, state, CNI folder of the fixture) is a good one
  RunResult ok = runProgram({berthdPath(), "--check-config", "--config", d.configPath()}, 20);
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  EXPECT_NE(ok.out.find(d.configPath() + ": ok"), std::string::npos) << ok.out;
  EXPECT_FALSE(std::filesystem::exists(d.state())) << "nothing is started or made";

  const std::string file = d.dir() + "/check.toml";
  auto check = [&](const std::string& toml) {
    std::ofstream(file) << toml;
    return runProgram({berthdPath(), "--check-config", "--config", file}, 20);
  };
  RunResult unknown = check("[grpc]\nadress = \"/run/x.sock\"\n");
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("config key \"grpc.adress\" is unknown"), std::string::npos)
      << unknown.err;
  const std::string empty_cni = d.dir() + "/empty-cni";
  std::filesystem::create_directories(empty_cni);
  RunResult host = check(
      "[cri.runtimes.kata]\nruntime_path = \"kata-runtime-nowhere\"\n"
      "[cni]\nconf_dir = \"" +
      empty_cni + "\"\ndefault_network = false\n");
  EXPECT_EQ(host.exit_code, 1);
  EXPECT_NE(host.err.find("problem: cri.runtimes.kata.runtime_path: \"kata-runtime-nowhere\" is "
                          "not an executable program"),
            std::string::npos)
      << host.err;
  EXPECT_NE(host.err.find("problem: cni.conf_dir " + empty_cni + " has no usable network config"),
            std::string::npos)
      << host.err;
  // The same empty folder with the built-in network is fine, and said so.
  RunResult builtin = check("[cni]\nconf_dir = \"" + empty_cni + "\"\n");
  EXPECT_EQ(builtin.exit_code, 0) << builtin.err;
  EXPECT_NE(builtin.out.find("pods get the built-in one"), std::string::npos) << builtin.out;
  // A CNI config whose plugin is missing; a hosts.toml that cannot be used.
  std::ofstream(empty_cni + "/10-net.conflist")
      << R"({"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "no-such-plugin"}]})";
  std::filesystem::create_directories(d.dir() + "/certs.d/r.io");
  std::ofstream(d.dir() + "/certs.d/r.io/hosts.toml") << "ca = 5\n";
  RunResult files = check("[cni]\nconf_dir = \"" + empty_cni + "\"\n[image]\nconfig_path = \"" +
                          d.dir() + "/certs.d\"\n");
  EXPECT_EQ(files.exit_code, 1);
  EXPECT_NE(files.err.find("problem: cni.bin_dirs: plugin \"no-such-plugin\" not found"),
            std::string::npos)
      << files.err;
  EXPECT_NE(
      files.err.find("problem: image.config_path: " + d.dir() + "/certs.d/r.io/hosts.toml: ca"),
      std::string::npos)
      << files.err;
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
