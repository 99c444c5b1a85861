// Stats freshness (issue 13): CPU and memory in every answer for a container started a moment
// ago, readings a second apart that differ, answers that never wait on a stopped shim, and an
// ImageFsInfo that follows the disk without pulls.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "pod_env.h"

namespace berth::testing {
namespace {

using Clock = std::chrono::steady_clock;

int64_t unixNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

v1::ContainerStats containerStats(Berthd& d, const std::string& id) {
  v1::ContainerStatsRequest req;
  req.set_container_id(id);
  v1::ContainerStatsResponse resp;
  auto ctx = Berthd::context();
  grpc::Status st = d.runtime().ContainerStats(ctx.get(), req, &resp);
  EXPECT_TRUE(st.ok()) << st.error_message();
  return resp.stats();
}

v1::ListContainerStatsResponse listContainerStats(Berthd& d, grpc::Status* st) {
  v1::ListContainerStatsResponse resp;
  auto ctx = Berthd::context(5);
  *st = d.runtime().ListContainerStats(ctx.get(), {}, &resp);
  return resp;
}

v1::PodSandboxStats podStats(Berthd& d, const std::string& id) {
  v1::PodSandboxStatsRequest req;
  req.set_pod_sandbox_id(id);
  v1::PodSandboxStatsResponse resp;
  auto ctx = Berthd::context();
  grpc::Status st = d.runtime().PodSandboxStats(ctx.get(), req, &resp);
  EXPECT_TRUE(st.ok()) << st.error_message();
  return resp.stats();
}

v1::FilesystemUsage imageFs(Berthd& d) {
  v1::ImageFsInfoResponse resp;
  auto ctx = Berthd::context();
  grpc::Status st = d.image().ImageFsInfo(ctx.get(), {}, &resp);
  EXPECT_TRUE(st.ok()) << st.error_message();
  if (resp.image_filesystems_size() != 1) {
    ADD_FAILURE() << resp.DebugString();
    return {};
  }
  return resp.image_filesystems(0);
}

// The parent of `pid` (from /proc/<pid>/status), or 0.
int parentOf(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("PPid:", 0) == 0) return std::stoi(line.substr(5));
  }
  return 0;
}

std::string commOf(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
  std::string comm;
  std::getline(in, comm);
  return comm;
}

// SIGSTOPs a process for the guard's lifetime.
class Stopped {
 public:
  explicit Stopped(int pid) : pid_(pid) { EXPECT_EQ(::kill(pid_, SIGSTOP), 0); }
  ~Stopped() { ::kill(pid_, SIGCONT); }
  Stopped(const Stopped&) = delete;
  Stopped& operator=(const Stopped&) = delete;

 private:
  int pid_;
};

void expectCpuAndMemory(const v1::ContainerStats& s, const std::string& what) {
  ASSERT_TRUE(s.has_cpu() && s.has_memory()) << what << ":\n" << s.DebugString();
  EXPECT_GT(s.cpu().timestamp(), 0) << what;
  EXPECT_GT(s.cpu().usage_core_nano_seconds().value(), 0u) << what;
  EXPECT_GT(s.memory().timestamp(), 0) << what;
  EXPECT_GT(s.memory().working_set_bytes().value(), 0u) << what;
}

// Regression: the first stats of a container came without cpu and memory (the collector read a
// new container later, on its own thread), which the validation suite's "listing container
// stats" spec dereferences.
TEST(StatsTest, StatsRightAfterStartCarryCpuAndMemory) {
  PodEnv e("fresh");  // the default 10 s collection period
  ASSERT_FALSE(e.pod.empty());
  constexpr int kContainers = 4;
  for (int i = 0; i < kContainers; ++i) e.run(e.containerConfig("fresh-" + std::to_string(i)));
  // No waiting: the very first stats call after StartContainer, for every one of them.
  grpc::Status st;
  v1::ListContainerStatsResponse list = listContainerStats(e.d, &st);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(list.stats_size(), kContainers);
  for (const auto& s : list.stats()) {
    expectCpuAndMemory(s, "ListContainerStats " + s.attributes().metadata().name());
  }

  // A container started after the others were first asked about, and the pod.
  std::string late = e.run(e.containerConfig("late"));
  expectCpuAndMemory(containerStats(e.d, late), "ContainerStats");
  v1::PodSandboxStats pod = podStats(e.d, e.pod);
  ASSERT_TRUE(pod.linux().has_cpu() && pod.linux().has_memory()) << pod.DebugString();
  EXPECT_GT(pod.linux().cpu().timestamp(), 0);
  EXPECT_GT(pod.linux().memory().timestamp(), 0);
  ASSERT_EQ(pod.linux().containers_size(), kContainers + 1) << pod.DebugString();
  for (const auto& c : pod.linux().containers()) {
    expectCpuAndMemory(c, "PodSandboxStats container " + c.attributes().metadata().name());
  }
}

// Removes the cgroup `path` (made by runc as the parent of a pod's cgroups) from every
// hierarchy when the test ends; the pod must be gone by then.
class CgroupParent {
 public:
  explicit CgroupParent(std::string path) : path_(std::move(path)) {}
  ~CgroupParent() {
    std::error_code ec;
    for (const auto& h : std::filesystem::directory_iterator("/sys/fs/cgroup", ec)) {
      ::rmdir((h.path().string() + path_).c_str());
    }
    ::rmdir(("/sys/fs/cgroup" + path_).c_str());  // a pure v2 host
  }
  CgroupParent(const CgroupParent&) = delete;
  CgroupParent& operator=(const CgroupParent&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Regression: two calls a second apart (crictl stats and statsp sample twice) returned the same
// reading, up to stats_collect_period_seconds old: "cpu stat is not updated during sample".
TEST(StatsTest, CallsASecondApartShowCpuRisingForABusyContainer) {
  PodEnv e("busy");
  ASSERT_FALSE(e.pod.empty());
  // A pod with a cgroup of its own above its containers', as kubelet makes them, so that the
  // pod's CPU includes the busy container's.
  CgroupParent parent("/berth-it-stats-" + std::to_string(::getpid()));
  v1::PodSandboxConfig config = hostNetworkPod("busy-parent");
  config.mutable_linux()->set_cgroup_parent(parent.path());
  std::string pod;
  ASSERT_TRUE(runPod(e.d, config, &pod).ok()) << e.d.log();
  std::string id;
  v1::ContainerConfig spin = sleepContainer("spin", e.busybox);
  spin.clear_command();
  for (const char* arg : {"sh", "-c", "while :; do :; done"}) spin.add_command(arg);
  ASSERT_TRUE(createContainer(e.d, pod, spin, config, &id).ok()) << e.d.log();
  ASSERT_TRUE(startContainer(e.d, id).ok()) << e.d.log();
  struct RemovePod {
    Berthd& d;
    std::string pod;
    ~RemovePod() {
      EXPECT_TRUE(stopPod(d, pod).ok());
      EXPECT_TRUE(removePod(d, pod).ok());
    }
  } remove_pod{e.d, pod};

  v1::ContainerStats first = containerStats(e.d, id);
  v1::PodSandboxStats pod_first = podStats(e.d, pod);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  v1::ContainerStats second = containerStats(e.d, id);
  int64_t asked_at = unixNowNs();
  v1::PodSandboxStats pod_second = podStats(e.d, pod);

  ASSERT_TRUE(first.has_cpu() && second.has_cpu()) << first.DebugString() << second.DebugString();
  EXPECT_GT(second.cpu().timestamp(), first.cpu().timestamp());
  EXPECT_GT(second.cpu().usage_core_nano_seconds().value(),
            first.cpu().usage_core_nano_seconds().value());
  EXPECT_GT(second.cpu().usage_nano_cores().value(), 0u);
  EXPECT_GT(second.memory().timestamp(), first.memory().timestamp());
  // At most stats_max_age_milliseconds (1 s) old when asked; 3 s leaves room for a slow machine.
  EXPECT_GT(second.cpu().timestamp(), asked_at - 3'000'000'000) << second.DebugString();

  ASSERT_TRUE(pod_first.linux().has_cpu() && pod_second.linux().has_cpu());
  EXPECT_GT(pod_second.linux().cpu().timestamp(), pod_first.linux().cpu().timestamp());
  EXPECT_GT(pod_second.linux().cpu().usage_core_nano_seconds().value(),
            pod_first.linux().cpu().usage_core_nano_seconds().value());
}

// A shim that hangs (here: SIGSTOPped) slows nobody's stats: CPU and memory come from cgroup
// files, never from a shim.
TEST(StatsTest, StatsAnswerAtOnceWithAShimStopped) {
  PodEnv e("hung");
  ASSERT_FALSE(e.pod.empty());
  std::string hung = e.run(e.containerConfig("hung"));
  v1::PodSandboxConfig other_config = hostNetworkPod("healthy");
  std::string other_pod;
  ASSERT_TRUE(runPod(e.d, other_config, &other_pod).ok());
  std::string healthy;
  ASSERT_TRUE(
      createContainer(e.d, other_pod, sleepContainer("healthy", e.busybox), other_config, &healthy)
          .ok());
  ASSERT_TRUE(startContainer(e.d, healthy).ok());

  int pid = nlohmann::json::parse(e.status(hung, true).info().at("info"))["pid"];
  int shim = parentOf(pid);
  ASSERT_GT(shim, 1);
  ASSERT_EQ(commOf(shim), "berth-shim") << "the container's parent is its pod's shim";
  {
    Stopped stopped(shim);
    // Wait past max_age so that the calls below have to read again, with the shim stopped.
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    auto begin = Clock::now();
    grpc::Status st;
    v1::ListContainerStatsResponse list = listContainerStats(e.d, &st);
    ASSERT_TRUE(st.ok()) << st.error_message();
    ASSERT_EQ(list.stats_size(), 2);
    for (const auto& s : list.stats()) expectCpuAndMemory(s, s.attributes().metadata().name());
    expectCpuAndMemory(containerStats(e.d, hung), "ContainerStats of the stopped shim's container");
    v1::PodSandboxStats pod = podStats(e.d, e.pod);
    EXPECT_TRUE(pod.linux().has_cpu() && pod.linux().has_memory()) << pod.DebugString();
    v1::ListPodSandboxStatsResponse pods;
    auto ctx = Berthd::context(5);
    ASSERT_TRUE(e.d.runtime().ListPodSandboxStats(ctx.get(), {}, &pods).ok());
    EXPECT_EQ(pods.stats_size(), 2);
    // Generous: a call that waited on the shim would hit the 5 s deadline.
    EXPECT_LT(Clock::now() - begin, std::chrono::seconds(3));
  }
  EXPECT_TRUE(e.stop(healthy, 0).ok());
  EXPECT_TRUE(e.remove(healthy).ok());
  EXPECT_TRUE(stopPod(e.d, other_pod).ok());
  EXPECT_TRUE(removePod(e.d, other_pod).ok());
}

// Regression: ImageFsInfo reported what the last pull measured, with its time; writable layers
// filling up never showed.
TEST(StatsTest, ImageFsInfoFollowsWritableLayersWithoutPulls) {
  PodEnv e("imagefs", "[cri]\nstats_collect_period_seconds = 1\n");
  ASSERT_FALSE(e.pod.empty());
  v1::FilesystemUsage before = imageFs(e.d);
  std::string id = e.run(
      e.containerConfig("writer", {"sh", "-c",
                                   "dd if=/dev/zero of=/data20 bs=1M count=20 2>/dev/null; sync; "
                                   "sleep 3600"}));
  v1::FilesystemUsage after;
  auto deadline = Clock::now() + std::chrono::seconds(30);
  while (Clock::now() < deadline) {
    after = imageFs(e.d);
    if (after.used_bytes().value() >= before.used_bytes().value() + (20u << 20)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_GE(after.used_bytes().value(), before.used_bytes().value() + (20u << 20))
      << "before:\n"
      << before.DebugString() << "after:\n"
      << after.DebugString();
  EXPECT_GT(after.timestamp(), before.timestamp());
  EXPECT_GT(after.inodes_used().value(), before.inodes_used().value());
  // Current: measured within a few periods, though nothing was pulled.
  EXPECT_GT(after.timestamp(), unixNowNs() - 10'000'000'000);
  EXPECT_TRUE(e.stop(id, 0).ok());
}

}  // namespace
}  // namespace berth::testing
