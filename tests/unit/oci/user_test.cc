// Tests for user resolution against a fake rootfs, including hostile rootfs layouts.
#include "oci/user.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/test_dir.h"
#include "gtest/gtest.h"

namespace berth::oci {
namespace {

using testing::TestDir;

constexpr char kPasswd[] =
    "root:x:0:0:root:/root:/bin/sh\n"
    "# a comment\n"
    "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
    "broken line\n"
    "web:x:1000:1000::/home/web:/bin/sh\n"
    "nogroup-user:x:1001:4242::/:/bin/sh\n";
constexpr char kGroup[] =
    "root:x:0:\n"
    "daemon:x:1:\n"
    "wheel:x:10:root,web\n"
    "web:x:1000:web\n"
    "audio:x:29:web\n"
    "staff:x:50:\n";

void writeFile(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << text;
}

class UserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    writeFile(root_ / "etc/passwd", kPasswd);
    writeFile(root_ / "etc/group", kGroup);
  }
  TestDir root_;
};

struct UserCase {
  const char* name;
  UserRequest req;
  int64_t uid;
  int64_t gid;
  std::vector<int64_t> gids;
};

TEST_F(UserTest, Forms) {
  const UserCase cases[] = {
      {"default is root with its groups", {}, 0, 0, {0, 10}},
      {"run_as_user known", {.run_as_user = 1000}, 1000, 1000, {29, 10, 1000}},
      {"run_as_user unknown gets gid 0", {.run_as_user = 5000}, 5000, 0, {0}},
      {"run_as_user with group", {.run_as_user = 1000, .run_as_group = 7}, 1000, 7, {7, 10, 29}},
      {"run_as_username", {.run_as_username = "web"}, 1000, 1000, {10, 29, 1000}},
      {"username wins over uid",
       {.run_as_user = 1, .run_as_username = "web"},
       1000,
       1000,
       {10, 29, 1000}},
      {"supplemental groups merged",
       {.run_as_user = 1, .supplemental_groups = {50, 1, 3000}},
       1,
       1,
       {1, 50, 3000}},
      {"image uid", {.image_user = "1000"}, 1000, 1000, {10, 29, 1000}},
      {"image uid:gid", {.image_user = "1000:5"}, 1000, 5, {5, 10, 29}},
      {"image name", {.image_user = "daemon"}, 1, 1, {1}},
      {"image name:group", {.image_user = "web:staff"}, 1000, 50, {10, 29, 50}},
      {"image uid:group", {.image_user = "2000:audio"}, 2000, 29, {29}},
      {"image name:gid", {.image_user = "web:77"}, 1000, 77, {10, 29, 77}},
      {"config user overrides image user", {.run_as_user = 0, .image_user = "web"}, 0, 0, {0, 10}},
      {"passwd gid without group entry", {.run_as_username = "nogroup-user"}, 1001, 4242, {4242}},
      // supplemental_groups_policy Strict: /etc/group memberships are left out.
      {"strict: primary group only",
       {.run_as_user = 1000, .strict_groups = true},
       1000,
       1000,
       {1000}},
      {"strict: with supplemental groups",
       {.run_as_username = "web", .supplemental_groups = {3000, 50}, .strict_groups = true},
       1000,
       1000,
       {50, 1000, 3000}},
      {"strict: run_as_group wins over the passwd group",
       {.run_as_user = 1000, .run_as_group = 7, .strict_groups = true},
       1000,
       7,
       {7}},
      {"strict: group by name still resolves",
       {.image_user = "web:staff", .strict_groups = true},
       1000,
       50,
       {50}},
  };
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.name);
    auto u = resolveUser(root_.path(), tc.req);
    ASSERT_TRUE(u.ok()) << u.status();
    EXPECT_EQ(u->uid, tc.uid);
    EXPECT_EQ(u->gid, tc.gid);
    std::vector<int64_t> want = tc.gids;
    std::sort(want.begin(), want.end());
    EXPECT_EQ(u->additional_gids, want);
  }
}

struct ErrorCase {
  const char* name;
  UserRequest req;
  absl::StatusCode code;
  const char* message_part;
};

TEST_F(UserTest, Errors) {
  const ErrorCase cases[] = {
      {"group without user",
       {.run_as_group = 5},
       absl::StatusCode::kInvalidArgument,
       "group without a user"},
      {"unknown username",
       {.run_as_username = "nobody"},
       absl::StatusCode::kNotFound,
       "user \"nobody\""},
      {"unknown image user",
       {.image_user = "ghost"},
       absl::StatusCode::kNotFound,
       "user \"ghost\""},
      {"unknown image group",
       {.image_user = "web:ghosts"},
       absl::StatusCode::kNotFound,
       "group \"ghosts\""},
      {"image group without user",
       {.image_user = ":10"},
       absl::StatusCode::kInvalidArgument,
       "without a user"},
      {"negative uid", {.run_as_user = -1}, absl::StatusCode::kInvalidArgument, "run_as_user"},
      {"uid too large",
       {.image_user = "4294967295"},
       absl::StatusCode::kInvalidArgument,
       "out of range"},
      {"bad supplemental group",
       {.supplemental_groups = {-3}},
       absl::StatusCode::kInvalidArgument,
       "supplemental group"},
  };
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.name);
    auto u = resolveUser(root_.path(), tc.req);
    ASSERT_FALSE(u.ok());
    EXPECT_EQ(u.status().code(), tc.code) << u.status();
    EXPECT_NE(u.status().message().find(tc.message_part), absl::string_view::npos) << u.status();
  }
}

TEST(UserNoFilesTest, UidsWorkNamesFail) {
  TestDir root;  // an image without /etc
  auto u = resolveUser(root.path(), {.run_as_user = 33});
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->uid, 33);
  EXPECT_EQ(u->gid, 0);
  EXPECT_EQ(u->additional_gids, std::vector<int64_t>{0});
  EXPECT_TRUE(absl::IsNotFound(resolveUser(root.path(), {.run_as_username = "root"}).status()));
}

// The rootfs is untrusted: /etc/passwd pointing out of it must resolve inside it.
TEST(UserHostileRootfsTest, SymlinksStayInsideTheRootfs) {
  TestDir outside;
  writeFile(outside / "passwd", "evil:x:4242:4242::/:/bin/sh\n");
  const std::string targets[] = {
      outside / "passwd",                                 // absolute, out of the rootfs
      "../../../../../../../../" + (outside / "passwd"),  // climbing out
      "/etc/shadow",                                      // the host's shadow file
  };
  for (const auto& target : targets) {
    SCOPED_TRACE(target);
    TestDir root;
    std::filesystem::create_directories(root / "etc");
    ASSERT_EQ(::symlink(target.c_str(), (root / "etc/passwd").c_str()), 0);
    auto text = readFileInRoot(root.path(), "/etc/passwd");
    EXPECT_TRUE(absl::IsNotFound(text.status())) << text.status();
    auto evil = resolveUser(root.path(), {.run_as_username = "evil"});
    EXPECT_TRUE(absl::IsNotFound(evil.status())) << evil.status();
    auto host_root = resolveUser(root.path(), {.run_as_username = "root"});
    EXPECT_TRUE(absl::IsNotFound(host_root.status())) << host_root.status();
  }
}

TEST(UserHostileRootfsTest, AbsoluteSymlinkResolvesInRoot) {
  TestDir root;
  writeFile(root / "lib/passwd", "inside:x:7:8::/:/bin/sh\n");
  std::filesystem::create_directories(root / "etc");
  ASSERT_EQ(::symlink("/lib/passwd", (root / "etc/passwd").c_str()), 0);
  auto u = resolveUser(root.path(), {.run_as_username = "inside"});
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->uid, 7);
  EXPECT_EQ(u->gid, 8);
}

TEST(UserHostileRootfsTest, FifoAndOversizedFilesAreRefused) {
  TestDir root;
  std::filesystem::create_directories(root / "etc");
  ASSERT_EQ(::mkfifo((root / "etc/passwd").c_str(), 0644), 0);
  auto fifo = readFileInRoot(root.path(), "/etc/passwd");
  EXPECT_EQ(fifo.status().code(), absl::StatusCode::kInvalidArgument) << fifo.status();

  writeFile(root / "etc/group", std::string(2048, 'x'));
  auto big = readFileInRoot(root.path(), "/etc/group", 1024);
  EXPECT_EQ(big.status().code(), absl::StatusCode::kInvalidArgument) << big.status();
  auto fits = readFileInRoot(root.path(), "/etc/group", 4096);
  EXPECT_TRUE(fits.ok()) << fits.status();
}

TEST(UserParseTest, SkipsMalformedLines) {
  auto p = parsePasswd("a:x:1:2\nb:x:notanumber:2:\n:x:3:3:\nc:x:-1:0:\nd:x:4:5:g:/:/bin/sh");
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].name, "a");
  EXPECT_EQ(p[1].uid, 4);
  auto g = parseGroup("g:x:5:a, b,c\nh:x:6\nbad:x:z:a\n");
  ASSERT_EQ(g.size(), 2u);
  EXPECT_EQ(g[0].members, (std::vector<std::string>{"a", " b", "c"}));
  EXPECT_TRUE(g[1].members.empty());
}

}  // namespace
}  // namespace berth::oci
