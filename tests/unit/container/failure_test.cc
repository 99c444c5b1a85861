// Failure paths of the container manager, driven through its seams with fakes: the pod's
// monitor behind shim::TaskApi and the pod's controller behind sandbox::Controller (issue 14
// point 9). A shim that dies mid-stop, a shim call that fails while the shim lives, a start
// that fails, a task delete that fails during removal.
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "../common/eventually.h"
#include "../shim/task_stubs.h"
#include "../store/test_util.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "container/container_manager.h"
#include "cri/container_handlers.h"
#include "cri/ready_answers.h"
#include "events/backoff_monitor.h"
#include "events/event_loop.h"
#include "image/content_store.h"
#include "image/image_manager.h"
#include "image/registry_client.h"
#include "image/snapshot.h"
#include "store/store.h"

namespace berth::container {
namespace {

using store::testing::fullContainer;
using store::testing::fullSandbox;
using store::testing::hexId;
using store::testing::TempDir;
using testing::eventually;

// A pod's monitor whose answers the test sets.
class FakeTask final : public shim::testing::TaskStubs<shim::TaskApi> {
 public:
  absl::Status kill_result, start_result, remove_result;
  std::atomic<int> kills{0}, removes{0};
  absl::Notification* start_gate = nullptr;         // start waits for it when set
  std::function<void(const std::string&)> on_kill;  // e.g. the exit the kill causes

  absl::StatusOr<int> create(const shim::CreateOptions&) override { return 42; }
  absl::Status start(const std::string&) override {
    if (start_gate != nullptr) start_gate->WaitForNotification();
    return start_result;
  }
  absl::Status kill(const std::string& id, int, bool) override {
    ++kills;
    if (on_kill) on_kill(id);
    return kill_result;
  }
  absl::Status remove(const std::string&, bool) override {
    ++removes;
    return remove_result;
  }
  absl::StatusOr<shim::RuntimeState> state(const std::string&) override {
    return shim::RuntimeState{.status = shim::ProcessStatus::kRunning, .pid = 42};
  }
  absl::Status ackExit(const std::string&, uint64_t) override { return absl::OkStatus(); }
};

// The pod's controller: hands out the fake monitor, says whether it is gone, and notes the
// container's state when it is asked (nothing may be reported exited before that answer).
class FakeController final : public sandbox::Controller {
 public:
  FakeController(store::Store& store, std::shared_ptr<FakeTask> task)
      : store_(store), task_(std::move(task)) {}
  bool gone = false;
  std::atomic<int> gone_calls{0};
  std::vector<store::ContainerState> states_when_asked;

  absl::Status create(const std::string&, const sandbox::CreateOptions&) override {
    return absl::UnimplementedError("fake");
  }
  absl::StatusOr<sandbox::ControllerInstance> start(const std::string&) override {
    return absl::UnimplementedError("fake");
  }
  absl::StatusOr<sandbox::Platform> platform(const std::string&) override {
    return sandbox::Platform{};
  }
  absl::Status stop(const std::string&, std::optional<absl::Duration>) override {
    return absl::OkStatus();
  }
  absl::StatusOr<sandbox::ExitStatus> wait(const std::string&) override {
    return absl::UnimplementedError("fake");
  }
  absl::StatusOr<sandbox::ControllerStatus> status(const std::string&, bool) override {
    return absl::UnimplementedError("fake");
  }
  absl::Status shutdown(const std::string&) override { return absl::OkStatus(); }
  absl::Status update(const std::string&, const sandbox::SandboxConfig&) override {
    return absl::OkStatus();
  }
  absl::StatusOr<sandbox::TaskContext> taskContext(const std::string&) override {
    return sandbox::TaskContext{.shim = task_};
  }
  absl::StatusOr<bool> monitorGone(const std::string&) override {
    ++gone_calls;
    for (const auto& c : store_.listContainers()) states_when_asked.push_back(c->state);
    return gone;
  }
  absl::Status watchTask(const std::string&, const std::string& id, ExitHandler h,
                         OomHandler oom) override {
    absl::MutexLock lock(&mu);
    handlers[id] = std::move(h);  // exits come from the test (exit()), or not at all
    oom_handlers[id] = std::move(oom);
    return absl::OkStatus();
  }
  // Reports an OOM kill in running container `id`, as the pod's shim would.
  absl::Status oom(const std::string& id) {
    OomHandler h;
    {
      absl::MutexLock lock(&mu);
      auto it = oom_handlers.find(id);
      if (it == oom_handlers.end() || !it->second)
        return absl::NotFoundError(id + " is not watched");
      h = it->second;
    }
    return h(shim::ExitInfo{.container_id = id,
                            .pid = 42,
                            .exited_at_ns = absl::ToUnixNanos(absl::Now()),
                            .oom = true});
  }
  // Reports container `id` exited to its watcher, as the pod's shim would.
  absl::Status exit(const std::string& id, int code) {
    ExitHandler h;
    {
      absl::MutexLock lock(&mu);
      auto it = handlers.find(id);
      if (it == handlers.end()) return absl::NotFoundError(id + " is not watched");
      h = it->second;
    }
    return h(shim::ExitInfo{.container_id = id,
                            .pid = 42,
                            .exit_code = code,
                            .exited_at_ns = absl::ToUnixNanos(absl::Now())});
  }
  absl::Mutex mu;
  std::map<std::string, ExitHandler> handlers ABSL_GUARDED_BY(mu);
  std::map<std::string, OomHandler> oom_handlers ABSL_GUARDED_BY(mu);
  void unwatchTask(const std::string&, const std::string&) override {}
  absl::StatusOr<std::map<std::string, uint64_t>> metrics(const std::string&) override {
    return absl::UnimplementedError("fake");
  }

 private:
  store::Store& store_;
  std::shared_ptr<FakeTask> task_;
};

class ContainerFailureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = *store::Store::open(dir_.file("meta.db"));
    content_ = *image::ContentStore::open(dir_.file("content"));
    snapshots_ = *image::OverlaySnapshotter::open(dir_.file("snapshots"), store_.get());
    registry_ = std::make_unique<image::RegistryClient>(image::RegistryOptions{});
    images_ = std::make_unique<image::ImageManager>(*store_, *content_, *snapshots_, *registry_,
                                                    image::ImageManagerOptions{});
    task_ = std::make_shared<FakeTask>();
    auto controller = std::make_unique<FakeController>(*store_, task_);
    controller_ = controller.get();
    controllers_.add("fake", std::move(controller));
    manager_ = std::make_unique<ContainerManager>(
        *store_, *images_, *snapshots_, controllers_, monitor_,
        ContainerOptions{.containers_dir = dir_.file("containers"),
                         .kill_timeout = absl::Seconds(2)});
    store::SandboxRecord pod = fullSandbox(pod_id_);
    pod.sandboxer = "fake";
    ASSERT_TRUE(store_->reserveName(pod.name, pod.id).ok());
    ASSERT_TRUE(store_->createSandbox(pod).ok());
  }
  // As berthd shuts down: the loop's work (recovery's retries, exit handlers) stops before the
  // manager it calls goes away.
  void TearDown() override {
    monitor_.stop();
    loop_.stop();
  }
  // A container record in `state`, as if created (and started) by the manager.
  std::string addContainer(store::ContainerState state,
                           store::Pending pending = store::Pending::kNone, char id = 'c') {
    store::ContainerRecord c = fullContainer(hexId(id), pod_id_);
    c.name = std::string(1, id) + "_web_0";
    c.state = state;
    c.pending = pending;
    c.task_deleted = false;
    c.rootfs.clear();  // nothing mounted
    c.exit_code = 0;
    c.reason.clear();
    EXPECT_TRUE(store_->reserveName(c.name, c.id).ok());
    EXPECT_TRUE(store_->createContainer(c).ok());
    return c.id;
  }
  store::ContainerPtr record(const std::string& id) { return *store_->getContainer(id); }

  TempDir dir_;
  const std::string pod_id_ = hexId('a');
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<image::ContentStore> content_;
  std::unique_ptr<image::OverlaySnapshotter> snapshots_;
  std::unique_ptr<image::RegistryClient> registry_;
  std::unique_ptr<image::ImageManager> images_;
  std::shared_ptr<FakeTask> task_;
  FakeController* controller_ = nullptr;
  sandbox::ControllerRegistry controllers_;
  events::EventLoop loop_;
  events::BackoffMonitor monitor_{loop_, {.initial = absl::Milliseconds(20)}};
  std::unique_ptr<ContainerManager> manager_;
};

// The shim dies in the middle of a stop: the stop is berthd's. Only once the controller has
// ended the pod's processes (monitorGone true) is the container reported exited, unknown code.
TEST_F(ContainerFailureTest, AShimThatDiesMidStopEndsInAnUnknownExitAfterTheTakeover) {
  std::string id = addContainer(store::ContainerState::kRunning);
  task_->kill_result = absl::UnavailableError("shim of pod a is not reachable");
  task_->remove_result = absl::UnavailableError("shim of pod a is not reachable");
  controller_->gone = true;
  ASSERT_TRUE(manager_->stop(id, absl::ZeroDuration()).ok());
  EXPECT_EQ(controller_->gone_calls, 1);
  ASSERT_EQ(controller_->states_when_asked.size(), 1u);
  EXPECT_EQ(controller_->states_when_asked[0], store::ContainerState::kRunning)
      << "reported exited before the pod's processes were ended";
  store::ContainerPtr r = record(id);
  EXPECT_EQ(r->state, store::ContainerState::kExited);
  EXPECT_EQ(r->exit_code, kUnknownExitCode);
  EXPECT_EQ(r->reason, kReasonUnknown);
}

// A shim call that fails while the shim still answers is no exit: the stop fails, the
// container stays RUNNING (kubelet would start a second copy of one reported exited).
TEST_F(ContainerFailureTest, AFailedCallToALiveShimIsNoExit) {
  std::string id = addContainer(store::ContainerState::kRunning);
  task_->kill_result = absl::UnavailableError("connection reset");
  controller_->gone = false;
  absl::Status st = manager_->stop(id, absl::ZeroDuration());
  EXPECT_TRUE(absl::IsUnavailable(st)) << st;
  EXPECT_EQ(record(id)->state, store::ContainerState::kRunning);
}

// A start the runtime refuses: the container is EXITED with StartError (as containerd), its
// task is deleted, and the error names it.
TEST_F(ContainerFailureTest, AFailedStartIsAStartErrorAndItsTaskIsDeleted) {
  std::string id = addContainer(store::ContainerState::kCreated);
  task_->start_result = absl::InternalError("runc start: exec: \"/nope\": not found");
  absl::Status st = manager_->start(id);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find(id), std::string::npos) << st;
  store::ContainerPtr r = record(id);
  EXPECT_EQ(r->state, store::ContainerState::kExited);
  EXPECT_EQ(r->reason, kReasonStartError);
  EXPECT_EQ(r->exit_code, 128);
  EXPECT_GE(task_->removes, 1);
  EXPECT_TRUE(r->task_deleted);
}

// Removal whose task delete fails stops there: the record stays (not removing any more), for a
// later RemoveContainer to finish; nothing after the failed step ran.
TEST_F(ContainerFailureTest, ARemovalWhoseTaskDeleteFailsKeepsTheRecord) {
  std::string id = addContainer(store::ContainerState::kExited);
  task_->remove_result = absl::InternalError("runc delete: device busy");
  absl::Status st = manager_->remove(id);
  EXPECT_FALSE(st.ok());
  store::ContainerPtr r = record(id);
  EXPECT_EQ(r->pending, store::Pending::kNone);
  EXPECT_FALSE(r->task_deleted);
  task_->remove_result = absl::OkStatus();
  EXPECT_TRUE(manager_->remove(id).ok());
  EXPECT_FALSE(store_->getContainer(id).ok());
}

// An OOM kill reported while the container runs is persisted at once (reason OOMKilled while
// RUNNING, as containerd); the exit keeps it, also when the init itself exits normally. An
// OOM event replayed for an exited or removed container changes nothing and is not an error.
TEST_F(ContainerFailureTest, AnOomKillWhileRunningIsRecordedAndTheExitKeepsIt) {
  std::string id = addContainer(store::ContainerState::kCreated);
  ASSERT_TRUE(manager_->start(id).ok());
  ASSERT_EQ(record(id)->state, store::ContainerState::kRunning);
  EXPECT_EQ(record(id)->reason, "");
  ASSERT_TRUE(controller_->oom(id).ok());
  EXPECT_EQ(record(id)->state, store::ContainerState::kRunning);
  EXPECT_EQ(record(id)->reason, kReasonOomKilled);
  ASSERT_TRUE(controller_->oom(id).ok());  // a second kill: the same

  ASSERT_TRUE(controller_->exit(id, 0).ok());
  store::ContainerPtr r = record(id);
  EXPECT_EQ(r->state, store::ContainerState::kExited);
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->reason, kReasonOomKilled);
  ASSERT_TRUE(controller_->oom(id).ok());  // replayed after the exit
  EXPECT_EQ(record(id)->reason, kReasonOomKilled);

  ASSERT_TRUE(manager_->remove(id).ok());
  EXPECT_TRUE(controller_->oom(id).ok()) << "an OOM event of a removed container";
}

// A start in progress is in the record (persisted: recovery sees it): a second start and an
// update are refused naming it, a removal waits for it to end, then stops and removes.
TEST_F(ContainerFailureTest, AStartInProgressIsPendingAndOthersAreRefusedOrWait) {
  std::string id = addContainer(store::ContainerState::kCreated);
  absl::Notification gate;
  task_->start_gate = &gate;
  task_->on_kill = [this](const std::string& killed) { (void)controller_->exit(killed, 137); };
  absl::Status started;
  std::thread starter([&] { started = manager_->start(id); });
  ASSERT_TRUE(eventually([&] { return record(id)->pending == store::Pending::kStarting; }));

  absl::Status again = manager_->start(id);
  EXPECT_TRUE(absl::IsFailedPrecondition(again)) << again;
  EXPECT_NE(again.message().find("is starting"), std::string::npos) << again;
  absl::Status update = manager_->updateResources(id, {}, "");
  EXPECT_TRUE(absl::IsFailedPrecondition(update)) << update;
  std::atomic<bool> removed{false};
  absl::Status remove_st;
  std::thread remover([&] {
    remove_st = manager_->remove(id);
    removed = true;
  });
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_FALSE(removed) << "the removal did not wait for the start";
  EXPECT_EQ(task_->kills, 0);

  gate.Notify();
  starter.join();
  remover.join();
  EXPECT_TRUE(started.ok()) << started;
  EXPECT_TRUE(remove_st.ok()) << remove_st;
  EXPECT_EQ(task_->kills, 1);  // what the start started was stopped
  EXPECT_FALSE(store_->getContainer(id).ok());
}

// StopPodSandbox and RemovePodSandbox handle a pod's containers all at once: each kill is held
// until all three are in one, which a stop of one container after another would never reach.
TEST_F(ContainerFailureTest, APodsContainersAreStoppedAndRemovedAtOnce) {
  std::vector<std::string> ids = {
      addContainer(store::ContainerState::kRunning, store::Pending::kNone, 'x'),
      addContainer(store::ContainerState::kRunning, store::Pending::kNone, 'y'),
      addContainer(store::ContainerState::kRunning, store::Pending::kNone, 'z')};
  ASSERT_TRUE(manager_->recover().ok());  // watches their exits
  std::atomic<int> in_kill{0}, most{0};
  task_->on_kill = [&](const std::string& id) {
    int now = ++in_kill;
    for (int seen = most.load(); now > seen && !most.compare_exchange_weak(seen, now);) {
    }
    for (int i = 0; i < 200 && in_kill.load() < 3; ++i) absl::SleepFor(absl::Milliseconds(10));
    (void)controller_->exit(id, 137);
  };
  cri::ReadyAnswers answers(*store_);
  cri::ContainerHandlers handlers(*store_, *images_, *manager_, answers);
  ASSERT_TRUE(handlers.stopAll(pod_id_).ok());
  EXPECT_EQ(most.load(), 3) << "the containers were not stopped at once";
  for (const auto& id : ids) EXPECT_EQ(record(id)->state, store::ContainerState::kExited);
  ASSERT_TRUE(handlers.removeAll(pod_id_).ok());
  EXPECT_TRUE(store_->listContainers(pod_id_).empty());
}

// After a crash, recovery finishes what was cut off: a stop (the container is killed and its
// exit recorded), a creation never acknowledged (undone: removed), a removal (finished), a
// start the runtime did (RUNNING) and an update (cleared).
TEST_F(ContainerFailureTest, RecoveryFinishesOrUndoesWhatACrashCutOff) {
  std::string stopping =
      addContainer(store::ContainerState::kRunning, store::Pending::kStopping, 's');
  std::string creating =
      addContainer(store::ContainerState::kCreated, store::Pending::kCreating, 'n');
  std::string removing =
      addContainer(store::ContainerState::kExited, store::Pending::kRemoving, 'r');
  std::string starting =
      addContainer(store::ContainerState::kCreated, store::Pending::kStarting, 't');
  std::string updating =
      addContainer(store::ContainerState::kRunning, store::Pending::kUpdating, 'u');
  task_->on_kill = [this, stopping](const std::string& killed) {
    if (killed == stopping) (void)controller_->exit(killed, 137);
  };
  ASSERT_TRUE(manager_->recover().ok());

  EXPECT_TRUE(eventually([&] {
    auto r = record(stopping);
    return r->state == store::ContainerState::kExited && r->pending == store::Pending::kNone;
  })) << store::toString(record(stopping)->state);
  EXPECT_EQ(record(stopping)->exit_code, 137);
  EXPECT_TRUE(eventually([&] {
    return !store_->getContainer(creating).ok() && !store_->getContainer(removing).ok();
  }));
  EXPECT_FALSE(store_->nameOwner("n_web_0").ok()) << "the undone creation keeps its name";
  // The fake shim says the task runs: the start happened before the crash.
  EXPECT_EQ(record(starting)->state, store::ContainerState::kRunning);
  EXPECT_EQ(record(starting)->pending, store::Pending::kNone);
  EXPECT_EQ(record(updating)->pending, store::Pending::kNone);
  EXPECT_EQ(record(updating)->state, store::ContainerState::kRunning);
}

}  // namespace
}  // namespace berth::container
