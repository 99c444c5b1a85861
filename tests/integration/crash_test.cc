// berthd killed at every named crash point of the pod operations (BERTH_CRASH_AT), restarted:
// what was acknowledged is still there, everything can be stopped and removed in bounded time,
// and afterwards nothing is left on the host (issue 14).
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "berthd_fixture.h"
#include "common/crash_point.h"
#include "cri_calls.h"
#include "event_recorder.h"
#include "leftovers.h"
#include "nlohmann/json.hpp"
#include "test_env.h"

namespace berth::testing {
namespace {

enum class Op {
  kRunPod,
  kStopPod,
  kRemovePod,
  kCreateContainer,
  kStartContainer,
  kStopContainer,
  kRemoveContainer,
  kPullImage,
  kRemoveImage,
  kCheckpoint
};

struct CrashCase {
  const char* point;
  Op op;
  // The pod has a user namespace of its own and its container an idmapped volume.
  bool userns = false;
};

// Every crash point and the call that reaches it.
const std::vector<CrashCase>& crashCases() {
  static const std::vector<CrashCase> cases = {
      {"pod.run.after_record", Op::kRunPod},
      {"pod.run.after_netns", Op::kRunPod},
      {"pod.run.after_cni_add", Op::kRunPod},
      {"pod.run.after_cni_record", Op::kRunPod},
      {"sandbox.create.after_pod_files", Op::kRunPod},
      {"sandbox.create.after_shim", Op::kRunPod},
      {"sandbox.start.after_start", Op::kRunPod},
      {"pod.run.before_reply", Op::kRunPod},
      {"pod.stop.after_intent", Op::kStopPod},
      {"pod.stop.after_containers", Op::kStopPod},
      {"pod.stop.after_sandbox", Op::kStopPod},
      {"pod.stop.after_cni_del", Op::kStopPod},
      {"pod.stop.after_netns", Op::kStopPod},
      {"pod.remove.after_intent", Op::kRemovePod},
      {"pod.remove.after_stop", Op::kRemovePod},
      {"pod.remove.after_containers", Op::kRemovePod},
      {"sandbox.shutdown.after_shim", Op::kRemovePod},
      {"sandbox.shutdown.after_unmount", Op::kRemovePod},
      {"pod.remove.after_shutdown", Op::kRemovePod},
      {"pod.remove.after_record", Op::kRemovePod},
      {"container.create.after_name", Op::kCreateContainer},
      {"container.create.after_rootfs", Op::kCreateContainer},
      {"container.create.after_image_volumes", Op::kCreateContainer},
      {"container.create.after_record", Op::kCreateContainer},
      {"container.create.after_task", Op::kCreateContainer},
      {"container.start.before_start", Op::kStartContainer},
      {"container.start.after_start", Op::kStartContainer},
      {"container.stop.after_intent", Op::kStopContainer},
      {"container.stop.after_signal", Op::kStopContainer},
      {"container.remove.after_intent", Op::kRemoveContainer},
      {"container.remove.after_stop", Op::kRemoveContainer},
      {"container.remove.after_cleanup", Op::kRemoveContainer},
      {"container.remove.after_snapshot", Op::kRemoveContainer},
      {"container.remove.after_dir", Op::kRemoveContainer},
      {"image.pull.after_manifest", Op::kPullImage},
      {"image.pull.after_layers", Op::kPullImage},
      {"image.pull.after_unpack", Op::kPullImage},
      {"image.pull.after_record", Op::kPullImage},
      {"image.remove.after_record", Op::kRemoveImage},
      {"container.checkpoint.after_pause", Op::kCheckpoint},
      {"container.checkpoint.after_archive", Op::kCheckpoint},
      // Pods of their own user namespace: pinned namespaces, idmapped rootfs and volumes.
      {"pod.run.after_userns_pin", Op::kRunPod, true},
      {"pod.run.after_netns", Op::kRunPod, true},
      {"sandbox.start.after_start", Op::kRunPod, true},
      {"container.create.after_rootfs", Op::kCreateContainer, true},
      {"container.create.after_image_volumes", Op::kCreateContainer, true},
      {"container.create.after_idmapped_volumes", Op::kCreateContainer, true},
      {"container.create.after_record", Op::kCreateContainer, true},
      {"container.remove.after_cleanup", Op::kRemoveContainer, true},
      {"pod.stop.after_netns", Op::kStopPod, true},
      {"pod.remove.after_shutdown", Op::kRemovePod, true},
  };
  return cases;
}

// The containers of these tests also mount their image as an image volume, so that every
// container crash point covers one.
v1::ContainerConfig appContainer(Berthd& d, const std::string& image,
                                 const v1::PodSandboxConfig& pod) {
  v1::ContainerConfig c = sleepContainer("app", image);
  auto* m = c.add_mounts();
  m->set_container_path("/iv");
  m->mutable_image()->set_image(imageStatus(d, image).image().id());
  m->set_readonly(true);
  const auto& ns = pod.linux().security_context().namespace_options();
  if (ns.has_userns_options()) {
    // As kubelet: the pod's namespace options, and its mappings on every volume.
    *c.mutable_linux()->mutable_security_context()->mutable_namespace_options() = ns;
    m = c.add_mounts();
    m->set_container_path("/vol");
    m->set_host_path(d.dir() + "/vol");
    std::filesystem::create_directories(d.dir() + "/vol");
    *m->mutable_uidmappings() = ns.userns_options().uids();
    *m->mutable_gidmappings() = ns.userns_options().gids();
  }
  return c;
}

// networkPod with a user namespace of its own (hostUsers: false).
v1::PodSandboxConfig withUserns(v1::PodSandboxConfig c) {
  auto* u = c.mutable_linux()
                ->mutable_security_context()
                ->mutable_namespace_options()
                ->mutable_userns_options();
  u->set_mode(v1::POD);
  for (auto* maps : {u->mutable_uids(), u->mutable_gids()}) {
    auto* m = maps->Add();
    m->set_host_id(65536 * 37);
    m->set_length(65536);
  }
  return c;
}

v1::PodSandboxConfig networkPod(const std::string& name) {
  v1::PodSandboxConfig c;
  c.mutable_metadata()->set_name(name);
  c.mutable_metadata()->set_namespace_("crash");
  c.mutable_metadata()->set_uid("uid-" + name);
  c.set_hostname(name);
  c.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(v1::POD);
  return c;
}

std::vector<v1::PodSandbox> listPods(Berthd& d) {
  v1::ListPodSandboxResponse resp;
  auto ctx = Berthd::context();
  grpc::Status st = d.runtime().ListPodSandbox(ctx.get(), {}, &resp);
  EXPECT_TRUE(st.ok()) << st.error_message();
  return {resp.items().begin(), resp.items().end()};
}

std::vector<v1::Container> listContainers(Berthd& d) {
  v1::ListContainersResponse resp;
  auto ctx = Berthd::context();
  grpc::Status st = d.runtime().ListContainers(ctx.get(), {}, &resp);
  EXPECT_TRUE(st.ok()) << st.error_message();
  return {resp.containers().begin(), resp.containers().end()};
}

// Whether `pred` holds within `limit` (checked every 100 ms).
template <typename Pred>
bool eventually(Pred pred, std::chrono::seconds limit = std::chrono::seconds(15)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return true;
}

// Stop, then remove, every pod, each call within `bound`.
void removeEverything(Berthd& d, std::chrono::seconds bound) {
  for (const auto& p : listPods(d)) {
    auto t0 = std::chrono::steady_clock::now();
    grpc::Status st = stopPod(d, p.id());
    EXPECT_TRUE(st.ok()) << "stop " << p.id() << ": " << st.error_message() << "\n" << d.log();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, bound) << "stop of " << p.id();
    t0 = std::chrono::steady_clock::now();
    st = removePod(d, p.id());
    EXPECT_TRUE(st.ok()) << "remove " << p.id() << ": " << st.error_message() << "\n" << d.log();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, bound) << "remove of " << p.id();
  }
}

// Files of the image store: blobs, interrupted downloads, unpacked layers.
std::vector<std::string> imageFiles(const Berthd& d) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const char* sub : {"/content/blobs/sha256", "/content/ingest", "/snapshots"}) {
    for (const auto& e : std::filesystem::directory_iterator(d.root() + sub, ec)) {
      out.push_back(e.path().string());
    }
  }
  return out;
}

// PullImage or RemoveImage cut off: after the restart the image is there only if its record
// was written, a pull gets it whole, and once removed nothing of it is left in the store.
void checkImageCrash(Berthd& d, const CrashCase& c) {
  nlohmann::json image = pushUniqueImage(std::string("crash-") + c.point);
  const std::string ref = image["ref"];
  grpc::Status st = pullImage(d, ref);
  if (c.op == Op::kRemoveImage) {
    ASSERT_TRUE(st.ok()) << d.log();
    st = removeImage(d, ref);
  }
  EXPECT_FALSE(st.ok()) << "berthd should have died at " << c.point;
  d.stop(SIGKILL);
  ASSERT_NE(d.log().find(std::string("crash point ") + c.point), std::string::npos)
      << "the crash point was never reached\n"
      << d.log();
  ASSERT_TRUE(d.start()) << d.log();
  const bool recorded = std::string(c.point) == "image.pull.after_record";
  EXPECT_EQ(imageStatus(d, ref).has_image(), recorded) << d.log();
  if (!recorded) {
    EXPECT_TRUE(imageFiles(d).empty()) << ::testing::PrintToString(imageFiles(d));
  }
  ASSERT_TRUE(pullImage(d, ref).ok()) << d.log();
  EXPECT_TRUE(imageStatus(d, ref).has_image());
  ASSERT_TRUE(removeImage(d, ref).ok()) << d.log();
  EXPECT_TRUE(listImages(d).empty());
  EXPECT_TRUE(imageFiles(d).empty()) << ::testing::PrintToString(imageFiles(d));
}

class DaemonCrashTest : public ::testing::TestWithParam<CrashCase> {};

// A CRIU that passes `criu check` and nothing else: CheckpointContainer gets as far as
// pausing the container for its writable layer on hosts where the real one cannot run.
std::string fakeCriu() {
  const std::string path = "/tmp/berth-crash-criu-" + std::to_string(::getpid());
  std::ofstream(path)
      << "#!/bin/sh\n[ \"$1\" = check ] && exit 0\necho 'Error: fake' >&2; exit 1\n";
  ::chmod(path.c_str(), 0755);
  return path;
}

TEST_P(DaemonCrashTest, RestartFindsWhatWasAcknowledgedAndNothingLeaksAfterRemoval) {
  const CrashCase c = GetParam();
  std::string toml;
  struct RemovedAtEnd {
    std::string path;
    ~RemovedAtEnd() {
      if (!path.empty()) ::unlink(path.c_str());
    }
  } fake;
  if (std::string(c.point) == "container.checkpoint.after_pause") {
    fake.path = fakeCriu();
    toml = "[cri]\ncriu_path = \"" + fake.path + "\"\n";
  } else if (std::string(c.point) == "container.checkpoint.after_archive" && !criuWorks()) {
    GTEST_SKIP() << "CRIU cannot run on this host (`criu check` fails: Debian 12's 3.17.1 on "
                    "Linux >= 6.13), so no archive is ever written here";
  }
  Berthd d(toml);
  // As on a node, anyone may search the folders above state (a pod's own root reaches its
  // rootfs through them).
  if (c.userns) {
    ASSERT_EQ(::chmod(d.dir().c_str(), 0755), 0);
  }
  ASSERT_TRUE(d.start({std::string("BERTH_CRASH_AT=") + c.point})) << d.log();
  if (c.op == Op::kPullImage || c.op == Op::kRemoveImage) {
    checkImageCrash(d, c);
    return;
  }
  const std::string busybox = envKey("BERTH_TEST_IMAGE_BUSYBOX");
  v1::PodSandboxConfig config = networkPod("crashed");
  if (c.userns) config = withUserns(config);
  std::string pod, container;
  if (c.op == Op::kRunPod) {
    grpc::Status st = runPod(d, config, &pod);
    EXPECT_FALSE(st.ok()) << "berthd should have died at " << c.point;
  } else if (c.op == Op::kCreateContainer || c.op == Op::kStartContainer ||
             c.op == Op::kStopContainer || c.op == Op::kRemoveContainer ||
             c.op == Op::kCheckpoint) {
    ASSERT_TRUE(pullImage(d, busybox).ok());
    ASSERT_TRUE(runPod(d, config, &pod).ok()) << d.log();
    grpc::Status st = createContainer(d, pod, appContainer(d, busybox, config), config, &container);
    if (c.op != Op::kCreateContainer) {
      ASSERT_TRUE(st.ok()) << d.log();
      st = startContainer(d, container);
    }
    if (c.op == Op::kStopContainer || c.op == Op::kRemoveContainer) {
      ASSERT_TRUE(st.ok()) << d.log();
      st = c.op == Op::kStopContainer ? stopContainer(d, container, 10)
                                      : removeContainer(d, container);
    }
    if (c.op == Op::kCheckpoint) {
      ASSERT_TRUE(st.ok()) << d.log();
      std::filesystem::create_directories(d.dir() + "/checkpoints");
      st = checkpointContainer(d, container, d.dir() + "/checkpoints/c.tar");
    }
    EXPECT_FALSE(st.ok()) << "berthd should have died at " << c.point;
  } else {
    ASSERT_TRUE(pullImage(d, busybox).ok());
    ASSERT_TRUE(runPod(d, config, &pod).ok()) << d.log();
    grpc::Status created =
        createContainer(d, pod, appContainer(d, busybox, config), config, &container);
    ASSERT_TRUE(created.ok()) << created.error_message() << "\n" << d.log();
    ASSERT_TRUE(startContainer(d, container).ok()) << d.log();
    grpc::Status st = c.op == Op::kStopPod ? stopPod(d, pod) : removePod(d, pod);
    EXPECT_FALSE(st.ok()) << "berthd should have died at " << c.point;
  }
  d.stop(SIGKILL);  // reaps it; it is dead already when the point was reached
  ASSERT_NE(d.log().find(std::string("crash point ") + c.point), std::string::npos)
      << "the crash point was never reached\n"
      << d.log();

  ASSERT_TRUE(d.start()) << d.log();
  // Recovery finishes or undoes what the crash cut off, in the background, within seconds.
  const std::string point = c.point;
  if (c.op == Op::kRunPod) {
    // Not acknowledged: gone; or made whole before the crash (READY: kubelet finds it by its
    // labels); or, cut off half-way, stopped by recovery, so that it holds no address,
    // namespace or process, and listed (NOTREADY) for kubelet to remove.
    std::vector<v1::PodSandbox> pods;
    EXPECT_TRUE(eventually([&] {
      pods = listPods(d);
      return pods.size() <= 1;
    })) << d.log();
    if (!pods.empty() && pods[0].state() == v1::SANDBOX_READY) {
      // Whole: the pause started and the network recorded, whichever came last (the network
      // is set up while the pause starts), so that only the reply was lost.
      EXPECT_TRUE(point == "sandbox.start.after_start" || point == "pod.run.after_cni_record" ||
                  point == "pod.run.before_reply")
          << point;
      v1::PodSandboxStatusResponse whole = podStatus(d, pods[0].id());
      EXPECT_FALSE(whole.status().network().ip().empty()) << "READY without its network";
      removeEverything(d, std::chrono::seconds(15));
    }
    auto holding = [&] {
      std::vector<std::string> held;
      for (const std::string& item : leftovers(d)) {
        for (const char* kind : {"netns ", "userns ", "veth ", "ip lease ", "process "}) {
          if (item.rfind(kind, 0) == 0) held.push_back(item);
        }
      }
      return held;
    };
    EXPECT_TRUE(eventually([&] { return holding().empty(); }))
        << ::testing::PrintToString(holding()) << "\n"
        << d.log();
  } else if (c.op == Op::kCreateContainer) {
    // Never acknowledged: undone (its record, if any, was pending Creating).
    std::vector<v1::PodSandbox> pods = listPods(d);
    ASSERT_EQ(pods.size(), 1u) << d.log();
    EXPECT_EQ(pods[0].state(), v1::SANDBOX_READY) << d.log();
    EXPECT_TRUE(eventually([&] { return listContainers(d).empty(); })) << d.log();
    auto dirs = [&] {
      std::vector<std::string> out;
      std::error_code ec;
      for (const auto& e : std::filesystem::directory_iterator(d.state() + "/containers", ec)) {
        out.push_back(e.path().string());
      }
      return out;
    };
    EXPECT_TRUE(eventually([&] { return dirs().empty(); })) << ::testing::PrintToString(dirs());
  } else if (c.op == Op::kStartContainer) {
    std::vector<v1::Container> cs = listContainers(d);
    ASSERT_EQ(cs.size(), 1u) << d.log();
    EXPECT_EQ(cs[0].id(), container);
    if (point == "container.start.before_start") {
      // The runtime never started it: CREATED, and it can be started now.
      EXPECT_EQ(cs[0].state(), v1::CONTAINER_CREATED) << d.log();
      EXPECT_TRUE(startContainer(d, container).ok()) << d.log();
    } else {
      // Its process ran: never CREATED again (kubelet would start it twice).
      EXPECT_NE(cs[0].state(), v1::CONTAINER_CREATED) << d.log();
    }
  } else if (c.op == Op::kCheckpoint) {
    // Not acknowledged: undone. The container runs, not frozen (an exec finishes), and
    // neither the archive being written nor the work folder is left.
    std::vector<v1::Container> cs = listContainers(d);
    ASSERT_EQ(cs.size(), 1u) << d.log();
    EXPECT_EQ(cs[0].state(), v1::CONTAINER_RUNNING) << d.log();
    v1::ExecSyncResponse out;
    grpc::Status ran = execSync(d, container, {"echo", "thawed"}, &out, 10);
    EXPECT_TRUE(ran.ok()) << ran.error_message() << "\n" << d.log();
    EXPECT_EQ(out.stdout(), "thawed\n");
    EXPECT_TRUE(std::filesystem::is_empty(d.dir() + "/checkpoints"));
    for (const auto& e :
         std::filesystem::directory_iterator(d.state() + "/containers/" + container)) {
      EXPECT_NE(e.path().filename().string().rfind("checkpoint-", 0), 0u) << e.path();
    }
  } else if (c.op == Op::kStopContainer) {
    // The stop is finished: the container exits without another StopContainer.
    EXPECT_TRUE(eventually([&] {
      auto cs = listContainers(d);
      return cs.size() == 1 && cs[0].state() == v1::CONTAINER_EXITED;
    })) << d.log();
  } else if (c.op == Op::kRemoveContainer) {
    // The removal is finished; the pod is untouched.
    EXPECT_TRUE(eventually([&] { return listContainers(d).empty(); })) << d.log();
    std::vector<v1::PodSandbox> pods = listPods(d);
    ASSERT_EQ(pods.size(), 1u) << d.log();
    EXPECT_EQ(pods[0].state(), v1::SANDBOX_READY) << d.log();
  } else if (c.op == Op::kStopPod) {
    // Acknowledged objects are all there; the stop is finished.
    EXPECT_TRUE(eventually([&] {
      auto pods = listPods(d);
      auto cs = listContainers(d);
      return pods.size() == 1 && pods[0].id() == pod && pods[0].state() == v1::SANDBOX_NOTREADY &&
             cs.size() == 1 && cs[0].id() == container && cs[0].state() == v1::CONTAINER_EXITED;
    })) << d.log();
  } else if (c.op == Op::kRemovePod) {
    // The removal is finished.
    EXPECT_TRUE(eventually([&] { return listPods(d).empty() && listContainers(d).empty(); }))
        << d.log();
  }
  removeEverything(d, std::chrono::seconds(15));
  EXPECT_TRUE(listPods(d).empty());
  EXPECT_TRUE(listContainers(d).empty());
  // A pod name can be used again.
  std::string again;
  EXPECT_TRUE(runPod(d, config, &again).ok()) << d.log();
  removeEverything(d, std::chrono::seconds(15));
  std::vector<std::string> left = leftovers(d);
  EXPECT_TRUE(left.empty()) << ::testing::PrintToString(left) << "\n" << d.log();
  std::error_code ec;
  for (const auto& s : std::filesystem::directory_iterator(d.root() + "/snapshots", ec)) {
    EXPECT_EQ(s.path().filename().string().find("-iv"), std::string::npos)
        << "image volume snapshot left: " << s.path();
  }
}

std::string caseName(const ::testing::TestParamInfo<CrashCase>& info) {
  std::string name = info.param.point;
  for (char& ch : name) {
    if (ch == '.') ch = '_';
  }
  return info.param.userns ? name + "_userns" : name;
}

INSTANTIATE_TEST_SUITE_P(Points, DaemonCrashTest, ::testing::ValuesIn(crashCases()), caseName);

// Every crash point berthd knows is exercised by a test.
TEST(CrashPointsTest, EveryCrashPointHasACase) {
  std::set<std::string> covered;
  for (const auto& c : crashCases()) covered.insert(c.point);
  for (std::string_view p : kCrashPoints) {
    EXPECT_TRUE(covered.count(std::string(p)) > 0) << "no crash test for " << p;
  }
}

// True while `pid` runs (a zombie waiting for its reaper does not).
bool processRuns(int pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(stat, text)) return false;
  size_t close = text.rfind(')');
  return close != std::string::npos && close + 2 < text.size() && text[close + 2] != 'Z';
}

int shimPidOf(Berthd& d) {
  for (const std::string& item : leftovers(d)) {
    if (item.rfind("shim pid ", 0) == 0) return std::stoi(item.substr(9));
  }
  return -1;
}

// kill -9 of a pod's shim: berthd ends the pod's processes itself, reports the exits only once
// they are gone, sends the events; Stop and Remove work and nothing is left (issue 14).
TEST(ShimKillTest, DeadShimEndsThePodBeforeReportingExitsAndNothingLeaks) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  const std::string busybox = envKey("BERTH_TEST_IMAGE_BUSYBOX");
  ASSERT_TRUE(pullImage(d, busybox).ok());
  v1::PodSandboxConfig config = networkPod("shimless");
  std::string pod;
  ASSERT_TRUE(runPod(d, config, &pod).ok()) << d.log();
  std::vector<std::string> containers(2);
  std::vector<int> pids;
  for (size_t i = 0; i < containers.size(); ++i) {
    ASSERT_TRUE(createContainer(d, pod, sleepContainer("c" + std::to_string(i), busybox), config,
                                &containers[i])
                    .ok())
        << d.log();
    ASSERT_TRUE(startContainer(d, containers[i]).ok()) << d.log();
    pids.push_back(pidInInfo(containerStatus(d, containers[i], true).info()));
  }
  pids.push_back(pidInInfo(podStatus(d, pod, true).info()));
  for (int pid : pids) ASSERT_TRUE(pid > 0 && processRuns(pid)) << pid;
  int shim = shimPidOf(d);
  ASSERT_GT(shim, 0);
  EventRecorder events(d);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // subscribed

  ASSERT_EQ(::kill(shim, SIGKILL), 0);
  // Each container is reported EXITED only when its process is gone.
  for (const std::string& c : containers) {
    bool exited = false;
    for (int i = 0; i < 500 && !exited; ++i) {
      v1::ContainerStatus s = containerStatus(d, c).status();
      if (s.state() == v1::CONTAINER_EXITED) {
        exited = true;
        for (int pid : pids) EXPECT_FALSE(processRuns(pid)) << "pid " << pid << " runs on";
        EXPECT_EQ(s.exit_code(), 255);
      } else {
        EXPECT_EQ(s.state(), v1::CONTAINER_RUNNING);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
    EXPECT_TRUE(exited) << c << "\n" << d.log();
  }
  for (int i = 0; i < 250 && podStatus(d, pod).status().state() != v1::SANDBOX_NOTREADY; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(podStatus(d, pod).status().state(), v1::SANDBOX_NOTREADY) << d.log();
  for (int pid : pids) EXPECT_FALSE(processRuns(pid)) << "pid " << pid << " runs on";
  for (const std::string& id : {containers[0], containers[1], pod}) {
    EXPECT_TRUE(events.waitFor([&](const v1::ContainerEventResponse& e) {
      return e.container_id() == id && e.container_event_type() == v1::CONTAINER_STOPPED_EVENT;
    })) << "no STOPPED event for "
        << id;
  }
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(stopPod(d, pod).ok()) << d.log();
  EXPECT_TRUE(removePod(d, pod).ok()) << d.log();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  events.stop();
  std::vector<std::string> left = leftovers(d);
  EXPECT_TRUE(left.empty()) << ::testing::PrintToString(left) << "\n" << d.log();
}

// A pod (`config`) with one running `sleep` container of the test busybox image.
struct SleepingPod {
  std::string pod, container;
};
void runSleepingPod(Berthd& d, const v1::PodSandboxConfig& config, SleepingPod* out) {
  const std::string busybox = envKey("BERTH_TEST_IMAGE_BUSYBOX");
  ASSERT_TRUE(pullImage(d, busybox).ok());
  ASSERT_TRUE(runPod(d, config, &out->pod).ok()) << d.log();
  ASSERT_TRUE(
      createContainer(d, out->pod, sleepContainer("c", busybox), config, &out->container).ok())
      << d.log();
  ASSERT_TRUE(startContainer(d, out->container).ok()) << d.log();
}

// The shim dies while berthd is down: after the restart the pod's processes are ended before
// anything is reported exited, and it can be removed without leaks.
TEST(ShimKillTest, ShimThatDiedWhileBerthdWasDownIsTakenOverAtStartUp) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  SleepingPod p;
  ASSERT_NO_FATAL_FAILURE(runSleepingPod(d, networkPod("shimless2"), &p));
  const std::string &pod = p.pod, &container = p.container;
  std::vector<int> pids = {pidInInfo(containerStatus(d, container, true).info()),
                           pidInInfo(podStatus(d, pod, true).info())};
  int shim = shimPidOf(d);
  ASSERT_GT(shim, 0);
  d.stop(SIGKILL);
  ASSERT_EQ(::kill(shim, SIGKILL), 0);
  for (int pid : pids) EXPECT_TRUE(processRuns(pid)) << "the shim's death alone ends nothing";
  ASSERT_TRUE(d.start()) << d.log();
  for (int pid : pids) EXPECT_FALSE(processRuns(pid)) << "pid " << pid << " runs on";
  EXPECT_EQ(podStatus(d, pod).status().state(), v1::SANDBOX_NOTREADY);
  for (int i = 0; i < 250 && containerStatus(d, container).status().state() != v1::CONTAINER_EXITED;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(containerStatus(d, container).status().state(), v1::CONTAINER_EXITED);
  EXPECT_TRUE(stopPod(d, pod).ok()) << d.log();
  EXPECT_TRUE(removePod(d, pod).ok()) << d.log();
  std::vector<std::string> left = leftovers(d);
  EXPECT_TRUE(left.empty()) << ::testing::PrintToString(left) << "\n" << d.log();
}

int threadsOf(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  }
  return -1;
}

// Exits come as events over one subscription per shim on one event loop: berthd's threads do
// not grow with pods or containers (a waiter thread each made 316 at 100 pods x 2 containers).
TEST(ExitEventsTest, ThreadsDoNotGrowWithPodsOrContainers) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  const std::string busybox = envKey("BERTH_TEST_IMAGE_BUSYBOX");
  ASSERT_TRUE(pullImage(d, busybox).ok());
  std::string first;
  ASSERT_TRUE(runPod(d, hostNetworkPod("threads-0"), &first).ok()) << d.log();
  int idle = threadsOf(d.pid());
  ASSERT_GT(idle, 0);
  constexpr int kPods = 12, kPerPod = 2;
  std::vector<std::string> containers;
  for (int p = 1; p <= kPods; ++p) {
    v1::PodSandboxConfig config = hostNetworkPod("threads-" + std::to_string(p));
    std::string pod;
    ASSERT_TRUE(runPod(d, config, &pod).ok()) << d.log();
    for (int c = 0; c < kPerPod; ++c) {
      std::string id;
      ASSERT_TRUE(
          createContainer(d, pod, sleepContainer("c" + std::to_string(c), busybox), config, &id)
              .ok())
          << d.log();
      ASSERT_TRUE(startContainer(d, id).ok()) << d.log();
      containers.push_back(id);
    }
  }
  int busy = threadsOf(d.pid());
  EXPECT_LE(busy, idle + 4) << "berthd went from " << idle << " to " << busy << " threads with "
                            << kPods << " more pods and " << containers.size()
                            << " running containers";
  // Their exits still arrive, each as its own event.
  for (const std::string& id : containers) {
    ASSERT_TRUE(stopContainer(d, id, 0).ok()) << d.log();
    EXPECT_EQ(containerStatus(d, id).status().state(), v1::CONTAINER_EXITED);
    EXPECT_EQ(containerStatus(d, id).status().exit_code(), 137);
  }
}

// An exit the shim recorded while berthd was down is replayed to the restarted berthd, which
// persists it and only then acknowledges it: the shim's record is gone afterwards.
TEST(ExitEventsTest, AnExitWhileBerthdIsDownIsReplayedPersistedAndAcknowledged) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  SleepingPod p;
  ASSERT_NO_FATAL_FAILURE(runSleepingPod(d, hostNetworkPod("replay"), &p));
  const std::string &pod = p.pod, &container = p.container;
  int pid = pidInInfo(containerStatus(d, container, true).info());
  ASSERT_GT(pid, 0);
  d.stop(SIGKILL);
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  const std::string record = d.state() + "/pods/" + pod + "/shim/exits/" + container + ".json";
  for (int i = 0; i < 500 && !std::filesystem::exists(record); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(std::filesystem::exists(record)) << "the shim did not record the exit";
  ASSERT_TRUE(d.start()) << d.log();
  for (int i = 0; i < 250 && containerStatus(d, container).status().state() != v1::CONTAINER_EXITED;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  v1::ContainerStatus s = containerStatus(d, container).status();
  EXPECT_EQ(s.state(), v1::CONTAINER_EXITED);
  EXPECT_EQ(s.exit_code(), 137) << "the real exit code, replayed";
  for (int i = 0; i < 250 && std::filesystem::exists(record); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_FALSE(std::filesystem::exists(record)) << "the persisted exit was not acknowledged";
  EXPECT_EQ(podStatus(d, pod).status().state(), v1::SANDBOX_READY);
  EXPECT_TRUE(stopPod(d, pod).ok()) << d.log();
  EXPECT_TRUE(removePod(d, pod).ok()) << d.log();
}

// The pod's netns pin is a plain file again (a crash between pinning and mounting it, or
// between unmounting and unlinking it): Stop and Remove still release the IP lease and the veth.
TEST(NetnsCrashTest, UnmountedNetnsPinStillLetsThePodGoWithoutLeaks) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  std::string pod;
  ASSERT_TRUE(runPod(d, networkPod("unpinned"), &pod).ok()) << d.log();
  d.stop(SIGKILL);
  const std::string pin = d.state() + "/netns/" + pod;
  ASSERT_EQ(::umount2(pin.c_str(), MNT_DETACH), 0) << pin;
  ASSERT_TRUE(d.start()) << d.log();
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(stopPod(d, pod).ok()) << d.log();
  EXPECT_TRUE(removePod(d, pod).ok()) << d.log();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  std::vector<std::string> left = leftovers(d);
  EXPECT_TRUE(left.empty()) << ::testing::PrintToString(left) << "\n" << d.log();
}

// A store that lost its pod and container (a store from before intent records, or a crash
// inside one step): at start-up berthd tears down what nothing names — the shim and what it
// runs, the netns with its CNI attachment, runtime state, cgroups, dirs — before serving.
TEST(OrphanTest, WhatNoRecordNamesIsTornDownAtStartUp) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  const std::string busybox = envKey("BERTH_TEST_IMAGE_BUSYBOX");
  ASSERT_TRUE(pullImage(d, busybox).ok());
  v1::PodSandboxConfig config = networkPod("orphan");
  std::string pod, container;
  ASSERT_TRUE(runPod(d, config, &pod).ok()) << d.log();
  ASSERT_TRUE(createContainer(d, pod, appContainer(d, busybox, config), config, &container).ok());
  ASSERT_TRUE(startContainer(d, container).ok()) << d.log();
  d.stop(SIGKILL);
  ASSERT_FALSE(leftovers(d).empty());
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((d.root() + "/meta.db").c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, "DELETE FROM names; DELETE FROM containers; DELETE FROM sandboxes;",
                        nullptr, nullptr, &err);
  EXPECT_EQ(rc, SQLITE_OK) << (err != nullptr ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
  ASSERT_TRUE(d.start()) << d.log();
  EXPECT_TRUE(listPods(d).empty());
  std::vector<std::string> left = leftovers(d);
  EXPECT_TRUE(left.empty()) << ::testing::PrintToString(left) << "\n" << d.log();
  EXPECT_NE(d.log().find("which no pod or container record names"), std::string::npos);
}

// A client of its own for a worker: survives berthd's restarts (its channel reconnects within
// a fraction of a second, not gRPC's default back-off of seconds).
struct ChurnClient {
  explicit ChurnClient(const std::string& socket) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 50);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 200);
    channel = grpc::CreateCustomChannel("unix:" + socket, grpc::InsecureChannelCredentials(), args);
    stub = v1::RuntimeService::NewStub(channel);
  }
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::RuntimeService::Stub> stub;
};

// What the workers were told succeeded, and what they asked to remove.
struct Acknowledged {
  absl::Mutex mu;
  std::set<std::string> pods ABSL_GUARDED_BY(mu);
  std::map<std::string, std::string> containers ABSL_GUARDED_BY(mu);  // id -> pod
  std::set<std::string> removal_asked ABSL_GUARDED_BY(mu);            // pods
};

void churnWorker(const std::string& socket, const std::string& busybox, int worker,
                 const std::atomic<bool>& stop, Acknowledged& acked, std::atomic<int>& made) {
  ChurnClient client(socket);
  for (int i = 0; !stop.load(); ++i) {
    v1::PodSandboxConfig config =
        networkPod("w" + std::to_string(worker) + "-" + std::to_string(i));
    v1::RunPodSandboxRequest run;
    *run.mutable_config() = config;
    v1::RunPodSandboxResponse ran;
    auto ctx = Berthd::context(20);
    ctx->set_wait_for_ready(true);
    if (!client.stub->RunPodSandbox(ctx.get(), run, &ran).ok()) continue;
    const std::string pod = ran.pod_sandbox_id();
    {
      absl::MutexLock lock(&acked.mu);
      acked.pods.insert(pod);
    }
    v1::CreateContainerRequest create;
    create.set_pod_sandbox_id(pod);
    *create.mutable_config() = sleepContainer("app", busybox);
    *create.mutable_sandbox_config() = config;
    v1::CreateContainerResponse created;
    ctx = Berthd::context(20);
    if (client.stub->CreateContainer(ctx.get(), create, &created).ok()) {
      {
        absl::MutexLock lock(&acked.mu);
        acked.containers[created.container_id()] = pod;
      }
      v1::StartContainerRequest start;
      start.set_container_id(created.container_id());
      v1::StartContainerResponse started;
      ctx = Berthd::context(20);
      (void)client.stub->StartContainer(ctx.get(), start, &started);
    }
    ++made;
    {
      absl::MutexLock lock(&acked.mu);
      acked.removal_asked.insert(pod);
    }
    v1::StopPodSandboxRequest stop_req;
    stop_req.set_pod_sandbox_id(pod);
    v1::StopPodSandboxResponse stopped;
    ctx = Berthd::context(20);
    ctx->set_wait_for_ready(true);
    if (!client.stub->StopPodSandbox(ctx.get(), stop_req, &stopped).ok()) continue;
    v1::RemovePodSandboxRequest remove;
    remove.set_pod_sandbox_id(pod);
    v1::RemovePodSandboxResponse removed;
    ctx = Berthd::context(20);
    ctx->set_wait_for_ready(true);
    if (client.stub->RemovePodSandbox(ctx.get(), remove, &removed).ok()) {
      absl::MutexLock lock(&acked.mu);
      acked.pods.erase(pod);
      for (auto it = acked.containers.begin(); it != acked.containers.end();) {
        it = it->second == pod ? acked.containers.erase(it) : std::next(it);
      }
    }
  }
}

// Several workers make and remove pods with a container each on the pod network while berthd
// is SIGKILLed at random moments: nothing acknowledged is lost, everything can be removed, and
// nothing is left on the host (issue 14).
TEST(ChurnTest, RandomKillsLoseNothingAcknowledgedAndLeakNothing) {
  Berthd d;
  ASSERT_TRUE(d.start()) << d.log();
  const std::string busybox = envKey("BERTH_TEST_IMAGE_BUSYBOX");
  ASSERT_TRUE(pullImage(d, busybox).ok());
  constexpr int kWorkers = 4;
  constexpr int kKills = 10;
  std::atomic<bool> stop{false};
  std::atomic<int> made{0};
  Acknowledged acked;
  std::vector<std::thread> workers;
  for (int w = 0; w < kWorkers; ++w) {
    workers.emplace_back(churnWorker, d.socket(), busybox, w, std::cref(stop), std::ref(acked),
                         std::ref(made));
  }
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> pause_ms(300, 1500);
  for (int k = 0; k < kKills; ++k) {
    std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms(rng)));
    d.stop(SIGKILL);
    ASSERT_TRUE(d.start()) << "restart " << k << "\n" << d.log();
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  stop = true;
  for (auto& t : workers) t.join();
  EXPECT_GT(made.load(), kKills) << "the workers made too little to test anything";
  RecordProperty("pods_made", made.load());
  std::printf("%d pods made across %d kills\n", made.load(), kKills);

  std::set<std::string> listed_pods, listed_containers;
  for (const auto& p : listPods(d)) listed_pods.insert(p.id());
  for (const auto& c : listContainers(d)) listed_containers.insert(c.id());
  {
    absl::MutexLock lock(&acked.mu);
    for (const auto& pod : acked.pods) {
      EXPECT_TRUE(listed_pods.count(pod) > 0 || acked.removal_asked.count(pod) > 0)
          << "acknowledged pod " << pod << " lost";
    }
    for (const auto& [c, pod] : acked.containers) {
      EXPECT_TRUE(listed_containers.count(c) > 0 || acked.removal_asked.count(pod) > 0)
          << "acknowledged container " << c << " lost";
    }
  }
  removeEverything(d, std::chrono::seconds(15));
  EXPECT_TRUE(listPods(d).empty());
  EXPECT_TRUE(listContainers(d).empty());
  std::vector<std::string> left = leftovers(d);
  EXPECT_TRUE(left.empty()) << ::testing::PrintToString(left) << "\n" << d.log();
}

}  // namespace
}  // namespace berth::testing
