// Exit and OOM events through TaskEvents, driven by a fake shim behind ShimLink: persisted before
// acknowledged, replays, handler failures, a broken connection, a dead shim, a shutdown.
#include "sandbox/task_events.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/eventually.h"

namespace berth::sandbox {
namespace {

using berth::testing::eventually;

// The shim's side: each subscribe() makes a socket pair and keeps the far end to push frames on.
class FakeShim {
 public:
  ShimLink link() {
    return {.subscribe = [this]() -> absl::StatusOr<UniqueFd> {
              absl::MutexLock lock(&mu_);
              ++subscribes_;
              if (refuse_subscribe_) return absl::UnavailableError("refused");
              int fds[2];
              if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
                return absl::InternalError("socketpair");
              }
              far_.reset(fds[1]);
              for (const auto& e : unacked_oom_) pushLocked(e, "oom");  // the replay
              for (const auto& e : unacked_) pushLocked(e);
              return UniqueFd(fds[0]);
            },
            .ack = [this](const std::string& task, uint64_t seq) -> absl::Status {
              absl::MutexLock lock(&mu_);
              acks_.push_back(task + "#" + std::to_string(seq));
              std::erase_if(unacked_, [&](const shim::ExitRecord& r) {
                return r.container_id == task && r.seq == seq;
              });
              return absl::OkStatus();
            },
            .ack_oom = [this](const std::string& task, uint64_t seq) -> absl::Status {
              absl::MutexLock lock(&mu_);
              acks_.push_back("oom:" + task + "#" + std::to_string(seq));
              std::erase_if(unacked_oom_, [&](const shim::ExitRecord& r) {
                return r.container_id == task && r.seq == seq;
              });
              return absl::OkStatus();
            },
            .gone = [this]() -> absl::StatusOr<bool> {
              ++gone_calls_;
              gone_entered_.store(true);
              release_gone_.WaitForNotificationWithTimeout(absl::Seconds(10));
              absl::MutexLock lock(&mu_);
              if (gone_errors_ > 0) {
                --gone_errors_;
                return absl::InternalError("cannot end the pod's processes");
              }
              return gone_;
            }};
  }
  // Records an exit (as the shim's ExitStore) and pushes it to the subscriber.
  void exit(const std::string& task, int code) {
    absl::MutexLock lock(&mu_);
    shim::ExitRecord r{
        .container_id = task, .pid = 42, .exit_code = code, .exited_at_ns = 1, .seq = ++seq_};
    unacked_.push_back(r);
    pushLocked(r);
  }
  // Records an OOM kill (one unacknowledged record per task, as the shim's) and pushes it.
  void oom(const std::string& task) {
    absl::MutexLock lock(&mu_);
    shim::ExitRecord r{
        .container_id = task, .pid = 42, .exited_at_ns = 1, .oom = true, .seq = ++seq_};
    std::erase_if(unacked_oom_, [&](const shim::ExitRecord& o) { return o.container_id == task; });
    unacked_oom_.push_back(r);
    pushLocked(r, "oom");
  }
  size_t unackedOoms() {
    absl::MutexLock lock(&mu_);
    return unacked_oom_.size();
  }
  void hangUp() {
    absl::MutexLock lock(&mu_);
    far_.reset();
  }
  std::vector<std::string> acks() {
    absl::MutexLock lock(&mu_);
    return acks_;
  }
  int subscribes() {
    absl::MutexLock lock(&mu_);
    return subscribes_;
  }
  void setGone(bool gone, int errors_first = 0) {
    absl::MutexLock lock(&mu_);
    gone_ = gone;
    gone_errors_ = errors_first;
  }
  void releaseGone() { release_gone_.Notify(); }
  std::atomic<int> gone_calls_{0};
  std::atomic<bool> gone_entered_{false};

 private:
  void pushLocked(const shim::ExitRecord& r, const char* kind = "exit")
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    shim::Json ev = shim::exitToJson(r);
    ev["v"] = shim::kProtocolVersion;
    ev["event"] = kind;
    std::string frame;
    ASSERT_TRUE(shim::encodeFrame(ev, &frame).ok());
    if (far_.valid()) {
      ASSERT_EQ(::write(far_.get(), frame.data(), frame.size()), ssize_t(frame.size()));
    }
  }
  absl::Mutex mu_;
  UniqueFd far_ ABSL_GUARDED_BY(mu_);
  std::vector<shim::ExitRecord> unacked_ ABSL_GUARDED_BY(mu_);
  std::vector<shim::ExitRecord> unacked_oom_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> acks_ ABSL_GUARDED_BY(mu_);
  uint64_t seq_ ABSL_GUARDED_BY(mu_) = 0;
  int subscribes_ ABSL_GUARDED_BY(mu_) = 0;
  bool refuse_subscribe_ ABSL_GUARDED_BY(mu_) = false;
  bool gone_ ABSL_GUARDED_BY(mu_) = false;
  int gone_errors_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Notification release_gone_;
};

// What a handler saw, and whether its exit was acknowledged before it returned.
struct Seen {
  absl::Mutex mu;
  std::vector<shim::ExitInfo> exits ABSL_GUARDED_BY(mu);
  std::vector<size_t> acks_before ABSL_GUARDED_BY(mu);
  size_t count() {
    absl::MutexLock lock(&mu);
    return exits.size();
  }
  shim::ExitInfo at(size_t i) {
    absl::MutexLock lock(&mu);
    return exits.at(i);
  }
};

class TaskEventsTest : public ::testing::Test {
 protected:
  TaskEvents::ExitHandler record(Seen& seen, FakeShim& shim) {
    return [&seen, &shim](const shim::ExitInfo& e) {
      absl::MutexLock lock(&seen.mu);
      seen.exits.push_back(e);
      seen.acks_before.push_back(shim.acks().size());
      return absl::OkStatus();
    };
  }
  // A fake shim that lives until the loop has stopped: it must not close its end (an EOF the
  // loop would take for a dead shim) or be called after the test body returned.
  FakeShim& newShim() { return *shims_.emplace_back(std::make_unique<FakeShim>()); }
  // As berthd shuts down: the loop stops before what its work uses goes away.
  void TearDown() override {
    monitor_.stop();
    loop_.stop();
  }

  std::vector<std::unique_ptr<FakeShim>> shims_;  // destroyed after the loop
  events::EventLoop loop_;
  events::BackoffMonitor monitor_{loop_, {.initial = absl::Milliseconds(20)}};
  TaskEvents events_{loop_, monitor_};
};

TEST_F(TaskEventsTest, AnExitIsHandledOnceAndAcknowledgedOnlyAfterItWasPersisted) {
  FakeShim& shim = newShim();
  Seen seen;
  ASSERT_TRUE(events_.open("pod", shim.link()).ok());
  ASSERT_TRUE(events_.watch("pod", "c1", record(seen, shim)).ok());
  EXPECT_TRUE(events_.watching("pod", "c1"));
  shim.exit("c1", 3);
  ASSERT_TRUE(eventually([&] { return shim.acks().size() == 1; }));
  ASSERT_EQ(seen.count(), 1u);
  EXPECT_EQ(seen.at(0).exit_code, 3);
  EXPECT_EQ(seen.at(0).seq, 1u);
  EXPECT_EQ(shim.acks(), std::vector<std::string>{"c1#1"});
  absl::MutexLock lock(&seen.mu);
  EXPECT_EQ(seen.acks_before[0], 0u) << "acknowledged before the handler persisted it";
}

TEST_F(TaskEventsTest, AnExitBeforeTheWatchIsKeptForIt) {
  FakeShim& shim = newShim();
  Seen seen;
  shim.exit("c1", 0);  // recorded while nobody listened: replayed at subscribe
  ASSERT_TRUE(events_.open("pod", shim.link()).ok());
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_TRUE(shim.acks().empty()) << "acknowledged an exit nobody persisted";
  ASSERT_TRUE(events_.watch("pod", "c1", record(seen, shim)).ok());
  ASSERT_TRUE(eventually([&] { return seen.count() == 1; }));
  ASSERT_TRUE(eventually([&] { return shim.acks().size() == 1; }));
}

TEST_F(TaskEventsTest, AFailedHandlerIsNotAcknowledgedAndIsRetried) {
  FakeShim& shim = newShim();
  std::atomic<int> calls{0};
  ASSERT_TRUE(events_.open("pod", shim.link()).ok());
  ASSERT_TRUE(events_
                  .watch("pod", "c1",
                         [&](const shim::ExitInfo&) {
                           return ++calls < 3 ? absl::UnavailableError("disk full")
                                              : absl::OkStatus();
                         })
                  .ok());
  shim.exit("c1", 1);
  ASSERT_TRUE(eventually([&] { return calls >= 1; }));
  EXPECT_TRUE(shim.acks().empty());
  ASSERT_TRUE(eventually([&] { return shim.acks().size() == 1; }));
  EXPECT_EQ(calls, 3);
}

// An OOM kill of a running task: persisted by its handler, then acknowledged; a later kill of
// the same task adds nothing to what is recorded and is acknowledged without the handler.
TEST_F(TaskEventsTest, AnOomKillIsPersistedBeforeItIsAcknowledged) {
  FakeShim& shim = newShim();
  Seen exits, ooms;
  ASSERT_TRUE(events_.open("pod", shim.link()).ok());
  ASSERT_TRUE(events_.watch("pod", "c1", record(exits, shim), record(ooms, shim)).ok());
  shim.oom("c1");
  ASSERT_TRUE(eventually([&] { return shim.acks().size() == 1; }));
  ASSERT_EQ(ooms.count(), 1u);
  EXPECT_TRUE(ooms.at(0).oom);
  EXPECT_EQ(shim.acks(), std::vector<std::string>{"oom:c1#1"});
  {
    absl::MutexLock lock(&ooms.mu);
    EXPECT_EQ(ooms.acks_before[0], 0u) << "acknowledged before the handler persisted it";
  }
  shim.oom("c1");
  ASSERT_TRUE(eventually([&] { return shim.acks().size() == 2; }));
  EXPECT_EQ(shim.acks()[1], "oom:c1#2");
  EXPECT_EQ(ooms.count(), 1u);
  EXPECT_EQ(exits.count(), 0u) << "an OOM kill is no exit";
  EXPECT_EQ(shim.unackedOoms(), 0u);
}

// OOM kills pushed while berthd was away are replayed and kept until the task is watched; a
// failed handler leaves them unacknowledged and is retried; a task watched without an OOM
// handler (the pause) has its OOM kills acknowledged and dropped.
TEST_F(TaskEventsTest, OomKillsAreReplayedRetriedAndDroppedOnlyWhenNobodyRecordsThem) {
  FakeShim& shim = newShim();
  shim.oom("c1");
  shim.oom("pause");
  ASSERT_TRUE(events_.open("pod", shim.link()).ok());
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_TRUE(shim.acks().empty()) << "acknowledged an OOM kill nobody persisted";
  Seen exits;
  ASSERT_TRUE(events_.watch("pod", "pause", record(exits, shim)).ok());
  ASSERT_TRUE(eventually([&] { return shim.acks().size() == 1; }));
  EXPECT_EQ(shim.acks()[0], "oom:pause#2");
  std::atomic<int> calls{0};
  ASSERT_TRUE(events_
                  .watch("pod", "c1", record(exits, shim),
                         [&](const shim::ExitInfo& e) {
                           EXPECT_TRUE(e.oom);
                           return ++calls < 3 ? absl::UnavailableError("disk full")
                                              : absl::OkStatus();
                         })
                  .ok());
  ASSERT_TRUE(eventually([&] { return calls >= 1; }));
  EXPECT_EQ(shim.acks().size(), 1u);
  ASSERT_TRUE(eventually([&] { return shim.acks().size() == 2; }));
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(shim.acks()[1], "oom:c1#1");
  EXPECT_EQ(shim.unackedOoms(), 0u);
}

TEST_F(TaskEventsTest, ABrokenConnectionToALiveShimSubscribesAgainAndGetsTheReplay) {
  FakeShim& shim = newShim();
  shim.setGone(false);
  shim.releaseGone();
  Seen seen;
  ASSERT_TRUE(events_.open("pod", shim.link()).ok());
  ASSERT_TRUE(events_.watch("pod", "c1", record(seen, shim)).ok());
  shim.hangUp();
  ASSERT_TRUE(eventually([&] { return shim.subscribes() == 2; }));
  shim.exit("c1", 7);
  ASSERT_TRUE(eventually([&] { return seen.count() == 1; }));
  EXPECT_EQ(seen.at(0).exit_code, 7);
  // A replay of an exit handled before (its acknowledgement lost) is acknowledged, not handled.
  shim.hangUp();
  ASSERT_TRUE(eventually([&] { return shim.subscribes() == 3; }));
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(seen.count(), 1u);
}

// A dead shim: no exit is reported while its processes may run; once `gone` has ended them,
// every watched task gets an unknown exit, and so does one watched later.
TEST_F(TaskEventsTest, ADeadShimReportsUnknownExitsOnlyAfterItsProcessesAreEnded) {
  FakeShim& shim = newShim();
  shim.setGone(true, /*errors_first=*/1);
  Seen seen;
  ASSERT_TRUE(events_.open("pod", shim.link()).ok());
  ASSERT_TRUE(events_.watch("pod", "pause", record(seen, shim)).ok());
  ASSERT_TRUE(events_.watch("pod", "c1", record(seen, shim)).ok());
  shim.exit("c1", 0);
  ASSERT_TRUE(eventually([&] { return seen.count() == 1; }));
  shim.hangUp();
  ASSERT_TRUE(eventually([&] { return shim.gone_entered_.load(); }));
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(seen.count(), 1u) << "an exit was reported before the processes were ended";
  shim.releaseGone();  // fails once (retried with back-off), then ends them
  ASSERT_TRUE(eventually([&] { return seen.count() == 2; }));
  EXPECT_EQ(shim.gone_calls_, 2);
  EXPECT_EQ(seen.at(1).container_id, "pause");
  EXPECT_EQ(seen.at(1).exit_code, kUnknownExitCode);
  EXPECT_EQ(seen.at(1).pid, 0);
  ASSERT_TRUE(events_.watch("pod", "c2", record(seen, shim)).ok());
  ASSERT_TRUE(eventually([&] { return seen.count() == 3; }));
  EXPECT_EQ(seen.at(2).container_id, "c2");
  EXPECT_EQ(shim.subscribes(), 1);
}

TEST_F(TaskEventsTest, AShimShutDownOnPurposeIsNoDeadShimAndItsLastExitsCount) {
  FakeShim& shim = newShim();
  Seen seen;
  ASSERT_TRUE(events_.open("pod", shim.link()).ok());
  ASSERT_TRUE(events_.watch("pod", "c1", record(seen, shim)).ok());
  events_.ending("pod");
  shim.exit("c1", 137);
  shim.hangUp();
  events_.close("pod");
  ASSERT_TRUE(eventually([&] { return seen.count() == 1; }));
  EXPECT_EQ(seen.at(0).exit_code, 137);
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(shim.gone_calls_, 0);
  EXPECT_FALSE(events_.watching("pod", "c1"));
  EXPECT_FALSE(events_.watch("pod", "c1", record(seen, shim)).ok());
}

// One loop thread for all subscriptions: threads do not grow with pods.
TEST_F(TaskEventsTest, ManyPodsNeedNoThreadEach) {
  Seen seen;
  for (int i = 0; i < 200; ++i) {
    FakeShim& shim = newShim();
    std::string pod = "pod" + std::to_string(i);
    ASSERT_TRUE(events_.open(pod, shim.link()).ok());
    ASSERT_TRUE(events_.watch(pod, "pause", record(seen, shim)).ok());
  }
  EXPECT_LE(loop_.threads(), 2);
  for (auto& s : shims_) s->exit("pause", 0);
  ASSERT_TRUE(eventually([&] { return seen.count() == 200; }));
  EXPECT_LE(loop_.threads(), 33);
  for (int i = 0; i < 200; ++i) events_.close("pod" + std::to_string(i));
}

}  // namespace
}  // namespace berth::sandbox
