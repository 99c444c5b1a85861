// Issue 13: Attach to a running container created without a log_path failed ("the shim holds
// no output of it"). The shim now holds every container's output: attach reads it and writes
// its stdin, with and without a terminal, over SPDY and WebSocket.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "cri_calls.h"
#include "pod_env.h"
#include "streaming/client.h"

namespace berth::testing {
namespace {

namespace v1 = runtime::v1;
using streaming::CommandClient;
using streaming::Transport;

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// A container of `e`'s pod with no log_path.
v1::ContainerConfig unlogged(const PodEnv& e, const std::string& name,
                             std::vector<std::string> cmd) {
  v1::ContainerConfig c = e.containerConfig(name, std::move(cmd));
  c.clear_log_path();
  return c;
}

class AttachTest : public ::testing::TestWithParam<Transport> {};

TEST_P(AttachTest, AttachWithoutLogPathSeesOutputAndFeedsStdin) {
  PodEnv e("attach-nolog");
  auto cfg =
      unlogged(e, "echoer", {"sh", "-c", "while read l; do echo out:$l; echo err:$l >&2; done"});
  cfg.set_stdin(true);
  std::string id = e.run(cfg);
  auto c = CommandClient::connect(
      attachUrl(e.d, id, true, true, true, false),
      {.stdin = true, .stdout = true, .stderr = true, .tty = false, .transport = GetParam()});
  ASSERT_TRUE(c.ok()) << c.status();
  std::string out, err;
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int i = 0; i < 100 && !done; ++i) {  // until the shell is reading (bounded)
      (*c)->writeStdin("ping\n");
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  (void)(*c)->run([&](int ch, std::string_view data) {
    (ch == 1 ? out : err).append(data);
    if (out.find("out:ping\n") != std::string::npos &&
        err.find("err:ping\n") != std::string::npos) {
      done = true;
      (*c)->abort();
    }
  });
  writer.join();
  EXPECT_TRUE(done) << "stdout: " << out << "\nstderr: " << err << "\n" << e.d.log();
  // Nothing was logged (there is no log), and the container goes on after the client left.
  EXPECT_FALSE(exists(e.logPath("echoer")));
  EXPECT_EQ(e.status(id).status().state(), v1::CONTAINER_RUNNING);
}

TEST_P(AttachTest, AttachWithoutLogPathOrStdinSeesOutput) {
  PodEnv e("attach-nolog-out");
  std::string id =
      e.run(unlogged(e, "ticker", {"sh", "-c", "while true; do echo tick; sleep 0.2; done"}));
  auto c = CommandClient::connect(
      attachUrl(e.d, id, false, true, true, false),
      {.stdin = false, .stdout = true, .stderr = true, .tty = false, .transport = GetParam()});
  ASSERT_TRUE(c.ok()) << c.status();
  std::string out;
  std::atomic<bool> seen{false};
  // The container ticks five times a second; the watchdog only bounds a failing test.
  std::thread watchdog([&] {
    for (int i = 0; i < 100 && !seen; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (!seen) (*c)->abort();
  });
  (void)(*c)->run([&](int ch, std::string_view data) {
    if (ch == 1) out.append(data);
    if (!seen && out.find("tick\n") != std::string::npos) {
      seen = true;
      (*c)->abort();
    }
  });
  watchdog.join();
  EXPECT_TRUE(seen) << out << "\n" << e.d.log();
}

TEST_P(AttachTest, AttachWithoutLogPathToATerminal) {
  PodEnv e("attach-nolog-tty");
  auto cfg = unlogged(e, "shell", {"sh"});
  cfg.set_stdin(true);
  cfg.set_tty(true);
  std::string id = e.run(cfg);
  auto c = CommandClient::connect(
      attachUrl(e.d, id, true, true, false, true),
      {.stdin = true, .stdout = true, .stderr = false, .tty = true, .transport = GetParam()});
  ASSERT_TRUE(c.ok()) << c.status();
  std::string out;
  std::atomic<bool> seen{false};
  std::thread writer([&] {
    for (int i = 0; i < 100 && !seen; ++i) {
      // The terminal echoes what is typed; only the shell's answer reads "42x".
      (*c)->writeStdin("echo $((6*7))x\n");
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  (void)(*c)->run([&](int, std::string_view data) {
    out.append(data);
    if (out.find("42x") != std::string::npos) {
      seen = true;
      (*c)->abort();
    }
  });
  writer.join();
  EXPECT_TRUE(seen) << out << "\n" << e.d.log();
  EXPECT_FALSE(exists(e.logPath("shell")));
  EXPECT_EQ(e.status(id).status().state(), v1::CONTAINER_RUNNING);
}

INSTANTIATE_TEST_SUITE_P(Transports, AttachTest,
                         ::testing::Values(Transport::kSpdy, Transport::kWebSocket),
                         [](const auto& info) {
                           return std::string(info.param == Transport::kSpdy ? "spdy"
                                                                             : "websocket");
                         });

}  // namespace
}  // namespace berth::testing
