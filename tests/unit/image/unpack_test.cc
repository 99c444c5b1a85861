// Tests for unpackLayer: every entry type and attribute, overlay whiteouts, replacement, and
// layers that try to write outside the snapshot root.
#include "image/unpack.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "unpack_test_tar.h"

namespace berth::image {
namespace {

using testing::Compression;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::TarBuilder;
using testing::TarEntry;
using testing::TempDir;

std::string readAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

struct stat lstatOrDie(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path << ": " << std::strerror(errno);
  return st;
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

std::string getXattr(const std::string& path, const char* name) {
  char buf[256];
  ssize_t n = ::lgetxattr(path.c_str(), name, buf, sizeof buf);
  return n < 0 ? std::string("<") + std::strerror(errno) + ">"
               : std::string(buf, static_cast<size_t>(n));
}

// Whether the filesystem of `dir` takes user.* xattrs (tmpfs and some overlays do not).
bool userXattrsSupported(const std::string& dir) {
  std::string probe = dir + "/xattr-probe";
  std::ofstream(probe).put('x');
  bool ok = ::setxattr(probe.c_str(), "user.probe", "1", 1, 0) == 0;
  ::unlink(probe.c_str());
  return ok;
}

class UnpackTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(::mkdir(root().c_str(), 0755), 0); }

  std::string root() const { return dir_ / "root"; }
  std::string at(const std::string& rel) const { return root() + "/" + rel; }

  absl::StatusOr<UnpackStats> unpack(const TarBuilder& tar, Compression c = Compression::kGzip) {
    std::string layer = dir_ / absl::StrCat("layer", ++layers_, ".tar");
    tar.write(layer, c);
    return unpackLayer(layer, root());
  }

  TempDir dir_;
  int layers_ = 0;
};

class UnpackCompressionTest : public UnpackTest,
                              public ::testing::WithParamInterface<Compression> {};

TEST_P(UnpackCompressionTest, AppliesEveryEntryType) {
  constexpr int64_t kDirMtime = 1600000000;
  constexpr int64_t kFileMtime = 1500000000;
  TarBuilder tar;
  tar.dir("etc/")
      .file("etc/hosts", "127.0.0.1 localhost\n")
      .symlink("etc/localtime", "/usr/share/zoneinfo/UTC")
      .hardlink("etc/hosts.bak", "etc/hosts")
      .add({.name = "data/",
            .type = AE_IFDIR,
            .perm = 0750,
            .uid = 1002,
            .gid = 1002,
            .mtime = kDirMtime})
      .add({.name = "data/owned",
            .perm = 0640,
            .content = "mine",
            .uid = 1002,
            .gid = 1002,
            .mtime = kFileMtime})
      .add({.name = "dev/null", .type = AE_IFCHR, .perm = 0666, .major = 1, .minor = 3})
      .add({.name = "dev/sda", .type = AE_IFBLK, .perm = 0660, .major = 8, .minor = 0})
      .add({.name = "run/fifo", .type = AE_IFIFO, .perm = 0620})
      .add({.name = "bin/su", .perm = 04755, .content = "#!/bin/true\n", .uid = 1002, .gid = 1002})
      .add({.name = "bin/wall", .perm = 02755, .content = "w", .gid = 5})
      .dir("tmp/", 01777)
      .add({.name = "etc/attr", .content = "x", .xattrs = {{"user.foo", "bar"}}})
      .file("deep/a/b/c", "implicit parents");
  absl::StatusOr<UnpackStats> stats = unpack(tar, GetParam());
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->entries, 14u);
  EXPECT_EQ(stats->bytes, 20u + 4 + 12 + 1 + 1 + 16);

  EXPECT_EQ(readAll(at("etc/hosts")), "127.0.0.1 localhost\n");
  struct stat link = lstatOrDie(at("etc/localtime"));
  EXPECT_TRUE(S_ISLNK(link.st_mode));
  char target[256] = {};
  ASSERT_GT(::readlink(at("etc/localtime").c_str(), target, sizeof target - 1), 0);
  EXPECT_STREQ(target, "/usr/share/zoneinfo/UTC");
  EXPECT_EQ(lstatOrDie(at("etc/hosts")).st_ino, lstatOrDie(at("etc/hosts.bak")).st_ino);
  EXPECT_EQ(lstatOrDie(at("etc/hosts")).st_nlink, 2u);

  struct stat data = lstatOrDie(at("data"));
  EXPECT_TRUE(S_ISDIR(data.st_mode));
  EXPECT_EQ(data.st_mode & 07777, 0750u);
  EXPECT_EQ(data.st_uid, 1002u);
  EXPECT_EQ(data.st_gid, 1002u);
  EXPECT_EQ(data.st_mtim.tv_sec, kDirMtime) << "directory times are set after its contents";
  struct stat owned = lstatOrDie(at("data/owned"));
  EXPECT_EQ(owned.st_mode & 07777, 0640u);
  EXPECT_EQ(owned.st_uid, 1002u);
  EXPECT_EQ(owned.st_gid, 1002u);
  EXPECT_EQ(owned.st_mtim.tv_sec, kFileMtime);
  EXPECT_EQ(owned.st_atim.tv_sec, kFileMtime);

  struct stat null = lstatOrDie(at("dev/null"));
  EXPECT_TRUE(S_ISCHR(null.st_mode));
  EXPECT_EQ(major(null.st_rdev), 1u);
  EXPECT_EQ(minor(null.st_rdev), 3u);
  EXPECT_EQ(null.st_mode & 07777, 0666u);
  struct stat sda = lstatOrDie(at("dev/sda"));
  EXPECT_TRUE(S_ISBLK(sda.st_mode));
  EXPECT_EQ(sda.st_rdev, makedev(8, 0));
  struct stat fifo = lstatOrDie(at("run/fifo"));
  EXPECT_TRUE(S_ISFIFO(fifo.st_mode));
  EXPECT_EQ(fifo.st_mode & 07777, 0620u);

  struct stat su = lstatOrDie(at("bin/su"));
  EXPECT_EQ(su.st_mode & 07777, 04755u) << "setuid survives the chown";
  EXPECT_EQ(su.st_uid, 1002u);
  EXPECT_EQ(lstatOrDie(at("bin/wall")).st_mode & 07777, 02755u);
  EXPECT_EQ(lstatOrDie(at("tmp")).st_mode & 07777, 01777u);

  struct stat deep = lstatOrDie(at("deep/a"));
  EXPECT_TRUE(S_ISDIR(deep.st_mode));
  EXPECT_EQ(deep.st_mode & 07777, 0755u);
  EXPECT_EQ(readAll(at("deep/a/b/c")), "implicit parents");

  if (userXattrsSupported(dir_.path())) {
    EXPECT_EQ(getXattr(at("etc/attr"), "user.foo"), "bar");
  } else {
    GTEST_LOG_(INFO) << "user xattrs unsupported on " << dir_.path() << "; not checked";
  }
}

INSTANTIATE_TEST_SUITE_P(Compressions, UnpackCompressionTest,
                         ::testing::Values(Compression::kNone, Compression::kGzip,
                                           Compression::kZstd),
                         [](const auto& info) { return compressionName(info.param); });

TEST_F(UnpackTest, WritesOverlayWhiteoutsAndOpaqueDirs) {
  TarBuilder tar;
  tar.dir("etc/")
      .whiteout("etc", "gone")
      .dir("opq/")
      .opaque("opq")
      .file("opq/new", "n")
      .whiteout("", "top");
  absl::StatusOr<UnpackStats> stats = unpack(tar);
  ASSERT_TRUE(stats.ok()) << stats.status();
  struct stat gone = lstatOrDie(at("etc/gone"));
  EXPECT_TRUE(S_ISCHR(gone.st_mode));
  EXPECT_EQ(gone.st_rdev, makedev(0, 0));
  EXPECT_FALSE(exists(at("etc/.wh.gone")));
  EXPECT_TRUE(S_ISCHR(lstatOrDie(at("top")).st_mode));
  EXPECT_EQ(getXattr(at("opq"), "trusted.overlay.opaque"), "y");
  EXPECT_FALSE(exists(at("opq/.wh..wh..opq")));
  EXPECT_EQ(readAll(at("opq/new")), "n");
}

TEST_F(UnpackTest, LaterEntriesReplaceEarlierOnes) {
  std::string outside = dir_ / "outside";
  TarBuilder tar;
  tar.file("x", "file first")
      .dir("x/")  // a directory replaces the file
      .file("x/y", "inside")
      .dir("d/")
      .file("d/child", "c")
      .file("d", "now a file")  // a file replaces the directory and its contents
      .symlink("s", outside)
      .file("s", "replaces the symlink, never writes through it")
      .dir("keep/")
      .file("keep/a", "a")
      .dir("keep/", 0700);  // a directory over a directory merges
  absl::StatusOr<UnpackStats> stats = unpack(tar);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_TRUE(S_ISDIR(lstatOrDie(at("x")).st_mode));
  EXPECT_EQ(readAll(at("x/y")), "inside");
  EXPECT_EQ(readAll(at("d")), "now a file");
  EXPECT_TRUE(S_ISREG(lstatOrDie(at("s")).st_mode));
  EXPECT_FALSE(exists(outside));
  EXPECT_EQ(readAll(at("keep/a")), "a");
  EXPECT_EQ(lstatOrDie(at("keep")).st_mode & 07777, 0700u);
}

TEST_F(UnpackTest, RecreatedDirectoryIsUsedNotTheRemovedOne) {
  TarBuilder tar;
  tar.dir("a/")
      .dir("a/b/")
      .file("a/b/old", "old")
      .file("a", "a file replaces the tree")
      .dir("a/")
      .file("a/b/new", "new");
  absl::StatusOr<UnpackStats> stats = unpack(tar);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(readAll(at("a/b/new")), "new");
  EXPECT_FALSE(exists(at("a/b/old")));
}

TEST_F(UnpackTest, RootEntryAndDotSlashNamesStayInside) {
  TarBuilder tar;
  tar.dir("./", 0711)
      .file("./a", "a")
      .file("/abs", "leading slash dropped")
      .file("b/./c/../d", "d");
  absl::StatusOr<UnpackStats> stats = unpack(tar);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(lstatOrDie(root()).st_mode & 07777, 0711u);
  EXPECT_EQ(readAll(at("a")), "a");
  EXPECT_EQ(readAll(at("abs")), "leading slash dropped");
  EXPECT_EQ(readAll(at("b/d")), "d");
}

TEST_F(UnpackTest, CreatesMissingParentsLikeTheLowerLayer) {
  std::string lower = dir_ / "lower";
  ASSERT_EQ(::mkdir(lower.c_str(), 0755), 0);
  ASSERT_EQ(::mkdir((lower + "/tmp").c_str(), 0700), 0);
  ASSERT_EQ(::chmod((lower + "/tmp").c_str(), 01777), 0);
  ASSERT_EQ(::mkdir((lower + "/home").c_str(), 0700), 0);
  ASSERT_EQ(::chown((lower + "/home").c_str(), 1002, 1003), 0);
  std::string layer = dir_ / "layer.tar";
  TarBuilder().file("tmp/x", "x").file("home/y", "y").file("new/z", "z").write(layer);
  // Unpacked without its lower layer (which may still be being made), then adopted.
  absl::StatusOr<UnpackStats> stats = unpackLayer(layer, root());
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_THAT(stats->implicit_dirs, ElementsAre("home", "new", "tmp"));
  EXPECT_EQ(lstatOrDie(at("tmp")).st_mode & 07777, 0755u) << "root-owned 0755 until adopted";
  ASSERT_TRUE(adoptLowerAttributes(root(), stats->implicit_dirs, {lower}).ok());
  EXPECT_EQ(lstatOrDie(at("tmp")).st_mode & 07777, 01777u);
  struct stat home = lstatOrDie(at("home"));
  EXPECT_EQ(home.st_mode & 07777, 0700u);
  EXPECT_EQ(home.st_uid, 1002u);
  EXPECT_EQ(home.st_gid, 1003u);
  EXPECT_EQ(lstatOrDie(at("new")).st_mode & 07777, 0755u);
  EXPECT_EQ(readAll(at("tmp/x")), "x");
}

// Only directories the layer never lists take the lower layers' owner and mode; one that the
// layer lists after needing it, or replaces, keeps what the layer says.
TEST_F(UnpackTest, ListedOrReplacedDirectoriesAreNotAdopted) {
  std::string lower = dir_ / "lower";
  for (const char* d : {"", "/a", "/b", "/c", "/c/d"}) {
    ASSERT_EQ(::mkdir((lower + d).c_str(), 0700), 0);
    ASSERT_EQ(::chown((lower + d).c_str(), 1002, 1003), 0);
  }
  std::string layer = dir_ / "layer.tar";
  TarBuilder()
      .file("a/x", "x")
      .dir("a", 0750)  // listed after the file that needed it
      .file("b/y", "y")
      .file("b", "now a file")  // replaced
      .file("c/d/z", "z")       // c and c/d both implicit
      .write(layer);
  absl::StatusOr<UnpackStats> stats = unpackLayer(layer, root());
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_THAT(stats->implicit_dirs, ElementsAre("b", "c", "c/d"));
  ASSERT_TRUE(adoptLowerAttributes(root(), stats->implicit_dirs, {lower}).ok());
  struct stat a = lstatOrDie(at("a"));
  EXPECT_EQ(a.st_mode & 07777, 0750u);
  EXPECT_EQ(a.st_uid, 0u);
  struct stat b = lstatOrDie(at("b"));
  EXPECT_TRUE(S_ISREG(b.st_mode));
  EXPECT_EQ(b.st_uid, 0u);
  EXPECT_EQ(lstatOrDie(at("c")).st_uid, 1002u);
  EXPECT_EQ(lstatOrDie(at("c/d")).st_mode & 07777, 0700u);
}

// A layer that tries to write outside the root is refused, names the entry, and writes
// nothing outside.
struct EscapeCase {
  std::string name;
  std::vector<TarEntry> entries;  // "@" in a name or target is replaced by the temp dir
  std::string bad_entry;
  std::vector<std::string> must_not_exist;  // relative to the temp dir
};

class UnpackEscapeTest : public UnpackTest, public ::testing::WithParamInterface<EscapeCase> {};

TEST_P(UnpackEscapeTest, IsRefused) {
  const EscapeCase& c = GetParam();
  // A directory outside the root that a followed symlink would reach.
  ASSERT_EQ(::mkdir((dir_ / "x").c_str(), 0755), 0);
  TarBuilder tar;
  for (TarEntry e : c.entries) {
    if (e.symlink.starts_with("@")) e.symlink = dir_.path() + e.symlink.substr(1);
    tar.add(e);
  }
  struct stat passwd {};
  ASSERT_EQ(::stat("/etc/passwd", &passwd), 0);
  absl::StatusOr<UnpackStats> stats = unpack(tar);
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kInvalidArgument) << stats.status();
  EXPECT_THAT(stats.status().message(),
              HasSubstr(absl::StrCat("layer entry \"", c.bad_entry, "\"")));
  for (const std::string& path : c.must_not_exist) EXPECT_FALSE(exists(dir_ / path)) << path;
  struct stat after {};
  ASSERT_EQ(::stat("/etc/passwd", &after), 0);
  EXPECT_EQ(after.st_nlink, passwd.st_nlink) << "no hard link was made to the host's file";
}

TarEntry file(std::string name) { return {.name = std::move(name), .content = "pwned"}; }
TarEntry link(std::string name, std::string target) {
  return {.name = std::move(name), .type = AE_IFLNK, .perm = 0777, .symlink = std::move(target)};
}
TarEntry hard(std::string name, std::string target) {
  return {.name = std::move(name), .hardlink = std::move(target)};
}

INSTANTIATE_TEST_SUITE_P(
    Cases, UnpackEscapeTest,
    ::testing::Values(
        EscapeCase{"DotDot", {file("../escape")}, "../escape", {"escape"}},
        EscapeCase{
            "DotDotInside", {file("a/../../escape")}, "a/../../escape", {"escape", "root/a"}},
        EscapeCase{"AbsoluteSymlinkParent",
                   {link("link", "@/x"), file("link/file")},
                   "link/file",
                   {"x/file"}},
        EscapeCase{"RelativeSymlinkParent",
                   {link("link", "../x"), file("link/file")},
                   "link/file",
                   {"x/file"}},
        EscapeCase{"DeepSymlinkParent", {link("a", "@"), file("a/x/b/c")}, "a/x/b/c", {"x/b"}},
        EscapeCase{"SymlinkParentOfDir",
                   {link("link", "@/x"), {.name = "link/sub/", .type = AE_IFDIR, .perm = 0755}},
                   "link/sub/",
                   {"x/sub"}},
        EscapeCase{"WhiteoutThroughSymlink",
                   {link("link", "@/x"), file("link/.wh.y")},
                   "link/.wh.y",
                   {"x/y"}},
        EscapeCase{"HardlinkDotDot", {hard("h", "../../etc/passwd")}, "h", {"root/h"}},
        EscapeCase{"HardlinkAbsolute", {hard("h", "/etc/passwd")}, "h", {"root/h"}},
        EscapeCase{
            "HardlinkThroughSymlink", {link("l", "/etc"), hard("h", "l/passwd")}, "h", {"root/h"}},
        EscapeCase{"FileAsParent", {file("f"), file("f/g")}, "f/g", {}}),
    [](const auto& info) { return info.param.name; });

TEST_F(UnpackTest, RejectsAMalformedLayer) {
  std::string layer = dir_ / "garbage.tar.gz";
  std::ofstream(layer) << std::string(4096, 'z');
  absl::StatusOr<UnpackStats> stats = unpackLayer(layer, root());
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kInvalidArgument) << stats.status();
  EXPECT_THAT(stats.status().message(), HasSubstr(layer));

  std::string truncated = dir_ / "truncated.tar.gz";
  TarBuilder().file("big", std::string(1 << 20, 'b')).write(truncated);
  std::filesystem::resize_file(truncated, std::filesystem::file_size(truncated) / 2);
  stats = unpackLayer(truncated, root());
  EXPECT_FALSE(stats.ok());

  stats = unpackLayer(dir_ / "missing.tar", root());
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kNotFound) << stats.status();
}

TEST_F(UnpackTest, EmptyLayerIsFine) {
  absl::StatusOr<UnpackStats> stats = unpack(TarBuilder(), Compression::kNone);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->entries, 0u);
}

// Cross-check with an independent tar writer: the test environment's image builder.
TEST_F(UnpackTest, UnpacksLayersFromMkimage) {
  std::filesystem::path script =
      std::filesystem::path(__FILE__).parent_path() / "../../env/mkimage.py";
  if (!std::filesystem::exists(script) || std::system("python3 --version >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "mkimage.py or python3 not available";
  }
  std::string spec = dir_ / "spec.json";
  std::ofstream(spec) << R"({"compression": "zstd", "entries": [
      {"type": "dir", "path": "/etc", "mode": "0755"},
      {"type": "file", "path": "/etc/passwd", "content": "root:x:0:0::/root:/bin/sh\n", "uid": 0},
      {"type": "file", "path": "/bin/busybox", "content": "bb", "mode": "0755"},
      {"type": "hardlink", "path": "/bin/sh", "target": "/bin/busybox"},
      {"type": "symlink", "path": "/bin/ls", "target": "busybox"},
      {"type": "whiteout", "path": "/etc/shadow"},
      {"type": "opaque", "path": "/var"},
      {"type": "char", "path": "/dev/zero", "major": 1, "minor": 5, "mode": "0666"},
      {"type": "fifo", "path": "/run/f", "mode": "0600"}]})";
  std::string layer = dir_ / "layer.tar.zst";
  std::string cmd =
      absl::StrCat("python3 ", script.string(), " layer ", spec, " --out ", layer, " >/dev/null");
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  absl::StatusOr<UnpackStats> stats = unpackLayer(layer, root());
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(readAll(at("etc/passwd")), "root:x:0:0::/root:/bin/sh\n");
  EXPECT_EQ(lstatOrDie(at("bin/sh")).st_ino, lstatOrDie(at("bin/busybox")).st_ino);
  EXPECT_TRUE(S_ISLNK(lstatOrDie(at("bin/ls")).st_mode));
  EXPECT_EQ(lstatOrDie(at("etc/shadow")).st_rdev, makedev(0, 0));
  EXPECT_EQ(getXattr(at("var"), "trusted.overlay.opaque"), "y");
  EXPECT_EQ(lstatOrDie(at("dev/zero")).st_rdev, makedev(1, 5));
  EXPECT_TRUE(S_ISFIFO(lstatOrDie(at("run/f")).st_mode));
}

std::string fileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST_F(UnpackTest, DiffIdIsTheDigestOfTheWholeUncompressedStream) {
  // A plain tar with bytes after its end-of-archive blocks: they belong to the diff id too.
  std::string plain = dir_ / "plain.tar";
  TarBuilder().file("a", "alpha").dir("d/").file("d/b", "beta").write(plain, Compression::kNone);
  std::ofstream(plain, std::ios::app | std::ios::binary) << std::string(1024, '\0') << "trailer";
  std::string bytes = fileBytes(plain);
  absl::StatusOr<UnpackStats> stats = unpackLayer(plain, root());
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->diff_id, sha256Of(bytes).str());
  EXPECT_EQ(stats->tar_bytes, bytes.size());

  for (Compression c : {Compression::kGzip, Compression::kZstd}) {
    std::string layer = dir_ / absl::StrCat("layer.", compressionName(c));
    TarBuilder().file("x", std::string(100000, 'x')).write(layer, c);
    std::filesystem::remove_all(root());
    ASSERT_EQ(::mkdir(root().c_str(), 0755), 0);
    stats = unpackLayer(layer, root());
    ASSERT_TRUE(stats.ok()) << stats.status();
    EXPECT_EQ(stats->diff_id, testing::diffIdOf(layer)) << compressionName(c);
    EXPECT_NE(stats->diff_id, sha256Of(fileBytes(layer)).str()) << "not the compressed digest";
  }
}

TEST_F(UnpackTest, ContentThatIsNotTheExpectedDiffIdIsDataLoss) {
  std::string layer = dir_ / "layer.tar.gz";
  TarBuilder().file("bin/sh", "trojan").write(layer);
  absl::StatusOr<UnpackStats> stats =
      unpackLayer(layer, root(), {.expected_diff_id = "sha256:" + std::string(64, 'a')});
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kDataLoss) << stats.status();
  EXPECT_THAT(stats.status().message(), HasSubstr(std::string(64, 'a')));
  EXPECT_THAT(stats.status().message(), HasSubstr(testing::diffIdOf(layer)));

  std::filesystem::remove_all(root());
  ASSERT_EQ(::mkdir(root().c_str(), 0755), 0);
  stats = unpackLayer(layer, root(), {.expected_diff_id = testing::diffIdOf(layer)});
  EXPECT_TRUE(stats.ok()) << stats.status();
}

TEST_F(UnpackTest, DecompressionBombStopsAtTheSizeLimit) {
  // 16 MiB of zeros compress to a few KiB; the limit stops the unpack long before the end.
  std::string layer = dir_ / "bomb.tar.gz";
  TarBuilder().file("zeros", std::string(16 << 20, '\0')).write(layer);
  ASSERT_LT(std::filesystem::file_size(layer), 100u << 10);
  absl::StatusOr<UnpackStats> stats = unpackLayer(layer, root(), {.max_tar_bytes = 1 << 20});
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kResourceExhausted) << stats.status();
  EXPECT_THAT(stats.status().message(), HasSubstr("1048576"));
  EXPECT_LE(std::filesystem::file_size(at("zeros")), 1u << 20) << "stopped at the limit";
}

TEST_F(UnpackTest, TooManyEntriesStopAtTheEntryLimit) {
  TarBuilder tar;
  for (int i = 0; i < 50; ++i) tar.file(absl::StrCat("f", i), "");
  std::string layer = dir_ / "many.tar";
  tar.write(layer, Compression::kNone);
  absl::StatusOr<UnpackStats> stats = unpackLayer(layer, root(), {.max_entries = 20});
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kResourceExhausted) << stats.status();
  EXPECT_THAT(stats.status().message(), HasSubstr("20"));
  EXPECT_FALSE(std::filesystem::exists(at("f20")));
  stats = unpackLayer(layer, root(), {.max_entries = 50});
  EXPECT_TRUE(stats.ok()) << stats.status();
}

}  // namespace
}  // namespace berth::image
