// The checkpoint archive's parts that need no CRIU: the writable layer's changes as CRI-O
// stores them, the archive itself, and the check that names why CRIU cannot be used.
#include "container/checkpoint.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <fstream>
#include <map>

#include "../common/test_dir.h"

namespace berth::container {
namespace {

using testing::TestDir;

struct Entry {
  mode_t type;
  std::string link;
  std::string data;
  uid_t uid;
};

std::map<std::string, Entry> readTar(const std::string& path) {
  std::map<std::string, Entry> out;
  archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  EXPECT_EQ(archive_read_open_filename(a, path.c_str(), 1 << 16), ARCHIVE_OK) << path;
  archive_entry* e = nullptr;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    Entry entry{archive_entry_filetype(e), archive_entry_symlink(e) ? archive_entry_symlink(e) : "",
                "", static_cast<uid_t>(archive_entry_uid(e))};
    char buf[256];
    for (la_ssize_t n; (n = archive_read_data(a, buf, sizeof buf)) > 0;) entry.data.append(buf, n);
    out[archive_entry_pathname(e)] = entry;
  }
  archive_read_free(a);
  return out;
}

TEST(RootfsDiffTest, ChangedFilesGoInTheTarAndWhiteoutsAreListedDeleted) {
  TestDir upper, out;
  ASSERT_EQ(::mkdir((upper / "etc").c_str(), 0755), 0);
  std::ofstream(upper / "etc/motd") << "changed\n";
  ASSERT_EQ(::chown((upper / "etc/motd").c_str(), 1234, 1234), 0);
  ASSERT_EQ(::symlink("motd", (upper / "etc/link").c_str()), 0);
  // overlayfs's whiteout for a deleted /etc/issue, and an opaque /var (its lower content gone).
  ASSERT_EQ(::mknod((upper / "etc/issue").c_str(), S_IFCHR | 0000, makedev(0, 0)), 0);
  ASSERT_EQ(::mkdir((upper / "var").c_str(), 0755), 0);
  ASSERT_EQ(::setxattr((upper / "var").c_str(), "trusted.overlay.opaque", "y", 1, 0), 0);
  std::ofstream(upper / "var/new") << "n";
  ASSERT_EQ(::mknod((upper / "gone").c_str(), S_IFCHR | 0000, makedev(0, 0)), 0);

  auto deleted = writeRootfsDiff(upper.path(), out / "diff.tar");
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, (std::vector<std::string>{"/etc/issue", "/gone"}));
  auto tar = readTar(out / "diff.tar");
  std::vector<std::string> names;
  for (const auto& [name, e] : tar) names.push_back(name);
  // Directories as tar names them, with a slash.
  EXPECT_EQ(names, (std::vector<std::string>{"etc/", "etc/link", "etc/motd", "var/",
                                             "var/.wh..wh..opq", "var/new"}));
  EXPECT_EQ(tar["etc/motd"].data, "changed\n");
  EXPECT_EQ(tar["etc/motd"].uid, 1234u);
  EXPECT_EQ(tar["etc/link"].type, AE_IFLNK);
  EXPECT_EQ(tar["etc/link"].link, "motd");
  EXPECT_EQ(tar["etc/"].type, AE_IFDIR);
  EXPECT_EQ(tar["var/.wh..wh..opq"].type, AE_IFREG);
}

TEST(RootfsDiffTest, AnArchiveOfAFolderHoldsEverythingBelowIt) {
  TestDir dir, out;
  ASSERT_EQ(::mkdir((dir / "checkpoint").c_str(), 0700), 0);
  std::ofstream(dir / "checkpoint/inventory.img") << "img";
  std::ofstream(dir / "spec.dump") << "{}";
  ASSERT_TRUE(writeTarOf(dir.path(), out / "a.tar").ok());
  auto tar = readTar(out / "a.tar");
  ASSERT_EQ(tar.size(), 3u);
  EXPECT_EQ(tar["checkpoint/inventory.img"].data, "img");
  EXPECT_EQ(tar["spec.dump"].data, "{}");
  EXPECT_FALSE(writeTarOf(dir.path(), "/nonexistent/dir/a.tar").ok());
}

TEST(CriuProblemTest, AMissingCriuIsNamed) {
  std::string why = criuProblem("/nonexistent/criu");
  EXPECT_EQ(why.rfind("CRIU is not installed (/nonexistent/criu not found)", 0), 0u) << why;
  // A program that is there but fails `check` is named with what it printed.
  TestDir dir;
  std::ofstream(dir / "criu")
      << "#!/bin/sh\n[ \"$1\" = --version ] && { echo 'Version: 9.9'; exit 0; }\n"
         "echo 'Error (criu/kerndat.c:1): something is missing' >&2; exit 1\n";
  ASSERT_EQ(::chmod((dir / "criu").c_str(), 0755), 0);
  why = criuProblem(dir / "criu");
  EXPECT_NE(why.find("CRIU cannot checkpoint on this host"), std::string::npos) << why;
  EXPECT_NE(why.find("Version: 9.9"), std::string::npos) << why;
  EXPECT_NE(why.find("Error (criu/kerndat.c:1): something is missing"), std::string::npos) << why;
  std::ofstream(dir / "ok") << "#!/bin/sh\nexit 0\n";
  ASSERT_EQ(::chmod((dir / "ok").c_str(), 0755), 0);
  EXPECT_EQ(criuProblem(dir / "ok"), "");
}

}  // namespace
}  // namespace berth::container
