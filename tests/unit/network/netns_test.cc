// Tests for pinned network namespaces. They need root (mount, unshare) and clean up every
// namespace and mount they make.
#include "network/netns.h"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "common/fs.h"
#include "common/test_dir.h"
#include "gtest/gtest.h"

namespace berth::network {
namespace {

// Mount points in /proc/self/mountinfo that start with `prefix`.
int mountsUnder(const std::string& prefix) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, dev, root, mount_point;
    fields >> id >> parent >> dev >> root >> mount_point;
    if (mount_point.rfind(prefix, 0) == 0) ++n;
  }
  return n;
}

struct Inside {
  bool entered = false;
  bool lo_up = false;
  std::vector<std::string> links;
  bool eth0 = true;
};

// Looks at the namespace from a thread that setns()es into it (netns is per thread).
Inside lookInside(const std::string& path) {
  Inside r;
  std::thread t([&] {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    bool ok = ::setns(fd, CLONE_NEWNET) == 0;
    ::close(fd);
    if (!ok) return;
    r.entered = true;
    int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr {};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    if (s >= 0 && ::ioctl(s, SIOCGIFFLAGS, &ifr) == 0) r.lo_up = (ifr.ifr_flags & IFF_UP) != 0;
    if (s >= 0) ::close(s);
    if (struct if_nameindex* list = ::if_nameindex(); list != nullptr) {
      for (auto* p = list; p->if_index != 0; ++p) r.links.emplace_back(p->if_name);
      ::if_freenameindex(list);
    }
    r.eth0 = ::if_nametoindex("eth0") != 0;
  });
  t.join();
  return r;
}

class NetnsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  }
  void TearDown() override {
    ASSERT_TRUE(releaseNetnsDir(dir_).ok());
    EXPECT_EQ(mountsUnder(tmp_.path()), 0);
  }
  testing::TestDir tmp_;
  std::string dir_ = tmp_ / "netns";
  std::string path_ = dir_ + "/pod1";
};

TEST_F(NetnsTest, CreateInspectRemove) {
  ASSERT_TRUE(createNetns(path_).ok());
  EXPECT_EQ(mountsUnder(path_), 1);
  EXPECT_FALSE(netnsClosed(path_));
  struct stat pinned {
  }, own{};
  ASSERT_EQ(::stat(path_.c_str(), &pinned), 0);
  ASSERT_EQ(::stat("/proc/self/ns/net", &own), 0);
  EXPECT_NE(pinned.st_ino, own.st_ino);

  Inside in = lookInside(path_);
  EXPECT_TRUE(in.entered);
  EXPECT_TRUE(in.lo_up);
  EXPECT_EQ(in.links, std::vector<std::string>{"lo"});
  EXPECT_FALSE(in.eth0);

  ASSERT_TRUE(removeNetns(path_).ok());
  EXPECT_EQ(mountsUnder(path_), 0);
  EXPECT_NE(::access(path_.c_str(), F_OK), 0);
  EXPECT_TRUE(netnsClosed(path_));
  EXPECT_TRUE(removeNetns(path_).ok());  // twice is fine
}

TEST_F(NetnsTest, PinsDoNotShowOutsideTheDirMount) {
  ASSERT_TRUE(createNetns(path_).ok());
  // The directory mount and one pin: nothing doubled by propagation.
  EXPECT_EQ(mountsUnder(dir_), 2);
  ASSERT_TRUE(removeNetns(path_).ok());
}

TEST_F(NetnsTest, CreateTwiceIsAlreadyExists) {
  ASSERT_TRUE(createNetns(path_).ok());
  absl::Status st = createNetns(path_);
  EXPECT_EQ(st.code(), absl::StatusCode::kAlreadyExists) << st;
  EXPECT_NE(st.message().find(path_), absl::string_view::npos);
  EXPECT_FALSE(netnsClosed(path_));  // the first is untouched
  ASSERT_TRUE(removeNetns(path_).ok());
}

TEST_F(NetnsTest, StaleFileIsReplaced) {
  ASSERT_TRUE(makeDirs(dir_, 0755).ok());
  ASSERT_TRUE(writeFileAtomic(path_, "", 0444).ok());
  EXPECT_TRUE(netnsClosed(path_));
  ASSERT_TRUE(createNetns(path_).ok());
  EXPECT_FALSE(netnsClosed(path_));
  ASSERT_TRUE(removeNetns(path_).ok());
}

TEST_F(NetnsTest, TwentyCyclesLeaveNoMounts) {
  for (int i = 0; i < 20; ++i) {
    std::string p = dir_ + "/cycle" + std::to_string(i);
    ASSERT_TRUE(createNetns(p).ok()) << i;
    ASSERT_TRUE(removeNetns(p).ok()) << i;
  }
  EXPECT_EQ(mountsUnder(dir_ + "/"), 0);
  EXPECT_EQ(mountsUnder(dir_), 1);  // the directory's own mount, until released
}

TEST_F(NetnsTest, SeveralAtOnceAreDistinct) {
  std::vector<std::string> paths;
  for (int i = 0; i < 3; ++i) paths.push_back(dir_ + "/p" + std::to_string(i));
  std::vector<std::thread> threads;
  std::vector<absl::Status> results(paths.size());
  for (size_t i = 0; i < paths.size(); ++i) {
    threads.emplace_back([&, i] { results[i] = createNetns(paths[i]); });
  }
  for (auto& t : threads) t.join();
  std::set<ino_t> inodes;
  for (size_t i = 0; i < paths.size(); ++i) {
    ASSERT_TRUE(results[i].ok()) << results[i];
    struct stat st {};
    ASSERT_EQ(::stat(paths[i].c_str(), &st), 0);
    inodes.insert(st.st_ino);
  }
  EXPECT_EQ(inodes.size(), paths.size());
  for (const auto& p : paths) ASSERT_TRUE(removeNetns(p).ok());
}

// A mount namespace copied while the pin exists (as any later-started daemon's would be) holds
// a copy of the pin; removeNetns must drop that copy too (unlinking the mount point does), or
// the namespace never goes away.
TEST_F(NetnsTest, RemoveReachesCopiesInOtherMountNamespaces) {
  ASSERT_TRUE(createNetns(path_).ok());
  int ready[2], go[2];
  ASSERT_EQ(::pipe(ready), 0);
  ASSERT_EQ(::pipe(go), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    char b = 0;
    bool copied = ::unshare(CLONE_NEWNS) == 0 && !netnsClosed(path_);
    b = copied ? 1 : 0;
    if (::write(ready[1], &b, 1) != 1) _exit(3);
    if (::read(go[0], &b, 1) != 1) _exit(4);
    _exit(netnsClosed(path_) ? 0 : 1);
  }
  char b = 0;
  ASSERT_EQ(::read(ready[0], &b, 1), 1);
  EXPECT_EQ(b, 1) << "child could not copy the mount namespace";
  EXPECT_TRUE(removeNetns(path_).ok());
  ASSERT_EQ(::write(go[1], &b, 1), 1);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  for (int fd : {ready[0], ready[1], go[0], go[1]}) ::close(fd);
}

TEST_F(NetnsTest, BadPathsLeaveNothing) {
  EXPECT_EQ(createNetns("relative/ns").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(createNetns("").code(), absl::StatusCode::kInvalidArgument);
  // The parent "directory" is a regular file.
  ASSERT_TRUE(writeFileAtomic(tmp_ / "file", "x", 0644).ok());
  EXPECT_FALSE(createNetns(tmp_ / "file/ns").ok());
  EXPECT_EQ(mountsUnder(tmp_.path()), 0);
}

TEST_F(NetnsTest, RemoveMissingIsOk) {
  EXPECT_TRUE(removeNetns(dir_ + "/never").ok());
  EXPECT_TRUE(netnsClosed(dir_ + "/never"));
  EXPECT_TRUE(releaseNetnsDir(dir_).ok());
}

}  // namespace
}  // namespace berth::network
