// Id mappings, user namespace holders and idmapped trees, on this machine's kernel (as root).
#include "common/idmap.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "test_dir.h"

namespace berth {
namespace {

using testing::TestDir;

const IdMappings kPod = {{.container_id = 0, .host_id = 65536 * 31, .length = 65536}};

TEST(IdMappingsTest, KernelRulesAreCheckedAndNamed) {
  EXPECT_TRUE(validateIdMappings(kPod, "uids").ok());
  EXPECT_TRUE(validateIdMappings({{0, 1000, 1}, {1, 5000, 10}}, "uids").ok());
  auto says = [](const IdMappings& m) {
    return std::string(validateIdMappings(m, "uids").message());
  };
  EXPECT_EQ(says({}), "uids: no mappings");
  EXPECT_EQ(says({{0, 1000, 0}}), "uids: mapping 0:1000:0 is empty");
  EXPECT_EQ(says({{0, 4294967295u, 2}}), "uids: mapping 0:4294967295:2 goes past 4294967295");
  EXPECT_EQ(says({{0, 1000, 10}, {5, 2000, 10}}),
            "uids: mapping 5:2000:10 overlaps mapping 0:1000:10");
  EXPECT_EQ(says({{0, 1000, 10}, {20, 1005, 10}}),
            "uids: mapping 20:1005:10 overlaps mapping 0:1000:10");
  EXPECT_EQ(says({{1, 1000, 10}}), "uids: id 0 is not mapped");
  EXPECT_EQ(says(IdMappings(341, {0, 0, 1})), "uids: more than 340 mappings");
  EXPECT_TRUE(absl::IsInvalidArgument(validateIdMappings({}, "x")));
}

TEST(IdMappingsTest, HostIdsAndMapText) {
  IdMappings m = {{0, 1000, 10}, {100, 7000, 5}};
  EXPECT_EQ(hostIdOf(m, 0), 1000u);
  EXPECT_EQ(hostIdOf(m, 9), 1009u);
  EXPECT_EQ(hostIdOf(m, 10), std::nullopt);
  EXPECT_EQ(hostIdOf(m, 104), 7004u);
  EXPECT_EQ(formatIdMap(m), "0 1000 10\n100 7000 5\n");
}

std::string readAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(NamespaceHolderTest, HoldsAUserNamespaceWithTheMappingsAndWhatItOwns) {
  auto holder = NamespaceHolder::start(kPod, kPod, CLONE_NEWNET);
  ASSERT_TRUE(holder.ok()) << holder.status();
  const std::string pid = std::to_string(holder->pid());
  std::string map = readAll("/proc/" + pid + "/uid_map");
  std::istringstream in(map);
  uint64_t a, b, n;
  ASSERT_TRUE(in >> a >> b >> n) << map;
  EXPECT_EQ(a, 0u);
  EXPECT_EQ(b, 65536u * 31);
  EXPECT_EQ(n, 65536u);
  EXPECT_EQ(readAll("/proc/" + pid + "/setgroups"), "allow\n");
  char self[64] = {}, held[64] = {};
  ASSERT_GT(::readlink("/proc/self/ns/net", self, sizeof self - 1), 0);
  ASSERT_GT(::readlink(holder->nsPath("net").c_str(), held, sizeof held - 1), 0);
  EXPECT_STRNE(self, held) << "a network namespace of its own";
  pid_t child = holder->pid();
  *holder = NamespaceHolder::start(kPod, kPod).value();  // the first one ends
  EXPECT_NE(::kill(child, 0), 0) << "the first helper was reaped";
  // Bad mappings are the kernel's to refuse (overlapping host ranges written at once).
  auto bad = NamespaceHolder::start({{0, 1000, 10}, {10, 1005, 10}}, kPod);
  EXPECT_FALSE(bad.ok());
}

TEST(IdmappedTreeTest, FilesShowTheMappedOwnerWithoutChangingOnDisk) {
  TestDir dir;
  ASSERT_EQ(::mkdir((dir / "src").c_str(), 0755), 0);
  { std::ofstream(dir / "src/f") << "x"; }
  ASSERT_EQ(::chown((dir / "src/f").c_str(), 10, 20), 0);
  ASSERT_EQ(::mkdir((dir / "at").c_str(), 0755), 0);
  auto holder = NamespaceHolder::start(kPod, kPod);
  ASSERT_TRUE(holder.ok()) << holder.status();
  auto userns = openUserns(holder->nsPath("user"));
  ASSERT_TRUE(userns.ok()) << userns.status();
  auto tree = idmappedTree(dir / "src", userns->get(), true, true, MS_PRIVATE);
  ASSERT_TRUE(tree.ok()) << tree.status();
  // Reachable through its descriptor before it is attached anywhere.
  struct stat st {};
  ASSERT_EQ(::stat(("/proc/self/fd/" + std::to_string(tree->get()) + "/f").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 65536u * 31 + 10);
  ASSERT_TRUE(attachTree(tree->get(), dir / "at").ok());
  ASSERT_EQ(::stat((dir / "at/f").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 65536u * 31 + 10);
  EXPECT_EQ(st.st_gid, 65536u * 31 + 20);
  EXPECT_LT(::open((dir / "at/new").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600), 0)
      << "read-only";
  ASSERT_EQ(::stat((dir / "src/f").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 10u) << "nothing chowned";
  EXPECT_EQ(::umount2((dir / "at").c_str(), MNT_DETACH), 0);
  // Not twice: an idmapped mount cannot be idmapped again; proc cannot be idmapped at all.
  auto proc = idmappedTree("/proc", userns->get(), false, false, MS_PRIVATE);
  EXPECT_TRUE(absl::IsInvalidArgument(proc.status())) << proc.status();
}

TEST(IdmapProbeTest, ThisHostMakesIdmappedOverlaysAndLeavesNothing) {
  TestDir dir;
  EXPECT_EQ(idmappedOverlayUnsupported(dir.path()), "");
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
  EXPECT_NE(idmappedOverlayUnsupported("/proc"), "");
}

TEST(IdmapProbeTest, FoldersOthersCannotSearchAreNamed) {
  TestDir dir;
  ASSERT_EQ(::mkdir((dir / "a").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir((dir / "a/b").c_str(), 0755), 0);
  ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);
  EXPECT_EQ(unreachableByOthers(dir / "a/b"), "");
  ASSERT_EQ(::chmod((dir / "a").c_str(), 0700), 0);
  std::string why = unreachableByOthers(dir / "a/b");
  EXPECT_EQ(why.rfind(dir / "a cannot be searched by others (mode 0700)", 0), 0u) << why;
}

TEST(LetMappedRootThroughTest, OwnerRootGroupTheMappedRootMode0710) {
  TestDir dir;
  ASSERT_TRUE(letMappedRootThrough(dir.path(), kPod).ok());
  struct stat st {};
  ASSERT_EQ(::stat(dir.path().c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_gid, 65536u * 31);
  EXPECT_EQ(st.st_mode & 07777, 0710u);
  EXPECT_FALSE(letMappedRootThrough(dir.path(), {{1, 5, 5}}).ok());
}

}  // namespace
}  // namespace berth
