// berth-shim against real runc: attach to containers created without a CRI log (with and
// without a terminal), and output nobody reads (no log, no attacher, or an attacher that does
// not read) never blocking the container.
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "common/fs.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "shim/shim_client.h"
#include "test_bundle.h"

namespace berth::shim {
namespace {

using testing::eventually;
using testing::TestEnv;

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Reads `fd` into `got` until it holds `needle`, EOF, or `ms` pass; true if the needle came.
bool readUntil(int fd, const std::string& needle, int ms, std::string* got) {
  int64_t deadline = nowMs() + ms;
  while (got->find(needle) == std::string::npos) {
    int64_t left = deadline - nowMs();
    if (left <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char buf[4096];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return got->find(needle) != std::string::npos;
    got->append(buf, static_cast<size_t>(n));
  }
  return true;
}

// Reads `fd` to its end (bounded by `ms`); returns the byte count, or -1 if it did not end.
int64_t drainToEof(int fd, int ms) {
  int64_t deadline = nowMs() + ms;
  int64_t total = 0;
  for (;;) {
    int64_t left = deadline - nowMs();
    if (left <= 0) return -1;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char buf[65536];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0) return total;
    if (n < 0) return -1;
    total += n;
  }
}

bool writeAll(int fd, const std::string& data) {
  return ::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size());
}

// Marks a bundle's process as a terminal one (runc then wants a console socket).
void makeTerminal(const std::string& bundle) {
  auto text = readFile(bundle + "/config.json");
  ASSERT_TRUE(text.ok()) << text.status();
  nlohmann::json config = nlohmann::json::parse(*text);
  config["process"]["terminal"] = true;
  ASSERT_TRUE(writeFileAtomic(bundle + "/config.json", config.dump(2), 0600).ok());
}

class ShimAttachTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = testing::runcUnavailableReason();
    if (!why.empty()) GTEST_SKIP() << why;
    env_ = std::make_unique<TestEnv>();
    cfg_ = env_->shimConfig("attachpod-" + std::to_string(::getpid()));
    auto c = ShimClient::launch(cfg_);
    ASSERT_TRUE(c.ok()) << c.status();
    client_ = std::move(c).value();
  }
  void TearDown() override {
    client_.reset();
    env_.reset();  // shuts the shim down, deletes containers, removes cgroups and temp dirs
  }

  // create (no log_path) + start.
  void runUnlogged(const std::string& id, const std::string& bundle, bool stdin,
                   bool terminal = false) {
    CreateOptions o{.container_id = id, .bundle = bundle, .terminal = terminal};
    o.stdin = stdin;
    auto pid = client_->create(o);
    ASSERT_TRUE(pid.ok()) << pid.status();
    ASSERT_TRUE(client_->start(id).ok());
  }

  // True once the shim has recorded the container's exit (polled, bounded).
  bool exitsWithin(const std::string& id, int ms) {
    return eventually(ms, [&] {
      auto e = client_->exits();
      if (!e.ok()) return false;
      for (const ExitInfo& x : *e) {
        if (x.container_id == id) return true;
      }
      return false;
    });
  }

  std::unique_ptr<TestEnv> env_;
  ShimConfig cfg_;
  std::unique_ptr<ShimClient> client_;
};

TEST_F(ShimAttachTest, AttachWithoutLogPathSeesOutputAndFeedsStdin) {
  std::string id = env_->containerId("nolog");
  std::string bundle = env_->makeBundle(
      id, {"sh", "-c", "while read l; do echo out:$l; echo err:$l >&2; done; echo stdin-ended"});
  runUnlogged(id, bundle, /*stdin=*/true);
  auto a = client_->attach(id, true, true, true);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE((*a)->io.stdin.valid());
  ASSERT_TRUE((*a)->io.stdout.valid());
  ASSERT_TRUE((*a)->io.stderr.valid());
  EXPECT_FALSE((*a)->io.tty);
  ASSERT_TRUE(writeAll((*a)->io.stdin.get(), "ping\n"));
  std::string out, err;
  EXPECT_TRUE(readUntil((*a)->io.stdout.get(), "out:ping\n", 10000, &out)) << out;
  EXPECT_TRUE(readUntil((*a)->io.stderr.get(), "err:ping\n", 10000, &err)) << err;
  // A second client sees the output too, while the first stays attached.
  auto b = client_->attach(id, false, true, false);
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_TRUE(writeAll((*a)->io.stdin.get(), "pong\n"));
  std::string out_b;
  EXPECT_TRUE(readUntil((*b)->io.stdout.get(), "out:pong\n", 10000, &out_b)) << out_b;
  EXPECT_TRUE(readUntil((*a)->io.stdout.get(), "out:pong\n", 10000, &out)) << out;
  // No log file appears anywhere: there is none to write.
  EXPECT_FALSE(readFile(bundle + "/ctr.log").ok());
  ASSERT_TRUE(client_->kill(id, SIGKILL, false).ok());
  ASSERT_TRUE(client_->wait(id).ok());
  ASSERT_TRUE(client_->remove(id, false).ok());
}

TEST_F(ShimAttachTest, AttachWithoutLogPathToATerminal) {
  std::string id = env_->containerId("nologtty");
  std::string bundle = env_->makeBundle(id, {"sh"});
  makeTerminal(bundle);
  runUnlogged(id, bundle, /*stdin=*/true, /*terminal=*/true);
  auto a = client_->attach(id, true, true, false);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE((*a)->io.tty);
  ASSERT_TRUE((*a)->io.stdin.valid());
  ASSERT_TRUE((*a)->io.stdout.valid());
  ASSERT_TRUE((*a)->io.pty.valid());
  // The terminal echoes the command as typed; only the shell's answer has "42x".
  ASSERT_TRUE(writeAll((*a)->io.stdin.get(), "echo $((6*7))x\n"));
  std::string out;
  EXPECT_TRUE(readUntil((*a)->io.stdout.get(), "42x", 10000, &out)) << out;
  ASSERT_TRUE(client_->kill(id, SIGKILL, false).ok());
  ASSERT_TRUE(client_->wait(id).ok());
  ASSERT_TRUE(client_->remove(id, false).ok());
}

TEST_F(ShimAttachTest, UnreadOutputWithoutLogOrAttacherDoesNotBlockTheContainer) {
  std::string id = env_->containerId("flood");
  // 20 MB on each stream: far more than pipe buffers hold; the shim must read and drop it.
  std::string bundle = env_->makeBundle(
      id, {"sh", "-c", "head -c 20000000 /dev/zero; head -c 20000000 /dev/zero >&2; exit 3"});
  runUnlogged(id, bundle, /*stdin=*/false);
  ASSERT_TRUE(exitsWithin(id, 60000)) << "the container is stuck writing its output";
  auto w = client_->wait(id);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->exit_code, 3);
  ASSERT_TRUE(client_->remove(id, false).ok());
}

TEST_F(ShimAttachTest, AnAttacherThatDoesNotReadDoesNotBlockTheContainer) {
  std::string id = env_->containerId("slowreader");
  std::string bundle =
      env_->makeBundle(id, {"sh", "-c", "read go; head -c 20000000 /dev/zero; exit 4"});
  runUnlogged(id, bundle, /*stdin=*/true);
  auto a = client_->attach(id, true, true, true);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(writeAll((*a)->io.stdin.get(), "go\n"));
  // The client reads nothing while the container writes.
  ASSERT_TRUE(exitsWithin(id, 60000)) << "the container is stuck behind its attached client";
  auto w = client_->wait(id);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->exit_code, 4);
  // The shim let go of that client's output (it ends), having kept less than was written.
  int64_t got = drainToEof((*a)->io.stdout.get(), 10000);
  EXPECT_GE(got, 0) << "the attached client's output did not end";
  EXPECT_LT(got, 20000000);
  ASSERT_TRUE(client_->remove(id, false).ok());
}

}  // namespace
}  // namespace berth::shim
