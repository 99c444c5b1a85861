// Filesystem helpers.
#include "common/fs.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

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

}  // namespace
}  // namespace berth
