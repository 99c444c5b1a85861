// berth-shim against real runc: launch, container lifecycle, exit records (also while no client
// is connected), surviving the launcher, and a shutdown that leaves nothing behind.
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "common/fs.h"
#include "gtest/gtest.h"
#include "shim/protocol.h"
#include "shim/shim_client.h"
#include "test_bundle.h"

namespace berth::shim {
namespace {

using testing::eventually;
using testing::processAlive;
using testing::TestEnv;

bool pathExists(const std::string& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0;
}

std::vector<ExitInfo> exitsOf(ShimClient& c) {
  auto e = c.exits();
  EXPECT_TRUE(e.ok()) << e.status();
  return e.ok() ? *e : std::vector<ExitInfo>{};
}

const ExitInfo* findExit(const std::vector<ExitInfo>& v, const std::string& id) {
  for (const auto& e : v) {
    if (e.container_id == id) return &e;
  }
  return nullptr;
}

UniqueFd rawConnect(const std::string& dir) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string path = dir + "/shim.sock";
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  return fd;
}

class ShimRuncTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = testing::runcUnavailableReason();
    if (!why.empty()) GTEST_SKIP() << why;
    env_ = std::make_unique<TestEnv>();
    cfg_ = env_->shimConfig("pod-" + std::to_string(::getpid()));
    auto c = ShimClient::launch(cfg_);
    ASSERT_TRUE(c.ok()) << c.status();
    client_ = std::move(c).value();
    ASSERT_GT(client_->pid(), 0);
  }

  void TearDown() override {
    client_.reset();
    env_.reset();  // shuts the shim down, deletes containers, removes cgroups and temp dirs
  }

  // create (with a CRI log in the bundle dir) + start; returns the init pid.
  int run(const std::string& id, const std::vector<std::string>& args, bool own_pid_ns = true) {
    std::string bundle = env_->makeBundle(id, args, own_pid_ns);
    auto pid =
        client_->create({.container_id = id, .bundle = bundle, .log_path = bundle + "/ctr.log"});
    EXPECT_TRUE(pid.ok()) << pid.status();
    if (!pid.ok()) return 0;
    absl::Status st = client_->start(id);
    EXPECT_TRUE(st.ok()) << st;
    return *pid;
  }

  std::unique_ptr<TestEnv> env_;
  ShimConfig cfg_;
  std::unique_ptr<ShimClient> client_;
};

TEST_F(ShimRuncTest, SleepRunsAndSigtermExitIsRecordedUntilAcked) {
  std::string id = env_->containerId("sleep");
  std::string bundle = env_->makeBundle(id, {"sleep", "1000"}, /*own_pid_ns=*/false);
  auto pid = client_->create({id, bundle});
  ASSERT_TRUE(pid.ok()) << pid.status();
  auto st = client_->state(id);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->status, ProcessStatus::kCreated);
  EXPECT_EQ(st->pid, *pid);
  ASSERT_TRUE(client_->start(id).ok());
  st = client_->state(id);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->status, ProcessStatus::kRunning);

  // wait() blocks on its own connection while other calls go on.
  absl::StatusOr<ExitInfo> waited = absl::UnknownError("not run");
  std::thread waiter([&] { waited = client_->wait(id); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(client_->ping().ok());
  ASSERT_TRUE(client_->kill(id, SIGTERM, false).ok());
  waiter.join();
  ASSERT_TRUE(waited.ok()) << waited.status();
  EXPECT_EQ(waited->exit_code, 143);
  EXPECT_EQ(waited->pid, *pid);
  EXPECT_EQ(waited->container_id, id);
  EXPECT_GT(waited->exited_at_ns, 0);
  EXPECT_FALSE(waited->oom);

  // The record is durable and stays until acknowledged; wait() answers from it at once.
  EXPECT_TRUE(pathExists(cfg_.dir + "/exits/" + id + ".json"));
  auto recorded = exitsOf(*client_);  // findExit points into it: keep it alive
  const ExitInfo* rec = findExit(recorded, id);
  ASSERT_NE(rec, nullptr);
  EXPECT_EQ(rec->exit_code, 143);
  auto again = client_->wait(id);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->exit_code, 143);
  st = client_->state(id);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->status, ProcessStatus::kStopped);
  // Killing a stopped container is fine.
  EXPECT_TRUE(client_->kill(id, SIGKILL, false).ok());
  ASSERT_TRUE(client_->ackExit(id).ok());
  EXPECT_EQ(findExit(exitsOf(*client_), id), nullptr);
  EXPECT_FALSE(pathExists(cfg_.dir + "/exits/" + id + ".json"));

  ASSERT_TRUE(client_->remove(id, false).ok());
  EXPECT_TRUE(client_->remove(id, false).ok()) << "delete must be idempotent";
  EXPECT_TRUE(client_->remove(id, true).ok());
  EXPECT_TRUE(testing::TestEnv::leftoverCgroups(id).empty());
}

TEST_F(ShimRuncTest, ExitCodeIsReported) {
  std::string id = env_->containerId("exit7");
  ASSERT_GT(run(id, {"sh", "-c", "echo hello; echo oops >&2; exit 7"}), 0);
  auto w = client_->wait(id);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->exit_code, 7);
  std::string bundle = env_->root() + "/bundles/" + id;
  // The output is in the log before the exit is reported.
  auto log = readFile(bundle + "/ctr.log");
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_NE(log->find(" stdout F hello\n"), std::string::npos) << *log;
  EXPECT_NE(log->find(" stderr F oops\n"), std::string::npos) << *log;
  ASSERT_TRUE(client_->remove(id, false).ok());
}

TEST_F(ShimRuncTest, PauseExitsZeroOnSigterm) {
  std::string id = env_->containerId("pause");
  ASSERT_GT(run(id, {"/pause"}), 0);
  auto st = client_->state(id);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->status, ProcessStatus::kRunning);
  // pause is pid 1 of its namespace: a SIGTERM that lands before it has installed its handler
  // is ignored by the kernel, so it is repeated until pause stops (it hung the test once).
  ASSERT_TRUE(eventually(10000, [&] {
    (void)client_->kill(id, SIGTERM, false);
    auto now = client_->state(id);
    return now.ok() && now->status != ProcessStatus::kRunning;
  }));
  auto w = client_->wait(id);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->exit_code, 0);
  ASSERT_TRUE(client_->remove(id, false).ok());
}

// create with start (a pod's pause): one `runtime run --detach`, running when it answers,
// its output logged and its exit reported like any other.
TEST_F(ShimRuncTest, CreateWithStartRunsAtOnce) {
  std::string id = env_->containerId("runs");
  std::string bundle = env_->makeBundle(id, {"sh", "-c", "echo up; exec sleep 1000"});
  auto pid = client_->create(
      {.container_id = id, .bundle = bundle, .log_path = bundle + "/ctr.log", .start = true});
  ASSERT_TRUE(pid.ok()) << pid.status();
  auto st = client_->state(id);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->status, ProcessStatus::kRunning);
  EXPECT_EQ(st->pid, *pid);
  EXPECT_EQ(::kill(*pid, 0), 0);
  EXPECT_TRUE(eventually(5000, [&] {
    return readFile(bundle + "/ctr.log").value_or("").find(" stdout F up\n") != std::string::npos;
  }));
  EXPECT_FALSE(client_->start(id).ok()) << "started twice";
  ASSERT_TRUE(client_->kill(id, SIGKILL, false).ok());
  auto w = client_->wait(id);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->exit_code, 137);
  EXPECT_EQ(w->pid, *pid);
  ASSERT_TRUE(client_->remove(id, false).ok());
}

TEST_F(ShimRuncTest, ExitWhileDisconnectedIsReportedAfterReconnect) {
  std::string id = env_->containerId("lonely");
  int pid = run(id, {"sleep", "1000"}, /*own_pid_ns=*/false);
  ASSERT_GT(pid, 0);
  client_.reset();  // berthd "goes away"
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  std::string record = cfg_.dir + "/exits/" + id + ".json";
  ASSERT_TRUE(eventually(10000, [&] { return pathExists(record); }));

  auto c = ShimClient::connect(cfg_.dir);
  ASSERT_TRUE(c.ok()) << c.status();
  client_ = std::move(c).value();
  EXPECT_EQ(client_->podId(), cfg_.id);
  std::vector<ExitInfo> exits = exitsOf(*client_);
  const ExitInfo* rec = findExit(exits, id);
  ASSERT_NE(rec, nullptr);
  EXPECT_EQ(rec->exit_code, 137);
  EXPECT_EQ(rec->pid, pid);
  ASSERT_TRUE(client_->ackExit(id).ok());
  EXPECT_EQ(findExit(exitsOf(*client_), id), nullptr);
  EXPECT_FALSE(pathExists(record));
  ASSERT_TRUE(client_->remove(id, false).ok());
}

TEST_F(ShimRuncTest, UnknownContainers) {
  std::string id = env_->containerId("ghost");
  auto st = client_->state(id);
  EXPECT_TRUE(absl::IsNotFound(st.status())) << st.status();
  EXPECT_TRUE(absl::IsNotFound(client_->kill(id, SIGTERM, false))) << client_->kill(id, 15, false);
  EXPECT_TRUE(client_->remove(id, false).ok());
  EXPECT_TRUE(client_->remove(id, true).ok());
  EXPECT_TRUE(absl::IsNotFound(client_->wait(id).status()));
  EXPECT_TRUE(client_->ackExit(id).ok());
  EXPECT_TRUE(absl::IsInvalidArgument(client_->start("bad/id")));
}

TEST_F(ShimRuncTest, CreateFailureCarriesRuntimeError) {
  std::string id = env_->containerId("broken");
  std::string bundle = env_->makeBundle(id, {"/no-such-program"});
  auto pid = client_->create({id, bundle});
  ASSERT_FALSE(pid.ok());
  EXPECT_NE(pid.status().message().find("runc create"), absl::string_view::npos) << pid.status();
  EXPECT_NE(pid.status().message().find("no-such-program"), absl::string_view::npos)
      << pid.status();
  EXPECT_TRUE(client_->remove(id, true).ok());
}

TEST_F(ShimRuncTest, DuplicateCreateIsAlreadyExists) {
  std::string id = env_->containerId("dup");
  std::string bundle = env_->makeBundle(id, {"sleep", "1000"});
  ASSERT_TRUE(client_->create({id, bundle}).ok());
  auto again = client_->create({id, bundle});
  EXPECT_TRUE(absl::IsAlreadyExists(again.status())) << again.status();
  EXPECT_TRUE(client_->remove(id, true).ok());
}

TEST_F(ShimRuncTest, WrongProtocolVersionIsRejected) {
  UniqueFd fd = rawConnect(cfg_.dir);
  Json req = makeRequest(5, "ping");
  req["v"] = 2;
  ASSERT_TRUE(writeFrame(fd.get(), req, monotonicMs() + 5000).ok());
  Json reply;
  ASSERT_TRUE(readFrame(fd.get(), &reply, monotonicMs() + 5000).ok());
  EXPECT_EQ(reply["id"], 5);
  EXPECT_EQ(reply["ok"], false);
  EXPECT_EQ(reply["code"], static_cast<int>(Code::kInvalidArgument));
  std::string msg = reply["message"];
  EXPECT_NE(msg.find("version 2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("version 1"), std::string::npos) << msg;
}

TEST_F(ShimRuncTest, SubscribersReceiveExitEvents) {
  UniqueFd fd = rawConnect(cfg_.dir);
  ASSERT_TRUE(writeFrame(fd.get(), makeRequest(1, "subscribe"), monotonicMs() + 5000).ok());
  Json reply;
  ASSERT_TRUE(readFrame(fd.get(), &reply, monotonicMs() + 5000).ok());
  ASSERT_TRUE(replyOutcome(reply).ok());
  std::string id = env_->containerId("event");
  int pid = run(id, {"sh", "-c", "exit 3"});
  ASSERT_GT(pid, 0);
  Json event;
  Outcome r = readFrame(fd.get(), &event, monotonicMs() + 10000);
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(event["event"], "exit");
  EXPECT_EQ(event["container_id"], id);
  EXPECT_EQ(event["exit_code"], 3);
  EXPECT_EQ(event["pid"], pid);
  ASSERT_TRUE(client_->remove(id, false).ok());
}

// Exits carry increasing sequence numbers; a new subscriber first gets every exit not yet
// acknowledged (oldest first); an acknowledgement by number removes only that record.
TEST_F(ShimRuncTest, UnacknowledgedExitsAreReplayedToTheNextSubscriberInOrder) {
  std::string a = env_->containerId("first"), b = env_->containerId("second");
  ASSERT_GT(run(a, {"sh", "-c", "exit 4"}), 0);
  ASSERT_TRUE(eventually(10000, [&] { return findExit(exitsOf(*client_), a) != nullptr; }));
  ASSERT_GT(run(b, {"sh", "-c", "exit 5"}), 0);
  ASSERT_TRUE(eventually(10000, [&] { return findExit(exitsOf(*client_), b) != nullptr; }));
  auto replayed = [&](std::vector<Json>* out, size_t n) {
    auto sub = client_->subscribe();
    ASSERT_TRUE(sub.ok()) << sub.status();
    for (size_t i = 0; i < n; ++i) {
      Json event;
      Outcome r = readFrame(sub->get(), &event, monotonicMs() + 5000);
      ASSERT_TRUE(r.ok()) << r.message;
      out->push_back(event);
    }
    Json more;
    EXPECT_EQ(readFrame(sub->get(), &more, monotonicMs() + 200).code, Code::kDeadlineExceeded)
        << "replayed more than the unacknowledged exits: " << more.dump();
  };
  std::vector<Json> first;
  replayed(&first, 2);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[0]["container_id"], a);
  EXPECT_EQ(first[0]["exit_code"], 4);
  EXPECT_EQ(first[1]["container_id"], b);
  uint64_t seq_a = first[0]["seq"], seq_b = first[1]["seq"];
  EXPECT_GT(seq_a, 0u);
  EXPECT_GT(seq_b, seq_a);
  // An acknowledgement of another number (an older incarnation) keeps the record.
  ASSERT_TRUE(client_->ackExit(a, seq_a + 100).ok());
  ASSERT_TRUE(client_->ackExit(a, seq_a).ok());
  std::vector<Json> second;
  replayed(&second, 1);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0]["container_id"], b);
  EXPECT_EQ(second[0]["seq"], seq_b);
  ASSERT_TRUE(client_->ackExit(b, seq_b).ok());
  EXPECT_TRUE(exitsOf(*client_).empty());
  ASSERT_TRUE(client_->remove(a, false).ok());
  ASSERT_TRUE(client_->remove(b, false).ok());
}

TEST_F(ShimRuncTest, ShimSurvivesItsLauncher) {
  ShimConfig cfg = env_->shimConfig("orphan-pod");
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto c = ShimClient::launch(cfg);
    ::_exit(c.ok() ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

  auto c = ShimClient::connect(cfg.dir);
  ASSERT_TRUE(c.ok()) << c.status();
  int pid = (*c)->pid();
  ASSERT_TRUE(processAlive(pid));
  EXPECT_NE(::getsid(pid), ::getsid(0)) << "the shim must leave the launcher's session";
  EXPECT_NE(::getpgid(pid), ::getpgid(0));
  EXPECT_TRUE((*c)->ping().ok());
  // A second launch into the same directory is refused.
  EXPECT_TRUE(absl::IsAlreadyExists(ShimClient::launch(cfg).status()));
  ASSERT_TRUE((*c)->shutdown().ok());
  EXPECT_TRUE(eventually(5000, [&] { return !processAlive(pid); }));
}

TEST_F(ShimRuncTest, ShutdownKillsContainersAndLeavesNothing) {
  std::string a = env_->containerId("left-a");
  std::string b = env_->containerId("left-b");
  int pid_a = run(a, {"/pause"});
  int pid_b = run(b, {"sleep", "1000"}, /*own_pid_ns=*/false);
  ASSERT_GT(pid_a, 0);
  ASSERT_GT(pid_b, 0);
  int shim_pid = client_->pid();

  ASSERT_TRUE(client_->shutdown().ok());
  EXPECT_FALSE(pathExists(cfg_.dir + "/shim.sock"));
  EXPECT_FALSE(pathExists(cfg_.dir + "/shim.pid"));
  EXPECT_TRUE(eventually(5000, [&] { return !processAlive(shim_pid); }));
  EXPECT_FALSE(processAlive(pid_a));
  EXPECT_FALSE(processAlive(pid_b));
  EXPECT_FALSE(pathExists(env_->runtimeRoot() + "/" + a));
  EXPECT_FALSE(pathExists(env_->runtimeRoot() + "/" + b));
  EXPECT_TRUE(TestEnv::leftoverCgroups(a).empty());
  EXPECT_TRUE(TestEnv::leftoverCgroups(b).empty());
  // The exits of the killed containers were still recorded.
  EXPECT_TRUE(pathExists(cfg_.dir + "/exits/" + a + ".json"));
  EXPECT_TRUE(pathExists(cfg_.dir + "/exits/" + b + ".json"));

  EXPECT_TRUE(client_->shutdown().ok()) << "shutdown must be idempotent";
  EXPECT_TRUE(absl::IsUnavailable(client_->ping()));
  EXPECT_TRUE(absl::IsNotFound(ShimClient::connect(cfg_.dir).status()));
}

TEST_F(ShimRuncTest, ConcurrentCallersShareOneShim) {
  constexpr int kContainers = 4;
  std::vector<std::string> ids;
  for (int i = 0; i < kContainers; ++i) ids.push_back(env_->containerId("par" + std::to_string(i)));
  std::vector<absl::StatusOr<ExitInfo>> results(kContainers, absl::UnknownError("not run"));
  std::vector<std::thread> threads;
  for (int i = 0; i < kContainers; ++i) {
    threads.emplace_back([&, i] {
      std::string bundle = env_->makeBundle(ids[i], {"sh", "-c", "exit " + std::to_string(i + 1)});
      auto pid = client_->create({ids[i], bundle});
      if (!pid.ok()) {
        results[i] = pid.status();
        return;
      }
      absl::Status st = client_->start(ids[i]);
      results[i] = st.ok() ? client_->wait(ids[i]) : absl::StatusOr<ExitInfo>(st);
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kContainers; ++i) {
    ASSERT_TRUE(results[i].ok()) << results[i].status();
    EXPECT_EQ(results[i]->exit_code, i + 1);
    EXPECT_TRUE(client_->remove(ids[i], false).ok());
  }
  EXPECT_EQ(exitsOf(*client_).size(), static_cast<size_t>(kContainers));
}

TEST_F(ShimRuncTest, SigtermStopsAnIdleShimOnly) {
  std::string id = env_->containerId("busy");
  ASSERT_GT(run(id, {"/pause"}), 0);
  int shim_pid = client_->pid();
  ASSERT_EQ(::kill(shim_pid, SIGTERM), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_TRUE(client_->ping().ok()) << "a shim with running containers ignores SIGTERM";
  ASSERT_TRUE(client_->kill(id, SIGKILL, false).ok());
  ASSERT_TRUE(client_->wait(id).ok());
  ASSERT_TRUE(client_->remove(id, false).ok());
  ASSERT_EQ(::kill(shim_pid, SIGTERM), 0);
  EXPECT_TRUE(eventually(5000, [&] { return !processAlive(shim_pid); }));
  EXPECT_FALSE(pathExists(cfg_.dir + "/shim.sock"));
}

}  // namespace
}  // namespace berth::shim
