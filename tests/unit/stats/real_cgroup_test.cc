// On the machine's real cgroups (root only): a child that burns CPU and holds ~24 MiB is moved
// into fresh cgroups, and the collector must see it; cgroup files kept open notice their cgroup
// going away. Every cgroup and the child are removed.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "stats/cgroup_reader.h"
#include "stats/collector.h"
#include "stats/open_files.h"
#include "stats/sampling.h"
#include "stats/text_files.h"

namespace berth::stats {
namespace {

constexpr size_t kAlloc = 24u << 20;
constexpr uint64_t kMinMemory = 20u << 20;

// Owns what the test makes: cgroup directories and the child process.
class Made {
 public:
  ~Made() {
    if (child_ > 0) {
      ::kill(child_, SIGKILL);
      int status = 0;
      while (::waitpid(child_, &status, 0) < 0 && errno == EINTR) {
      }
    }
    for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) {
      // A cgroup can stay busy for a moment after its last process is reaped.
      for (int i = 0; i < 100 && ::rmdir(it->c_str()) != 0 && errno == EBUSY; ++i) {
        ::usleep(10'000);
      }
      struct stat st {};
      EXPECT_NE(::stat(it->c_str(), &st), 0) << "left behind: " << *it;
    }
  }
  bool mkdir(const std::string& dir) {
    if (::mkdir(dir.c_str(), 0755) != 0) return false;
    dirs_.push_back(dir);
    return true;
  }
  const std::vector<std::string>& dirs() const { return dirs_; }
  pid_t child_ = -1;

 private:
  std::vector<std::string> dirs_;
};

bool writeText(const std::string& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok;
}

// The child: waits to be moved, then touches kAlloc bytes and spins forever.
[[noreturn]] void childMain(int go_fd) {
  char c;
  while (::read(go_fd, &c, 1) < 0 && errno == EINTR) {
  }
  void* p = ::mmap(nullptr, kAlloc, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) ::_exit(1);
  // Volatile stores: a plain memset of memory nobody reads again is optimised away.
  volatile char* bytes = static_cast<volatile char*>(p);
  for (size_t i = 0; i < kAlloc; i += 4096) bytes[i] = 1;
  volatile uint64_t spin = 0;
  for (;;) spin = spin + 1;
}

TEST(RealCgroupTest, SeesCpuMemoryAndPidsOfAMovedChild) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to make cgroups";
  const std::string root = "/sys/fs/cgroup";
  CgroupLayout layout = detectCgroupLayout(root);
  std::set<std::string> mounts;
  for (const std::string* m : {&layout.cpuacct, &layout.memory, &layout.pids}) {
    if (!m->empty()) mounts.insert(*m);
  }
  // The unified tree is used when it has controllers (on this host: hugetlb only).
  if (!layout.unified.empty() &&
      !readTextFile(layout.unified + "/cgroup.controllers").value_or("").empty()) {
    mounts.insert(layout.unified);
  }
  if (mounts.empty()) GTEST_SKIP() << "no cgroup hierarchy found under " << root;

  const std::string name = "/berth-stats-test-" + std::to_string(::getpid());
  Made made;
  for (const std::string& m : mounts) {
    ASSERT_TRUE(made.mkdir(m + name)) << m + name << ": " << std::strerror(errno);
  }

  int go[2];
  ASSERT_EQ(::pipe2(go, O_CLOEXEC), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(go[1]);
    childMain(go[0]);
  }
  made.child_ = pid;
  ::close(go[0]);
  for (const std::string& dir : made.dirs()) {
    EXPECT_TRUE(writeText(dir + "/cgroup.procs", std::to_string(pid)))
        << dir << ": " << std::strerror(errno);
  }
  // Memory is charged where the child is when it touches it, so allocation starts only now.
  ASSERT_EQ(::write(go[1], "x", 1), 1);
  ::close(go[1]);

  SamplingPaths o;
  Target t{.cgroup_path = name, .pid = pid};
  Sample first = sampleTarget(o, t, nullptr, absl::GetCurrentTimeNanos());
  ASSERT_TRUE(first.cpu) << "no cpu usage for " << name;
  Sample last;
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  for (;;) {
    absl::SleepFor(absl::Milliseconds(100));
    last = sampleTarget(o, t, &first, absl::GetCurrentTimeNanos());
    bool cpu_rose = last.cpu && last.cpu->usage_core_nano_seconds >=
                                    first.cpu->usage_core_nano_seconds + 100'000'000;
    bool memory_in = !last.memory || last.memory->usage_bytes >= kMinMemory;
    if ((cpu_rose && memory_in) || absl::Now() > deadline) break;
  }
  ASSERT_TRUE(last.cpu);
  EXPECT_GE(last.cpu->usage_core_nano_seconds, first.cpu->usage_core_nano_seconds + 100'000'000);
  EXPECT_GT(last.cpu->usage_nano_cores, 0u);
  // Memory and pids are expected wherever their controller is there for the new cgroup.
  bool has_memory =
      !layout.memory.empty() || readTextFile(layout.unified + name + "/memory.current").has_value();
  bool has_pids =
      !layout.pids.empty() || readTextFile(layout.unified + name + "/pids.current").has_value();
  if (has_memory) {
    ASSERT_TRUE(last.memory);
    EXPECT_GE(last.memory->usage_bytes, kMinMemory);
    EXPECT_GT(last.memory->working_set_bytes, 0u);
  }
  if (has_pids) {
    ASSERT_TRUE(last.process_count);
    EXPECT_GE(*last.process_count, 1u);
  }
  EXPECT_TRUE(last.network);  // the child shares our network namespace
}

// A kept cgroup file stops reading when its cgroup is removed (ENODEV, unlike a removed plain
// file); OpenFiles then closes it and opens the path afresh, so a cgroup made again under the
// same path is read, not the old one's last values.
TEST(RealCgroupTest, KeptFilesFollowTheirCgroupBeingRemovedAndMadeAgain) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to make cgroups";
  CgroupLayout layout = detectCgroupLayout("/sys/fs/cgroup");
  std::string mount = !layout.cpuacct.empty() ? layout.cpuacct : layout.unified;
  if (mount.empty()) GTEST_SKIP() << "no cpu accounting hierarchy";
  const std::string name = "/berth-open-files-test-" + std::to_string(::getpid());
  const std::string dir = mount + name;
  auto budget = std::make_shared<FdBudget>(10);
  OpenFiles files(budget);
  {
    // The cgroup is removed at the end of this block.
    Made made;
    ASSERT_TRUE(made.mkdir(dir)) << dir << ": " << std::strerror(errno);
    OpenFiles::Lease lease = files.tryUse();
    EXPECT_TRUE(readCpu(layout, name, 1, lease.source()));
    EXPECT_TRUE(readCpu(layout, name, 2, lease.source()));  // from the kept descriptor
  }
  EXPECT_EQ(files.openCount(), 1u);
  {
    OpenFiles::Lease lease = files.tryUse();
    EXPECT_FALSE(readCpu(layout, name, 3, lease.source())) << "a removed cgroup has no usage";
  }
  EXPECT_EQ(files.openCount(), 0u);
  EXPECT_EQ(budget->left(), 10);
  Made again;
  ASSERT_TRUE(again.mkdir(dir));
  OpenFiles::Lease lease = files.tryUse();
  std::optional<CpuSample> fresh = readCpu(layout, name, 4, lease.source());
  ASSERT_TRUE(fresh);
  EXPECT_EQ(fresh->usage_core_nano_seconds, 0u) << "the new cgroup, which ran nothing";
}

// Descriptors of this process open on files whose path starts with `prefix`.
size_t openBelow(const std::string& prefix) {
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    std::string target = std::filesystem::read_symlink(e.path(), ec).string();
    if (!ec && target.rfind(prefix, 0) == 0) ++n;
  }
  return n;
}

// The collector lets go of every kept file of a cgroup that was removed, at its next round
// and with nobody asking for stats: kept open, they would hold the removed cgroup in the
// kernel. (Reads stop at the first file that is gone, so the others were never closed.)
TEST(RealCgroupTest, CollectorClosesAllFilesOfARemovedCgroup) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to make cgroups";
  CgroupLayout layout = detectCgroupLayout("/sys/fs/cgroup");
  std::set<std::string> mounts;
  for (const std::string* m : {&layout.cpuacct, &layout.memory, &layout.pids, &layout.unified}) {
    if (!m->empty()) mounts.insert(*m);
  }
  if (mounts.empty()) GTEST_SKIP() << "no cgroup hierarchy found";
  const std::string name = "/berth-collector-test-" + std::to_string(::getpid());
  Collector c(CollectorOptions{.interval = absl::Hours(1)});
  auto open_files = [&] {
    size_t n = 0;
    for (const std::string& m : mounts) n += openBelow(m + name + "/");
    return n;
  };
  {
    Made made;
    for (const std::string& m : mounts) ASSERT_TRUE(made.mkdir(m + name)) << m + name;
    c.track("t", Target{.cgroup_path = name});
    c.collectNow();
    ASSERT_GT(open_files(), 1u) << "the files were not kept open";
  }  // the cgroups are removed here
  c.collectNow();
  EXPECT_EQ(open_files(), 0u);
  EXPECT_TRUE(c.latest("t").has_value()) << "the last values stay";
}

}  // namespace
}  // namespace berth::stats
