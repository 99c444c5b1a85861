// Issue 12, point 5: another local user can reach no pod or container state (a pod's /dev/shm,
// its resolv.conf and shim socket, a container's rootfs, the metadata store), whatever berthd's
// root and state directories sit under.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "berthd_fixture.h"
#include "cri_calls.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "test_env.h"
#include "test_user.h"

namespace berth::testing {
namespace {

mode_t modeOf(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 07777;
  return st.st_mode & 07777;
}

TEST(SecurityStateTest, AnotherLocalUserReachesNoPodOrContainerState) {
  TestUser other;
  ASSERT_TRUE(other.ok());
  Berthd d;
  // As on a real node, the folders above root and state can be traversed by anyone.
  ASSERT_EQ(::chmod(d.dir().c_str(), 0755), 0);
  ASSERT_TRUE(d.start()) << d.log();
  ASSERT_TRUE(pullImage(d, envKey("BERTH_TEST_IMAGE_BUSYBOX")).ok());
  v1::PodSandboxConfig pc = hostNetworkPod("sec-state");
  std::string pod;
  ASSERT_TRUE(runPod(d, pc, &pod).ok()) << d.log();
  v1::ContainerConfig cc = sleepContainer("app", envKey("BERTH_TEST_IMAGE_BUSYBOX"));
  std::string ctr;
  ASSERT_TRUE(createContainer(d, pod, cc, pc, &ctr).ok()) << d.log();
  ASSERT_TRUE(startContainer(d, ctr).ok()) << d.log();

  const std::string pod_dir = d.state() + "/pods/" + pod;
  const std::string shm = pod_dir + "/shm";
  ASSERT_EQ(modeOf(shm), 01777u) << "the pod's shm is a world-writable tmpfs: guarded above";
  // 0711: a pod's own user namespace passes through to its rootfs; nobody lists them.
  EXPECT_EQ(modeOf(d.state() + "/pods"), 0711u);
  EXPECT_EQ(modeOf(pod_dir), 0700u);
  EXPECT_EQ(modeOf(d.state() + "/containers"), 0711u);
  EXPECT_EQ(modeOf(d.state() + "/containers/" + ctr), 0700u);
  EXPECT_EQ(modeOf(d.state() + "/netns"), 0700u);
  EXPECT_EQ(modeOf(d.root()), 0700u);

  const std::vector<std::string> files = {
      pod_dir + "/resolv.conf", pod_dir + "/hosts", d.state() + "/containers/" + ctr +
      "/rootfs/etc/passwd", d.root() + "/meta.db"};
  const std::vector<std::string> dirs = {d.state() + "/pods", pod_dir, shm,
                                         d.state() + "/containers", d.state() + "/netns",
                                         d.root()};
  // Each attempt that works sets a bit; the child's exit code is the sum.
  int reached = other.runAs([&] {
    int bits = 0;
    int fd = ::open((shm + "/planted").c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) {
      ::close(fd);
      bits |= 1;
    }
    for (const std::string& f : files) {
      fd = ::open(f.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd >= 0) {
        ::close(fd);
        bits |= 2;
      }
    }
    for (const std::string& dir : dirs) {
      if (DIR* p = ::opendir(dir.c_str())) {
        ::closedir(p);
        bits |= 4;
      }
    }
    return bits;
  });
  EXPECT_EQ(reached, 0) << "bit 1: wrote into the pod's shm; 2: read a state file; 4: listed a "
                           "state folder";
  struct stat st {};
  EXPECT_NE(::stat((shm + "/planted").c_str(), &st), 0);

  // Directories made by an older berth with looser modes are tightened at start-up.
  ASSERT_EQ(d.stop(), 0);
  ASSERT_EQ(::chmod((d.state() + "/pods").c_str(), 0755), 0);
  ASSERT_EQ(::chmod((d.state() + "/containers").c_str(), 0755), 0);
  ASSERT_TRUE(d.start()) << d.log();
  EXPECT_EQ(modeOf(d.state() + "/pods"), 0711u);
  EXPECT_EQ(modeOf(d.state() + "/containers"), 0711u);
}

// Issue 12, point 8: a container that sets no pids limit gets the configured default, so one
// fork bomb cannot take every pid of the node.
TEST(SecurityStateTest, ForkBombStopsAtTheDefaultPidsLimit) {
  Berthd d("[cri]\npids_limit = 20\n");
  ASSERT_TRUE(d.start()) << d.log();
  ASSERT_TRUE(pullImage(d, envKey("BERTH_TEST_IMAGE_BUSYBOX")).ok());
  v1::PodSandboxConfig pc = hostNetworkPod("sec-pids");
  std::string pod;
  ASSERT_TRUE(runPod(d, pc, &pod).ok()) << d.log();
  auto run = [&](const std::string& name) {
    v1::ContainerConfig cc = sleepContainer(name, envKey("BERTH_TEST_IMAGE_BUSYBOX"));
    std::string id;
    EXPECT_TRUE(createContainer(d, pod, cc, pc, &id).ok()) << d.log();
    EXPECT_TRUE(startContainer(d, id).ok()) << d.log();
    return id;
  };
  std::string ctr = run("bomb");
  v1::ExecSyncResponse out;
  ASSERT_TRUE(execSync(d, ctr,
                       {"sh", "-c",
                        "i=0; while [ $i -lt 40 ]; do sleep 30 & i=$((i+1)); done 2>&1; "
                        "echo started"},
                       &out, 30)
                  .ok());
  EXPECT_NE((out.stdout() + out.stderr()).find("can't fork"), std::string::npos)
      << out.stdout() << out.stderr();
  v1::ContainerStatusResponse st = containerStatus(d, ctr, /*verbose=*/true);
  auto info = nlohmann::json::parse(st.info().at("info"), nullptr, false);
  EXPECT_EQ(info["runtimeSpec"]["linux"]["resources"]["pids"]["limit"], 20) << st.info().at("info");
}

}  // namespace
}  // namespace berth::testing
