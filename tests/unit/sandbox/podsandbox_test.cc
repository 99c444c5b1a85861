// Failure paths of the podsandbox controller, driven through its seam with fake shims
// (shim::ShimLauncher / shim::PodShim, issue 14 point 9): a shim that dies while the pod runs
// or in the middle of a stop, a takeover whose runtime delete fails, a shim launch that fails,
// and restarts after a crash between two steps. The store, pod files, bundle and takeover are
// real; the OCI runtime is a script that logs its arguments.
#include "sandbox/podsandbox.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "../common/eventually.h"
#include "../shim/task_stubs.h"
#include "../store/test_util.h"
#include "absl/synchronization/mutex.h"
#include "common/fs.h"
#include "common/status.h"
#include "events/backoff_monitor.h"
#include "events/event_loop.h"
#include "image/content_store.h"
#include "image/image_manager.h"
#include "image/registry_client.h"
#include "image/snapshot.h"
#include "store/store.h"

namespace berth::sandbox {
namespace {

using store::testing::hexId;
using store::testing::TempDir;
using testing::eventually;

// What the pod's fake monitor knows; shared by every client of it (launch and connect).
class FakeMonitor {
 public:
  absl::Mutex mu;
  bool alive ABSL_GUARDED_BY(mu) = false;
  bool launch_fails ABSL_GUARDED_BY(mu) = false;
  bool die_on_kill ABSL_GUARDED_BY(mu) = false;  // a shim that dies under a kill call
  std::map<std::string, shim::ProcessStatus> tasks ABSL_GUARDED_BY(mu);
  std::vector<shim::ExitRecord> unacked ABSL_GUARDED_BY(mu);
  uint64_t seq ABSL_GUARDED_BY(mu) = 0;
  UniqueFd far ABSL_GUARDED_BY(mu);  // the far end of the subscription
  int shutdowns ABSL_GUARDED_BY(mu) = 0;

  // kill -9 of the shim: its connections end, it answers nothing more.
  void die() {
    absl::MutexLock lock(&mu);
    dieLocked();
  }
  void dieLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    alive = false;
    far.reset();
  }
  // The task exits (recorded, then pushed to the subscriber).
  void exitLocked(const std::string& task, int code) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    tasks[task] = shim::ProcessStatus::kStopped;
    shim::ExitRecord r{
        .container_id = task, .pid = 4243, .exit_code = code, .exited_at_ns = 1, .seq = ++seq};
    unacked.push_back(r);
    push(r);
  }
  void push(const shim::ExitRecord& r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    shim::Json ev = shim::exitToJson(r);
    ev["v"] = shim::kProtocolVersion;
    ev["event"] = "exit";
    std::string frame;
    ASSERT_TRUE(shim::encodeFrame(ev, &frame).ok());
    // No SIGPIPE when the subscriber is gone (berthd "crashed"): the record stays for a replay.
    if (far.valid()) (void)::send(far.get(), frame.data(), frame.size(), MSG_NOSIGNAL);
  }
};

class FakePodShim final : public shim::testing::TaskStubs<shim::PodShim> {
 public:
  FakePodShim(FakeMonitor& m, std::string dir) : m_(m), dir_(std::move(dir)) {}

  int pid() const override { return 4242; }
  const std::string& dir() const override { return dir_; }
  absl::StatusOr<int> create(const shim::CreateOptions& o) override {
    absl::MutexLock lock(&m_.mu);
    BERTH_RETURN_IF_ERROR(alive());
    m_.tasks[o.container_id] =
        o.start ? shim::ProcessStatus::kRunning : shim::ProcessStatus::kCreated;
    return 4243;
  }
  absl::Status start(const std::string& id) override {
    absl::MutexLock lock(&m_.mu);
    BERTH_RETURN_IF_ERROR(alive());
    m_.tasks[id] = shim::ProcessStatus::kRunning;
    return absl::OkStatus();
  }
  absl::Status kill(const std::string& id, int signal, bool) override {
    absl::MutexLock lock(&m_.mu);
    BERTH_RETURN_IF_ERROR(alive());
    if (m_.die_on_kill) {
      m_.dieLocked();
      return absl::UnavailableError("the shim of the pod is not reachable: connection reset");
    }
    auto it = m_.tasks.find(id);
    if (it == m_.tasks.end()) return absl::NotFoundError("container " + id + " does not exist");
    if (it->second == shim::ProcessStatus::kRunning) m_.exitLocked(id, 128 + signal);
    return absl::OkStatus();
  }
  absl::Status remove(const std::string& id, bool) override {
    absl::MutexLock lock(&m_.mu);
    BERTH_RETURN_IF_ERROR(alive());
    m_.tasks.erase(id);
    return absl::OkStatus();
  }
  absl::StatusOr<shim::RuntimeState> state(const std::string& id) override {
    absl::MutexLock lock(&m_.mu);
    BERTH_RETURN_IF_ERROR(alive());
    auto it = m_.tasks.find(id);
    if (it == m_.tasks.end()) return absl::NotFoundError("container " + id + " does not exist");
    return shim::RuntimeState{.status = it->second, .pid = 4243};
  }
  absl::Status ackExit(const std::string& id, uint64_t seq) override {
    absl::MutexLock lock(&m_.mu);
    BERTH_RETURN_IF_ERROR(alive());
    std::erase_if(m_.unacked, [&](const shim::ExitRecord& r) {
      return r.container_id == id && (seq == 0 || r.seq == seq);
    });
    return absl::OkStatus();
  }
  absl::StatusOr<UniqueFd> subscribe() override {
    absl::MutexLock lock(&m_.mu);
    BERTH_RETURN_IF_ERROR(alive());
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
      return absl::InternalError("socketpair");
    }
    m_.far.reset(fds[1]);
    for (const auto& r : m_.unacked) m_.push(r);  // the replay
    return UniqueFd(fds[0]);
  }
  absl::Status ackOom(const std::string&, uint64_t) override { return absl::OkStatus(); }
  absl::StatusOr<std::vector<shim::ExitInfo>> exits() override {
    absl::MutexLock lock(&m_.mu);
    BERTH_RETURN_IF_ERROR(alive());
    return m_.unacked;
  }
  absl::Status shutdown() override {
    absl::MutexLock lock(&m_.mu);
    if (!m_.alive) return absl::OkStatus();  // gone already
    ++m_.shutdowns;
    for (auto& [task, st] : m_.tasks) {
      if (st == shim::ProcessStatus::kRunning) m_.exitLocked(task, 137);
    }
    m_.tasks.clear();
    m_.dieLocked();
    return absl::OkStatus();
  }
  void close() override {}

 private:
  absl::Status alive() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(m_.mu) {
    return m_.alive ? absl::OkStatus()
                    : absl::UnavailableError("the shim of the pod is not reachable");
  }
  FakeMonitor& m_;
  const std::string dir_;
};

class FakeLauncher final : public shim::ShimLauncher {
 public:
  explicit FakeLauncher(FakeMonitor& m) : m_(m) {}
  absl::StatusOr<std::unique_ptr<shim::PodShim>> launch(const shim::ShimConfig& cfg) override {
    absl::MutexLock lock(&m_.mu);
    if (m_.launch_fails) return absl::InternalError("berth-shim exited with status 1");
    m_.alive = true;
    return std::make_unique<FakePodShim>(m_, cfg.dir);
  }
  absl::StatusOr<std::unique_ptr<shim::PodShim>> connect(const std::string& dir) override {
    absl::MutexLock lock(&m_.mu);
    if (!m_.alive) return absl::NotFoundError("no shim socket in " + dir);
    return std::make_unique<FakePodShim>(m_, dir);
  }

 private:
  FakeMonitor& m_;
};

class PodSandboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = *store::Store::open(dir_.file("meta.db"));
    content_ = *image::ContentStore::open(dir_.file("content"));
    snapshots_ = *image::OverlaySnapshotter::open(dir_.file("snapshots"), store_.get());
    registry_ = std::make_unique<image::RegistryClient>(image::RegistryOptions{});
    images_ = std::make_unique<image::ImageManager>(*store_, *content_, *snapshots_, *registry_,
                                                    image::ImageManagerOptions{});
    std::filesystem::create_directories(dir_.file("pause-rootfs"));
    std::filesystem::create_directories(dir_.file("runc"));
    // The OCI runtime: logs "<args>" and removes nothing (the runtime root has no state unless
    // a test puts some there).
    runtime_ = dir_.file("fake-runc");
    std::ofstream(runtime_) << "#!/bin/sh\necho \"$@\" >> " << dir_.file("runtime.log") << "\n";
    std::filesystem::permissions(runtime_, std::filesystem::perms::owner_all);
    makeController();
  }
  void TearDown() override { down(); }
  // berthd goes down: its loop stops first, then the controller goes.
  void down() {
    if (monitor_) monitor_->stop();
    if (loop_) loop_->stop();
    controller_.reset();
    monitor_.reset();
    loop_.reset();
  }
  // A new controller on the same store and folders: what a berthd restart makes.
  void makeController() {
    down();
    loop_ = std::make_unique<events::EventLoop>();
    monitor_ = std::make_unique<events::BackoffMonitor>(
        *loop_, events::BackoffPolicy{.initial = absl::Milliseconds(20)});
    PodSandboxOptions opts{
        .pods_dir = dir_.file("pods"),
        .shim_binary = "/nonexistent/berth-shim",
        .pause_rootfs = dir_.file("pause-rootfs"),
        .cgroup_parent = "/berth-unit-" + std::to_string(::getpid()),
        .runtimes = {{"runc", {runtime_, dir_.file("runc"), "io.containerd.runc.v2"}}},
        .default_handler = "runc",
        .shims = std::make_shared<FakeLauncher>(shim_)};
    controller_ = std::make_unique<PodSandboxController>(*store_, *images_, *snapshots_, *loop_,
                                                         *monitor_, opts);
  }
  // A pod record as RunPodSandbox makes it before the controller's create.
  std::string addPod(char id_char = 'p') {
    store::SandboxRecord r;
    r.id = hexId(id_char);
    r.metadata = {"web", "uid-web", "default", 0};
    r.name = std::string("web") + id_char + "_default_uid-web_0";
    r.state = store::SandboxState::kCreated;
    r.runtime_handler = "runc";
    r.sandboxer = "podsandbox";
    r.created_at_ns = 1;
    EXPECT_TRUE(store_->reserveName(r.name, r.id).ok());
    EXPECT_TRUE(store_->createSandbox(r).ok());
    return r.id;
  }
  CreateOptions options() const {
    CreateOptions o;
    o.config.name = "web";
    o.config.ns = "default";
    o.config.uid = "uid-web";
    o.config.hostname = "web";
    o.config.network = NamespaceMode::kNode;
    o.config.ipc = NamespaceMode::kNode;  // no shm mount
    o.config.pid = NamespaceMode::kPod;
    return o;
  }
  // create + start; the pod is READY.
  std::string runPod() {
    std::string id = addPod();
    absl::Status created = controller_->create(id, options());
    EXPECT_TRUE(created.ok()) << created;
    auto started = controller_->start(id);
    EXPECT_TRUE(started.ok()) << started.status();
    return id;
  }
  store::SandboxPtr record(const std::string& id) { return *store_->getSandbox(id); }
  std::string runtimeLog() { return readFile(dir_.file("runtime.log")).value_or(""); }

  TempDir dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<image::ContentStore> content_;
  std::unique_ptr<image::OverlaySnapshotter> snapshots_;
  std::unique_ptr<image::RegistryClient> registry_;
  std::unique_ptr<image::ImageManager> images_;
  std::string runtime_;
  FakeMonitor shim_;
  std::unique_ptr<events::EventLoop> loop_;
  std::unique_ptr<events::BackoffMonitor> monitor_;
  std::unique_ptr<PodSandboxController> controller_;
};

// The shim dies while the pod runs: berthd ends the pod (runtime delete of the pause) and only
// then records it NOTREADY with an unknown exit; stop and shutdown work without a shim.
TEST_F(PodSandboxTest, ADeadShimIsTakenOverBeforeThePodIsReportedExited) {
  std::string id = runPod();
  ASSERT_EQ(record(id)->state, store::SandboxState::kReady);
  shim_.die();
  ASSERT_TRUE(eventually([&] { return record(id)->state == store::SandboxState::kNotReady; }));
  EXPECT_EQ(record(id)->exit_code, 255);
  EXPECT_NE(runtimeLog().find("delete --force " + id), std::string::npos) << runtimeLog();
  EXPECT_TRUE(controller_->stop(id, absl::ZeroDuration()).ok());
  EXPECT_TRUE(controller_->shutdown(id).ok());
  EXPECT_FALSE(std::filesystem::exists(dir_.file("pods/" + id)));
}

// A takeover that cannot end the pod (the runtime keeps its state) reports no exit: the pod is
// not said to have stopped while it may run. Retried with back-off, it ends once it succeeds.
TEST_F(PodSandboxTest, ATakeoverThatFailsReportsNoExitUntilItSucceeds) {
  std::string id = runPod();
  std::filesystem::create_directories(dir_.file("runc/" + id));  // runc state it cannot delete
  shim_.die();
  ASSERT_TRUE(
      eventually([&] { return runtimeLog().find("delete --force " + id) != std::string::npos; }));
  absl::SleepFor(absl::Milliseconds(150));
  EXPECT_EQ(record(id)->state, store::SandboxState::kReady) << "an exit before the pod ended";
  std::filesystem::remove(dir_.file("runc/" + id));
  ASSERT_TRUE(eventually([&] { return record(id)->state == store::SandboxState::kNotReady; }));
  EXPECT_EQ(record(id)->exit_code, 255);
}

// The shim dies under the stop's kill: the stop is berthd's, it succeeds once the takeover
// has ended the pod, and the exit is the takeover's.
TEST_F(PodSandboxTest, AShimThatDiesMidStopStillStopsThePod) {
  std::string id = runPod();
  {
    absl::MutexLock lock(&shim_.mu);
    shim_.die_on_kill = true;
  }
  absl::Status st = controller_->stop(id, absl::ZeroDuration());
  EXPECT_TRUE(st.ok()) << st;
  EXPECT_EQ(record(id)->state, store::SandboxState::kNotReady);
  EXPECT_EQ(record(id)->exit_code, 255);
  EXPECT_NE(runtimeLog().find("delete --force " + id), std::string::npos) << runtimeLog();
  EXPECT_TRUE(controller_->shutdown(id).ok());
}

// A shim launch that fails: create fails naming the pod, and the record already names what
// was made (the intent), so shutdown finds and removes it.
TEST_F(PodSandboxTest, AFailedLaunchLeavesWhatWasMadeReachableForShutdown) {
  std::string id = addPod();
  {
    absl::MutexLock lock(&shim_.mu);
    shim_.launch_fails = true;
  }
  absl::Status st = controller_->create(id, options());
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find(id), std::string::npos) << st;
  store::SandboxPtr r = record(id);
  EXPECT_EQ(r->shim_dir, dir_.file("pods/" + id + "/shim"));
  EXPECT_EQ(r->bundle_dir, dir_.file("pods/" + id + "/bundle"));
  EXPECT_TRUE(std::filesystem::exists(dir_.file("pods/" + id + "/resolv.conf")));
  EXPECT_TRUE(controller_->shutdown(id).ok());
  EXPECT_FALSE(std::filesystem::exists(dir_.file("pods/" + id)));
}

// The shim starts while the pod's files are written: when the files fail, the shim that was
// launched meanwhile is still the pod's, and shutdown ends it; the record named the spec
// (the pause's cgroup) before anything was made.
TEST_F(PodSandboxTest, FilesThatFailLeaveTheLaunchedShimToShutdown) {
  std::string id = addPod();
  // resolv.conf cannot be written: a directory with something in it stands in its way.
  std::filesystem::create_directories(dir_.file("pods/" + id + "/resolv.conf/x"));
  absl::Status st = controller_->create(id, options());
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("resolv.conf"), std::string::npos) << st;
  EXPECT_FALSE(record(id)->spec_json.empty());
  {
    absl::MutexLock lock(&shim_.mu);
    EXPECT_TRUE(shim_.alive) << "the shim was never launched";
  }
  EXPECT_TRUE(controller_->shutdown(id).ok());
  absl::MutexLock lock(&shim_.mu);
  EXPECT_EQ(shim_.shutdowns, 1);
  EXPECT_FALSE(shim_.alive);
}

// berthd crashed between create and start (the shim runs, the pause was never created): the
// restarted controller finds the pod unusable but stoppable; stop records an unknown exit
// instead of waiting for one nothing will send, and shutdown ends the shim.
TEST_F(PodSandboxTest, ACrashBetweenCreateAndStartLeavesAStoppablePod) {
  std::string id = addPod();
  ASSERT_TRUE(controller_->create(id, options()).ok());
  makeController();  // the crash: a new controller on the same store, the shim still runs
  ASSERT_TRUE(controller_->recover().ok());
  EXPECT_EQ(record(id)->state, store::SandboxState::kUnknown);
  absl::Status st = controller_->stop(id, absl::ZeroDuration());
  EXPECT_TRUE(st.ok()) << st;
  EXPECT_TRUE(controller_->shutdown(id).ok());
  absl::MutexLock lock(&shim_.mu);
  EXPECT_EQ(shim_.shutdowns, 1);
  EXPECT_FALSE(shim_.alive);
}

// The shim died while berthd was down: recovery takes the pod over at start-up and records it
// NOTREADY; a pod whose pause exited meanwhile gets its real exit from the replay.
TEST_F(PodSandboxTest, RecoveryTakesOverADeadShimAndReplaysAnExitRecordedMeanwhile) {
  std::string id = runPod();
  down();
  {
    absl::MutexLock lock(&shim_.mu);
    shim_.far.reset();
    shim_.exitLocked(id, 2);  // the pause exits while berthd is down
  }
  makeController();
  ASSERT_TRUE(controller_->recover().ok());
  ASSERT_TRUE(eventually([&] { return record(id)->state == store::SandboxState::kNotReady; }));
  EXPECT_EQ(record(id)->exit_code, 2);
  ASSERT_TRUE(controller_->shutdown(id).ok());

  std::string other = addPod('q');
  ASSERT_TRUE(controller_->create(other, options()).ok());
  ASSERT_TRUE(controller_->start(other).ok());
  down();       // berthd down
  shim_.die();  // and the shim killed meanwhile
  makeController();
  ASSERT_TRUE(controller_->recover().ok());
  EXPECT_EQ(record(other)->state, store::SandboxState::kNotReady);
  EXPECT_EQ(record(other)->exit_code, 255);
  EXPECT_NE(runtimeLog().find("delete --force " + other), std::string::npos) << runtimeLog();
  EXPECT_TRUE(controller_->shutdown(other).ok());
}

// RunPodSandbox sets the pod network up while the controller starts the pause (issue 15,
// point 3): the pod stays Creating (unlisted) until both are recorded, whichever write comes
// last ends it; recovery of a pause started but not recorded ends it only with the network.
TEST_F(PodSandboxTest, APodIsMadeOnlyOnceItsNetworkIsRecordedToo) {
  auto create = [&](char c, bool network_recorded) {
    std::string id = addPod(c);
    EXPECT_TRUE(store_
                    ->updateSandbox(id,
                                    [&](store::SandboxRecord& r) {
                                      r.pending = store::Pending::kCreating;
                                      r.netns_path = dir_.file("netns-" + id);
                                      if (network_recorded) r.cni_result_json = "{}";
                                      return absl::OkStatus();
                                    })
                    .ok());
    CreateOptions o = options();
    o.config.network = NamespaceMode::kPod;
    o.netns_path = dir_.file("netns-" + id);
    EXPECT_TRUE(controller_->create(id, o).ok());
    return id;
  };
  auto start = [&](const std::string& id) {
    EXPECT_TRUE(controller_->start(id).ok());
    EXPECT_EQ(record(id)->state, store::SandboxState::kReady);
    return record(id)->pending;
  };
  // berthd died after the shim started the pause, before it recorded that.
  auto started_then_crashed = [&](const std::string& id) {
    {
      absl::MutexLock lock(&shim_.mu);
      shim_.tasks[id] = shim::ProcessStatus::kRunning;
    }
    makeController();
    EXPECT_TRUE(controller_->recover().ok());
    EXPECT_EQ(record(id)->state, store::SandboxState::kReady);
    return record(id)->pending;
  };
  std::string id = create('a', false);
  EXPECT_EQ(start(id), store::Pending::kCreating) << "made before its network";
  EXPECT_TRUE(controller_->shutdown(id).ok());
  id = create('b', true);
  EXPECT_EQ(start(id), store::Pending::kNone);
  EXPECT_TRUE(controller_->shutdown(id).ok());
  id = create('c', false);
  EXPECT_EQ(started_then_crashed(id), store::Pending::kCreating)
      << "recovery made whole a pod whose network was never recorded";
  EXPECT_TRUE(controller_->shutdown(id).ok());
  id = create('d', true);
  EXPECT_EQ(started_then_crashed(id), store::Pending::kNone);
  EXPECT_TRUE(controller_->shutdown(id).ok());
}

}  // namespace
}  // namespace berth::sandbox
