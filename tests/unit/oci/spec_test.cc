// Tests for the default OCI spec, cgroup paths and bundle writing.
#include "oci/spec.h"

#include <sys/stat.h>

#include "common/fs.h"
#include "common/test_dir.h"
#include "gtest/gtest.h"

namespace berth::oci {
namespace {

using nlohmann::json;

std::vector<std::string> mountDestinations(const json& spec) {
  std::vector<std::string> out;
  for (const auto& m : spec["mounts"]) out.push_back(m["destination"]);
  return out;
}

TEST(DefaultSpecTest, MatchesContainerdShape) {
  json s = defaultSpec();
  EXPECT_EQ(s["ociVersion"], "1.0.2-dev");
  EXPECT_EQ(s["process"]["terminal"], false);
  EXPECT_EQ(s["process"]["user"], (json{{"uid", 0}, {"gid", 0}}));
  EXPECT_EQ(s["process"]["cwd"], "/");
  EXPECT_EQ(s["process"]["env"][0],
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  EXPECT_EQ(s["process"]["noNewPrivileges"], true);
  const json& caps = s["process"]["capabilities"];
  EXPECT_EQ(caps["bounding"].size(), 14u);
  EXPECT_EQ(caps["bounding"][0], "CAP_CHOWN");
  EXPECT_EQ(caps["bounding"][13], "CAP_AUDIT_WRITE");
  EXPECT_EQ(caps["effective"], caps["bounding"]);
  EXPECT_EQ(caps["permitted"], caps["bounding"]);
  EXPECT_EQ(s["root"], (json{{"path", "rootfs"}, {"readonly", true}}));
  EXPECT_EQ(mountDestinations(s), (std::vector<std::string>{"/proc", "/dev", "/dev/pts", "/dev/shm",
                                                            "/dev/mqueue", "/sys"}));
  EXPECT_EQ(s["mounts"][1]["options"], (json{"nosuid", "strictatime", "mode=755", "size=65536k"}));
  EXPECT_EQ(s["mounts"][5]["options"], (json{"nosuid", "noexec", "nodev", "ro"}));
  EXPECT_EQ(s["linux"]["resources"]["devices"],
            (json::array({{{"allow", false}, {"access", "rwm"}}})));
  EXPECT_EQ(s["linux"]["namespaces"].size(), 5u);
  EXPECT_EQ(s["linux"]["maskedPaths"].size(), 10u);
  EXPECT_EQ(s["linux"]["readonlyPaths"],
            (json{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}));
}

struct CgroupCase {
  std::string parent;
  std::string want;  // empty: InvalidArgument
};

class CgroupPathTest : public ::testing::TestWithParam<CgroupCase> {};

TEST_P(CgroupPathTest, ValidatesAndJoins) {
  auto got = cgroupsPath(GetParam().parent, "abc");
  if (GetParam().want.empty()) {
    ASSERT_FALSE(got.ok()) << *got;
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(got.status().message().find("cgroup parent"), absl::string_view::npos);
  } else {
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, GetParam().want);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, CgroupPathTest,
    ::testing::Values(CgroupCase{"/berth", "/berth/abc"}, CgroupCase{"/", "/abc"},
                      CgroupCase{"/kubepods/burstable/pod1/", "/kubepods/burstable/pod1/abc"},
                      CgroupCase{"//a//b", "/a/b/abc"}, CgroupCase{"", ""},
                      CgroupCase{"kubepods.slice", ""}, CgroupCase{"/a/../b", ""},
                      CgroupCase{"/a/./b", ""}, CgroupCase{"/..", ""}));

TEST(CgroupPathTest, RejectsBadId) {
  EXPECT_FALSE(cgroupsPath("/berth", "").ok());
  EXPECT_FALSE(cgroupsPath("/berth", "a/b").ok());
  EXPECT_FALSE(cgroupsPath("/berth", "..").ok());
}

TEST(WriteBundleTest, WritesConfigJson0600) {
  testing::TestDir dir;
  std::string bundle = dir / "bundles/abc";
  json spec = defaultSpec();
  ASSERT_TRUE(writeBundle(bundle, spec).ok());
  struct stat st {};
  ASSERT_EQ(::stat((bundle + "/config.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  auto text = readFile(bundle + "/config.json");
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(json::parse(*text), spec);

  // Rewriting replaces the file and leaves no temp file beside it.
  spec["process"]["args"] = {"/pause"};
  ASSERT_TRUE(writeBundle(bundle, spec).ok());
  EXPECT_EQ(json::parse(*readFile(bundle + "/config.json")), spec);
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(bundle)) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1);
}

TEST(WriteBundleTest, InvalidUtf8IsInvalidArgument) {
  testing::TestDir dir;
  json spec = defaultSpec();
  spec["annotations"] = {{"bad", std::string("\xff\xfe")}};
  auto st = writeBundle(dir / "b", spec);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
}

}  // namespace
}  // namespace berth::oci
