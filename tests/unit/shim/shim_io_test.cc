// berth-shim against real runc: CRI logs written by the shim (format, splitting, rotation, while
// no client is connected), a held stdin, execs (output, caps, timeouts, concurrency) and OOM
// detection.
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_split.h"
#include "common/fs.h"
#include "gtest/gtest.h"
#include "shim/protocol.h"
#include "shim/shim_client.h"
#include "test_bundle.h"

namespace berth::shim {
namespace {

using testing::eventually;
using testing::TestEnv;

struct LogLine {
  std::string time, stream, tag, content;
};

std::vector<LogLine> readLog(const std::string& path) {
  std::vector<LogLine> out;
  auto text = readFile(path);
  if (!text.ok()) return out;
  for (absl::string_view l : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    std::vector<std::string> parts = absl::StrSplit(l, absl::MaxSplits(' ', 3));
    if (parts.size() == 3) parts.emplace_back();  // "... F " of an empty line is cut at ' '
    if (parts.size() != 4) {
      out.push_back({"bad", std::string(l), "", ""});
      continue;
    }
    out.push_back({parts[0], parts[1], parts[2], parts[3]});
  }
  return out;
}

std::vector<LogLine> ofStream(const std::vector<LogLine>& lines, const std::string& stream) {
  std::vector<LogLine> out;
  for (const auto& l : lines) {
    if (l.stream == stream) out.push_back(l);
  }
  return out;
}

// Live processes whose command line starts with `prog` and whose cgroup names `container_id`.
int countInContainer(const std::string& prog, const std::string& container_id) {
  int n = 0;
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return -1;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    std::string base = std::string("/proc/") + e->d_name;
    auto cmd = readFile(base + "/cmdline");
    auto cg = readFile(base + "/cgroup");
    if (!cmd.ok() || !cg.ok()) continue;
    if (cmd->compare(0, prog.size() + 1, prog + std::string(1, '\0')) != 0) continue;
    if (cg->find(container_id) == std::string::npos) continue;
    if (testing::processAlive(std::atoi(e->d_name))) ++n;
  }
  ::closedir(d);
  return n;
}

class ShimIoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = testing::runcUnavailableReason();
    if (!why.empty()) GTEST_SKIP() << why;
    env_ = std::make_unique<TestEnv>();
    cfg_ = env_->shimConfig("iopod-" + std::to_string(::getpid()));
    auto c = ShimClient::launch(cfg_);
    ASSERT_TRUE(c.ok()) << c.status();
    client_ = std::move(c).value();
  }
  void TearDown() override {
    client_.reset();
    env_.reset();
  }

  // create (with a CRI log in the bundle dir) + start; returns the init pid.
  int runLogged(const std::string& id, const std::vector<std::string>& args, int max_line = 0,
                bool own_pid_ns = true) {
    std::string bundle = env_->makeBundle(id, args, own_pid_ns);
    CreateOptions o{.container_id = id, .bundle = bundle};
    o.log_path = bundle + "/ctr.log";
    o.max_log_line = max_line;
    auto pid = client_->create(o);
    EXPECT_TRUE(pid.ok()) << pid.status();
    if (!pid.ok()) return 0;
    EXPECT_TRUE(client_->start(id).ok());
    return *pid;
  }
  std::string logOf(const std::string& id) { return env_->root() + "/bundles/" + id + "/ctr.log"; }

  ExecOptions execOf(const std::string& id, const std::string& exec_id,
                     std::vector<std::string> args) {
    ExecOptions o;
    o.container_id = id;
    o.exec_id = exec_id;
    o.args = std::move(args);
    return o;
  }

  std::unique_ptr<TestEnv> env_;
  ShimConfig cfg_;
  std::unique_ptr<ShimClient> client_;
};

TEST_F(ShimIoTest, LogLinesAreInCriFormatAndInBeforeTheExit) {
  std::string id = env_->containerId("log");
  // A 150-byte line with max_log_line 64 → P 64, P 64, F 22; the last line has no newline.
  ASSERT_GT(runLogged(id,
                      {"sh", "-c",
                       "echo out1; echo err1 >&2; x=0123456789; x=$x$x$x$x$x; echo $x$x$x; "
                       "echo; printf 'no newline'"},
                      64),
            0);
  auto w = client_->wait(id);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->exit_code, 0);
  std::vector<LogLine> lines = readLog(logOf(id));
  std::regex ts(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z)");
  for (const auto& l : lines) {
    EXPECT_TRUE(std::regex_match(l.time, ts)) << l.time;
    EXPECT_TRUE(l.tag == "F" || l.tag == "P") << l.tag;
  }
  std::vector<LogLine> out = ofStream(lines, "stdout");
  std::vector<LogLine> err = ofStream(lines, "stderr");
  std::string x5 = "01234567890123456789012345678901234567890123456789";
  std::string x15 = x5 + x5 + x5;
  ASSERT_EQ(out.size(), 6u) << *readFile(logOf(id));
  EXPECT_EQ(out[0].tag + out[0].content, "Fout1");
  EXPECT_EQ(out[1].tag + out[1].content, "P" + x15.substr(0, 64));
  EXPECT_EQ(out[2].tag + out[2].content, "P" + x15.substr(64, 64));
  EXPECT_EQ(out[3].tag + out[3].content, "F" + x15.substr(128));
  EXPECT_EQ(out[4].tag + out[4].content, "F");
  EXPECT_EQ(out[5].tag + out[5].content, "Pno newline");
  ASSERT_EQ(err.size(), 1u);
  EXPECT_EQ(err[0].tag + err[0].content, "Ferr1");
  struct stat st {};
  ASSERT_EQ(::stat(logOf(id).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  ASSERT_TRUE(client_->remove(id, false).ok());
}

TEST_F(ShimIoTest, LogPathNeedsAnExistingDirectory) {
  std::string id = env_->containerId("nolog");
  std::string bundle = env_->makeBundle(id, {"true"});
  CreateOptions o{.container_id = id, .bundle = bundle};
  o.log_path = bundle + "/missing/ctr.log";
  auto pid = client_->create(o);
  EXPECT_TRUE(absl::IsNotFound(pid.status())) << pid.status();
  EXPECT_NE(pid.status().message().find("missing/ctr.log"), absl::string_view::npos);
  o.log_path = "relative.log";
  EXPECT_TRUE(absl::IsInvalidArgument(client_->create(o).status()));
  // Nothing was created: the id is free.
  o.log_path = bundle + "/ctr.log";
  EXPECT_TRUE(client_->create(o).ok());
  EXPECT_TRUE(client_->remove(id, true).ok());
}

TEST_F(ShimIoTest, ReopenLogAfterRotationAndLoggingWithoutClient) {
  std::string id = env_->containerId("rotate");
  ASSERT_GT(runLogged(id, {"sh", "-c",
                           "i=0; while true; do echo line$i; i=$((i+1)); "
                           "sleep 0.05; done"}),
            0);
  std::string log = logOf(id);
  ASSERT_TRUE(eventually(5000, [&] { return readLog(log).size() >= 3; }));
  ASSERT_EQ(::rename(log.c_str(), (log + ".1").c_str()), 0);
  ASSERT_TRUE(client_->reopenLog(id).ok());
  ASSERT_TRUE(eventually(5000, [&] { return readLog(log).size() >= 3; }));

  // berthd "goes away": the shim keeps writing the log.
  client_.reset();
  size_t before = readLog(log).size();
  EXPECT_TRUE(eventually(5000, [&] { return readLog(log).size() >= before + 5; }));
  auto c = ShimClient::connect(cfg_.dir);
  ASSERT_TRUE(c.ok()) << c.status();
  client_ = std::move(c).value();

  ASSERT_TRUE(client_->kill(id, SIGKILL, false).ok());
  ASSERT_TRUE(client_->wait(id).ok());
  std::vector<LogLine> old_lines = readLog(log + ".1");
  std::vector<LogLine> new_lines = readLog(log);
  ASSERT_FALSE(old_lines.empty());
  ASSERT_FALSE(new_lines.empty());
  // The rotated file ends where the new one starts: no line lost or repeated.
  int last_old = std::stoi(old_lines.back().content.substr(4));
  int first_new = std::stoi(new_lines.front().content.substr(4));
  EXPECT_EQ(first_new, last_old + 1);
  EXPECT_TRUE(absl::IsFailedPrecondition(client_->reopenLog(id))) << "not running";
  ASSERT_TRUE(client_->remove(id, false).ok());
  EXPECT_TRUE(absl::IsNotFound(client_->reopenLog(id)));
}

TEST_F(ShimIoTest, ExitWaitsBoundedlyForAGrandchildHoldingTheOutput) {
  std::string id = env_->containerId("holder");
  // Without its own pid namespace the background sleep outlives the init, holding stdout.
  ASSERT_GT(runLogged(id, {"sh", "-c", "sleep 100 & echo bye"}, 0, /*own_pid_ns=*/false), 0);
  auto w = client_->wait(id);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->exit_code, 0);
  std::vector<LogLine> lines = readLog(logOf(id));
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].content, "bye");
  EXPECT_EQ(countInContainer("sleep", id), 1);
  ASSERT_TRUE(client_->remove(id, true).ok());  // kills the sleep
  EXPECT_TRUE(eventually(2000, [&] { return countInContainer("sleep", id) == 0; }));
}

TEST_F(ShimIoTest, StdinIsHeldOpen) {
  std::string id = env_->containerId("stdin");
  std::string bundle = env_->makeBundle(id, {"sh", "-c", "read line; echo got $line"});
  CreateOptions o{.container_id = id, .bundle = bundle};
  o.log_path = bundle + "/ctr.log";
  o.stdin = true;
  ASSERT_TRUE(client_->create(o).ok());
  ASSERT_TRUE(client_->start(id).ok());
  // With /dev/null as stdin `read` would return at once; the shim's pipe keeps it waiting.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto st = client_->state(id);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->status, ProcessStatus::kRunning);
  ASSERT_TRUE(client_->kill(id, SIGKILL, false).ok());
  ASSERT_TRUE(client_->wait(id).ok());
  ASSERT_TRUE(client_->remove(id, false).ok());
}

TEST_F(ShimIoTest, ExecReturnsExitCodeAndOutput) {
  std::string id = env_->containerId("exec");
  ASSERT_GT(runLogged(id, {"/pause"}), 0);
  auto r = client_->exec(execOf(id, "e1", {"sh", "-c", "echo out; echo err >&2; exit 3"}));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->stdout, "out\n");
  EXPECT_EQ(r->stderr, "err\n");
  EXPECT_FALSE(r->truncated);

  // The container's env with the request's laid over it; cwd; user.
  ExecOptions o = execOf(id, "e2",
                         {"sh", "-c",
                          "echo $HOME $FOO; pwd; id -u 2>/dev/null || "
                          "echo $(cat /proc/self/status | grep ^Uid)"});
  o.env = {"FOO=bar", "HOME=/tmp"};
  o.cwd = "/tmp";
  o.user = ExecUser{.uid = 1234, .gid = 1234};
  r = client_->exec(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0) << r->stderr;
  std::vector<std::string> lines = absl::StrSplit(r->stdout, '\n');
  ASSERT_GE(lines.size(), 3u) << r->stdout;
  EXPECT_EQ(lines[0], "/tmp bar");
  EXPECT_EQ(lines[1], "/tmp");
  EXPECT_NE(lines[2].find("1234"), std::string::npos) << lines[2];

  // Binary output survives the trip.
  r = client_->exec(execOf(id, "e3", {"sh", "-c", "printf '\\377\\000\\001'"}));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stdout, std::string("\xff\x00\x01", 3));

  // The exec's files are gone from the shim dir.
  DIR* d = ::opendir(cfg_.dir.c_str());
  ASSERT_NE(d, nullptr);
  while (dirent* e = ::readdir(d)) {
    EXPECT_NE(std::string(e->d_name).rfind("exec-", 0), 0u) << e->d_name;
  }
  ::closedir(d);
  ASSERT_TRUE(client_->kill(id, SIGKILL, false).ok());
  ASSERT_TRUE(client_->wait(id).ok());
  ASSERT_TRUE(client_->remove(id, false).ok());
}

TEST_F(ShimIoTest, ExecOutputIsCapped) {
  std::string id = env_->containerId("cap");
  ASSERT_GT(runLogged(id, {"/pause"}), 0);
  ExecOptions o = execOf(id, "big",
                         {"sh", "-c",
                          "i=0; while [ $i -lt 2000 ]; do echo 0123456789; "
                          "i=$((i+1)); done; echo done >&2"});
  o.output_limit = 1000;
  auto r = client_->exec(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_TRUE(r->truncated);
  EXPECT_EQ(r->stdout.size(), 1000u);
  EXPECT_EQ(r->stdout.substr(0, 22), "0123456789\n0123456789\n");
  EXPECT_EQ(r->stderr, "done\n");

  // Output whose reply exceeds the usual 16 MiB frame limit once base64-encoded.
  r = client_->exec(execOf(id, "huge", {"head", "-c", "14000000", "/dev/zero"}));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_FALSE(r->truncated);
  EXPECT_EQ(r->stdout.size(), 14000000u);
  EXPECT_EQ(r->stdout.find_first_not_of('\0'), std::string::npos);
  ASSERT_TRUE(client_->remove(id, true).ok());
}

TEST_F(ShimIoTest, ExecIsKilledWhenItsRequesterGoesAway) {
  std::string id = env_->containerId("gone");
  ASSERT_GT(runLogged(id, {"/pause"}), 0);
  {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::string path = cfg_.dir + "/shim.sock";
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    ASSERT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    Json req = makeRequest(1, "exec");
    req["container_id"] = id;
    req["exec_id"] = "orphan";
    req["args"] = {"sleep", "100"};
    ASSERT_TRUE(writeFrame(fd.get(), req, monotonicMs() + 5000).ok());
    ASSERT_TRUE(eventually(5000, [&] { return countInContainer("sleep", id) == 1; }));
  }  // berthd "dies" in the middle of the exec
  EXPECT_TRUE(eventually(5000, [&] { return countInContainer("sleep", id) == 0; }));
  ASSERT_TRUE(client_->remove(id, true).ok());
}

TEST_F(ShimIoTest, ExecTimeoutKillsTheProcessTree) {
  std::string id = env_->containerId("timeout");
  ASSERT_GT(runLogged(id, {"/pause"}), 0);
  ExecOptions o = execOf(id, "slow", {"sh", "-c", "sleep 100 & sleep 100; echo never"});
  o.timeout_ms = 500;
  auto start = std::chrono::steady_clock::now();
  auto r = client_->exec(o);
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(absl::IsDeadlineExceeded(r.status())) << r.status();
  EXPECT_NE(r.status().message().find(id), absl::string_view::npos) << r.status();
  EXPECT_NE(r.status().message().find("500 ms"), absl::string_view::npos) << r.status();
  EXPECT_LT(took, std::chrono::seconds(10));
  EXPECT_TRUE(eventually(1000, [&] { return countInContainer("sleep", id) == 0; }))
      << countInContainer("sleep", id) << " sleep processes left";
  EXPECT_EQ(countInContainer("sh", id), 0);
  // The exec id is free again, and the container still works.
  o.args = {"true"};
  auto again = client_->exec(o);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->exit_code, 0);
  ASSERT_TRUE(client_->remove(id, true).ok());
}

TEST_F(ShimIoTest, ConcurrentExecsDoNotBlockTheShim) {
  std::string id = env_->containerId("par");
  ASSERT_GT(runLogged(id, {"/pause"}), 0);
  constexpr int kExecs = 4;
  std::vector<absl::StatusOr<ExecResult>> results(kExecs, absl::UnknownError("not run"));
  std::vector<std::thread> threads;
  for (int i = 0; i < kExecs; ++i) {
    threads.emplace_back([&, i] {
      ExecOptions o =
          execOf(id, "par" + std::to_string(i), {"sh", "-c", "sleep 0.5; echo n=$N; exit $N"});
      o.env = {"N=" + std::to_string(i + 1)};
      results[i] = client_->exec(o);
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  // The loop keeps serving while the execs run.
  EXPECT_TRUE(client_->ping().ok());
  auto st = client_->state(id);
  EXPECT_TRUE(st.ok()) << st.status();
  for (auto& t : threads) t.join();
  for (int i = 0; i < kExecs; ++i) {
    ASSERT_TRUE(results[i].ok()) << results[i].status();
    EXPECT_EQ(results[i]->exit_code, i + 1);
    EXPECT_EQ(results[i]->stdout, "n=" + std::to_string(i + 1) + "\n");
  }
  ASSERT_TRUE(client_->remove(id, true).ok());
}

TEST_F(ShimIoTest, ExecErrors) {
  std::string id = env_->containerId("execerr");
  auto r = client_->exec(execOf(id, "x", {"true"}));
  EXPECT_TRUE(absl::IsNotFound(r.status())) << r.status();
  ASSERT_GT(runLogged(id, {"/pause"}), 0);
  r = client_->exec(execOf(id, "x", {"/no-such-binary"}));
  ASSERT_FALSE(r.ok());
  EXPECT_FALSE(absl::IsNotFound(r.status())) << r.status();
  EXPECT_NE(r.status().message().find("no-such-binary"), absl::string_view::npos) << r.status();
  EXPECT_TRUE(absl::IsInvalidArgument(client_->exec(execOf(id, "bad/id", {"true"})).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(client_->exec(execOf(id, "noargs", {})).status()));
  ASSERT_TRUE(client_->kill(id, SIGKILL, false).ok());
  ASSERT_TRUE(client_->wait(id).ok());
  r = client_->exec(execOf(id, "late", {"true"}));
  EXPECT_TRUE(absl::IsFailedPrecondition(r.status())) << r.status();
  ASSERT_TRUE(client_->remove(id, false).ok());
}

TEST_F(ShimIoTest, OomKillIsReportedAndPlainKillIsNot) {
  std::string id = env_->containerId("oom");
  std::string bundle =
      env_->makeBundle(id, {"sh", "-c", "x=a; while true; do x=$x$x; done"}, true, 32 << 20);
  ASSERT_TRUE(client_->create({id, bundle}).ok());
  ASSERT_TRUE(client_->start(id).ok());
  auto w = client_->wait(id);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->exit_code, 137);
  EXPECT_TRUE(w->oom);
  auto recs = client_->exits();
  ASSERT_TRUE(recs.ok());
  bool found = false;
  for (const auto& e : *recs) found = found || (e.container_id == id && e.oom);
  EXPECT_TRUE(found) << "the durable record says oom too";
  ASSERT_TRUE(client_->remove(id, false).ok());

  std::string plain = env_->containerId("plainkill");
  bundle = env_->makeBundle(plain, {"sleep", "1000"}, true, 32 << 20);
  ASSERT_TRUE(client_->create({plain, bundle}).ok());
  ASSERT_TRUE(client_->start(plain).ok());
  ASSERT_TRUE(client_->kill(plain, SIGKILL, false).ok());
  w = client_->wait(plain);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->exit_code, 137);
  EXPECT_FALSE(w->oom);
  ASSERT_TRUE(client_->remove(plain, false).ok());
}

// A child OOM-killed while the init runs on: an "oom" event at once (durable, replayed to
// the next subscriber until acknowledged by its number), no exit; the init's later exit says
// OOM too (the kill happened in its cgroup).
TEST_F(ShimIoTest, AnOomKillWhileTheContainerRunsIsAnEventReplayedUntilAcknowledged) {
  auto sub = client_->subscribe();
  ASSERT_TRUE(sub.ok()) << sub.status();
  std::string id = env_->containerId("oomchild");
  std::string bundle = env_->makeBundle(
      id, {"sh", "-c", "sh -c 'x=a; while true; do x=$x$x; done'; echo survived; sleep 1000"}, true,
      32 << 20);
  ASSERT_TRUE(client_->create({id, bundle}).ok());
  ASSERT_TRUE(client_->start(id).ok());
  Json event;
  Outcome r = readFrame(sub->get(), &event, monotonicMs() + 30000);
  ASSERT_TRUE(r.ok()) << r.message << "\n" << readFile(cfg_.dir + "/shim.log").value_or("");
  EXPECT_EQ(event["event"], "oom") << event.dump();
  EXPECT_EQ(event["container_id"], id);
  EXPECT_EQ(event["oom"], true);
  uint64_t seq = event["seq"];
  EXPECT_GT(seq, 0u);
  EXPECT_TRUE(std::filesystem::exists(cfg_.dir + "/ooms/" + id + ".json"));
  auto st = client_->state(id);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->status, ProcessStatus::kRunning) << "the init is not what was killed";

  // Not acknowledged: the next subscriber gets it again; acknowledged: forgotten.
  auto again = client_->subscribe();
  ASSERT_TRUE(again.ok()) << again.status();
  Json replay;
  ASSERT_TRUE(readFrame(again->get(), &replay, monotonicMs() + 5000).ok());
  EXPECT_EQ(replay["event"], "oom");
  EXPECT_EQ(replay["seq"], seq);
  ASSERT_TRUE(client_->ackOom(id, seq).ok());
  EXPECT_FALSE(std::filesystem::exists(cfg_.dir + "/ooms/" + id + ".json"));
  auto third = client_->subscribe();
  ASSERT_TRUE(third.ok()) << third.status();
  Json none;
  EXPECT_EQ(readFrame(third->get(), &none, monotonicMs() + 300).code, Code::kDeadlineExceeded)
      << none.dump();

  ASSERT_TRUE(client_->kill(id, SIGKILL, false).ok());
  auto w = client_->wait(id);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_TRUE(w->oom);
  EXPECT_TRUE(absl::IsInvalidArgument(client_->ackOom(id, 0)));
  ASSERT_TRUE(client_->remove(id, false).ok());
}

}  // namespace
}  // namespace berth::shim
