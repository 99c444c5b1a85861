// Filesystem helpers.
#include "common/fs.h"

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <filesystem>

#include "test_dir.h"

namespace berth {
namespace {

TEST(FsTest, MakeDirsCreatesParentsWithMode) {
  testing::TestDir dir;
  std::string deep = dir / "a/b/c";
  ASSERT_TRUE(makeDirs(deep, 0711).ok());
  struct stat st {};
  ASSERT_EQ(::stat(deep.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0711u);
  EXPECT_TRUE(makeDirs(deep, 0700).ok()) << "existing directory is fine";
}

TEST(FsTest, MakeDirsRefusesAFile) {
  testing::TestDir dir;
  ASSERT_TRUE(writeFileAtomic(dir / "f", "x", 0600).ok());
  EXPECT_EQ(makeDirs(dir / "f", 0700).code(), absl::StatusCode::kFailedPrecondition);
}

TEST(FsTest, AtomicWriteThenReadRoundTrips) {
  testing::TestDir dir;
  std::string data(100000, 'z');
  ASSERT_TRUE(writeFileAtomic(dir / "f", data, 0640).ok());
  auto back = readFile(dir / "f");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, data);
  struct stat st {};
  ASSERT_EQ(::stat((dir / "f").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  ASSERT_TRUE(writeFileAtomic(dir / "f", "short", 0640).ok());
  EXPECT_EQ(*readFile(dir / "f"), "short");
}

TEST(FsTest, ReadMissingFileIsNotFound) {
  testing::TestDir dir;
  auto r = readFile(dir / "missing");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("missing"), std::string_view::npos);
}

TEST(FsTest, FindExecutable) {
  auto sh = findExecutable("sh");
  ASSERT_TRUE(sh.ok()) << sh.status();
  EXPECT_EQ(sh->front(), '/');
  EXPECT_EQ(findExecutable("berth-no-such-program").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE(findExecutable("/bin/sh").ok());
}

TEST(FsTest, RemoveAllIsIdempotent) {
  testing::TestDir dir;
  ASSERT_TRUE(makeDirs(dir / "x/y", 0700).ok());
  EXPECT_TRUE(removeAll(dir / "x").ok());
  EXPECT_TRUE(removeAll(dir / "x").ok());
}

TEST(FsTest, MountsUnderReadsMountinfoDeepestFirst) {
  testing::TestDir dir;
  ASSERT_TRUE(writeFileAtomic(dir / "mountinfo",
                              "22 1 0:21 / / rw - ext4 /dev/sda rw\n"
                              "30 22 0:30 / /r/pods rw - tmpfs t rw\n"
                              "31 30 0:31 / /r/pods/a/shm rw - tmpfs shm rw\n"
                              "32 30 0:32 / /r/pods/a/root\\040fs rw - overlay o rw\n"
                              "33 22 0:33 / /r/podsx rw - tmpfs t rw\n",
                              0600)
                  .ok());
  EXPECT_EQ(mountsUnder("/r/pods/a", dir / "mountinfo"),
            (std::vector<std::string>{"/r/pods/a/root fs", "/r/pods/a/shm"}));
  EXPECT_EQ(mountsUnder("/r/pods/", dir / "mountinfo"),
            (std::vector<std::string>{"/r/pods/a/root fs", "/r/pods/a/shm", "/r/pods"}));
  EXPECT_TRUE(mountsUnder("/r/pods/b", dir / "mountinfo").empty());
  EXPECT_TRUE(mountsUnder("/x", dir / "missing").empty());
}

// The undo of a pod whose rootfs could not be unmounted must not delete through the mount.
TEST(FsTest, RemoveAllNeverCrossesAMount) {
  testing::TestDir dir;
  ASSERT_TRUE(makeDirs(dir / "pod/rootfs", 0700).ok());
  ASSERT_EQ(::mount("t", (dir / "pod/rootfs").c_str(), "tmpfs", 0, nullptr), 0);
  ASSERT_TRUE(writeFileAtomic(dir / "pod/rootfs/data", "keep", 0600).ok());
  ASSERT_TRUE(writeFileAtomic(dir / "pod/file", "x", 0600).ok());
  absl::Status st = removeAll(dir / "pod");
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_NE(st.message().find(dir / "pod/rootfs"), std::string::npos) << st;
  EXPECT_TRUE(std::filesystem::exists(dir / "pod/rootfs/data"));
  EXPECT_TRUE(std::filesystem::exists(dir / "pod/file")) << "nothing removed";
  ASSERT_EQ(::umount2((dir / "pod/rootfs").c_str(), MNT_DETACH), 0);
  EXPECT_TRUE(removeAll(dir / "pod").ok());
  EXPECT_FALSE(std::filesystem::exists(dir / "pod"));
}

}  // namespace
}  // namespace berth
