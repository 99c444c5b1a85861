// Tests for OverlaySnapshotter against a real store and real overlay mounts: layer chains,
// whiteouts and opaque dirs in the merged view, removal rules, failures, concurrency, crash
// clean-up and reopening.
#include "image/snapshot.h"

#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/store.h"
#include "unpack_test_tar.h"

namespace berth::image {
namespace {

using testing::Compression;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::TarBuilder;
using testing::TempDir;

constexpr char kL1[] = "sha256:1111";
constexpr char kL2[] = "sha256:2222";
constexpr char kL3[] = "sha256:3333";

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

std::string readAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::set<std::string> listNames(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) names.insert(e.path().filename());
  return names;
}

// Mount points under `prefix` in /proc/self/mountinfo (field 5).
std::vector<std::string> mountsUnder(const std::string& prefix) {
  std::vector<std::string> found;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> fields = absl::StrSplit(line, ' ');
    if (fields.size() > 4 && absl::StartsWith(fields[4], prefix)) found.push_back(fields[4]);
  }
  return found;
}

class SnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::mkdir((dir_ / "layers").c_str(), 0755), 0);
    ASSERT_EQ(::mkdir(mnt().c_str(), 0755), 0);
    reopen();
  }

  void TearDown() override {
    // Leave no mount behind, even when a test failed half-way.
    std::vector<std::string> left = mountsUnder(dir_.path());
    EXPECT_THAT(left, ::testing::IsEmpty()) << "a test left mounts";
    for (auto it = left.rbegin(); it != left.rend(); ++it) ::umount2(it->c_str(), MNT_DETACH);
    snap_.reset();
    store_.reset();
  }

  // Closes and reopens the store and the snapshotter, as after a berthd restart.
  void reopen() {
    snap_.reset();
    store_.reset();
    absl::StatusOr<std::unique_ptr<store::Store>> st = store::Store::open(dir_ / "store.db");
    ASSERT_TRUE(st.ok()) << st.status();
    store_ = std::move(*st);
    absl::StatusOr<std::unique_ptr<OverlaySnapshotter>> snap =
        OverlaySnapshotter::open(snapRoot(), store_.get());
    ASSERT_TRUE(snap.ok()) << snap.status();
    snap_ = std::move(*snap);
  }

  std::string snapRoot() const { return dir_ / "snapshots"; }
  std::string mnt() const { return dir_ / "mnt"; }

  // Unpack options that check the layer at `path` against its real diff id.
  static UnpackOptions checked(const std::string& path) {
    return UnpackOptions{.expected_diff_id = testing::diffIdOf(path)};
  }

  std::string writeLayer(const std::string& name, const TarBuilder& tar,
                         Compression c = Compression::kGzip) {
    std::string path = dir_ / ("layers/" + name);
    tar.write(path, c);
    return path;
  }

  // L1: base files; L2 deletes a/gone and adds c/new2; L3 makes o/ opaque and adds d/new3.
  void applyChain() {
    std::string l1 = writeLayer("l1", TarBuilder()
                                          .dir("a/")
                                          .file("a/keep", "keep")
                                          .file("a/gone", "gone")
                                          .dir("o/")
                                          .file("o/lower1", "hidden by opaque")
                                          .dir("b/")
                                          .file("b/base", "base"));
    std::string l2 = writeLayer(
        "l2", TarBuilder().dir("a/").whiteout("a", "gone").dir("c/").file("c/new2", "two"),
        Compression::kZstd);
    std::string l3 = writeLayer(
        "l3",
        TarBuilder().dir("o/").opaque("o").file("o/upper3", "three").dir("d/").file("d/new3", "3"),
        Compression::kNone);
    ASSERT_TRUE(snap_->applyLayer(kL1, "", l1, checked(l1), {{"origin", "test"}}).ok());
    ASSERT_TRUE(snap_->applyLayer(kL2, kL1, l2, checked(l2)).ok());
    ASSERT_TRUE(snap_->applyLayer(kL3, kL2, l3, checked(l3)).ok());
  }

  std::string dirOf(const std::string& key) {
    absl::StatusOr<store::SnapshotPtr> r = store_->getSnapshot(key);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return "";
    return snapRoot() + "/" + (*r)->labels.at(OverlaySnapshotter::kDirLabel);
  }

  TempDir dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<OverlaySnapshotter> snap_;
};

TEST_F(SnapshotTest, ChainMountsAsOneMergedRootfs) {
  applyChain();
  absl::StatusOr<store::SnapshotPtr> l1 = store_->getSnapshot(kL1);
  ASSERT_TRUE(l1.ok());
  EXPECT_EQ((*l1)->kind, store::SnapshotKind::kCommitted);
  EXPECT_EQ((*l1)->labels.at("origin"), "test");
  EXPECT_FALSE((*l1)->diff_id.empty());
  EXPECT_TRUE(snap_->hasVerifiedLayer(kL1));
  EXPECT_GT((*l1)->size, 0u);
  EXPECT_EQ((*store_->getSnapshot(kL3))->parent, kL2);

  absl::StatusOr<std::vector<Mount>> mounts = snap_->prepare("ctr1", kL3);
  ASSERT_TRUE(mounts.ok()) << mounts.status();
  ASSERT_EQ(mounts->size(), 1u);
  const Mount& m = (*mounts)[0];
  EXPECT_EQ(m.type, "overlay");
  std::string ctr = dirOf("ctr1");
  EXPECT_THAT(m.options,
              ElementsAre("index=off", "workdir=" + ctr + "/work", "upperdir=" + ctr + "/fs",
                          absl::StrCat("lowerdir=", dirOf(kL3), "/fs:", dirOf(kL2),
                                       "/fs:", dirOf(kL1), "/fs")));
  absl::StatusOr<std::vector<Mount>> again = snap_->mounts("ctr1");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *mounts);

  absl::StatusOr<ScopedMount> mounted = ScopedMount::mount(*mounts, mnt());
  ASSERT_TRUE(mounted.ok()) << mounted.status();
  EXPECT_EQ(readAll(mnt() + "/a/keep"), "keep");
  EXPECT_FALSE(exists(mnt() + "/a/gone")) << "whiteout in layer 2 hides it";
  EXPECT_FALSE(exists(mnt() + "/o/lower1")) << "opaque dir in layer 3 hides layer 1's contents";
  EXPECT_EQ(readAll(mnt() + "/o/upper3"), "three");
  EXPECT_EQ(readAll(mnt() + "/c/new2"), "two");
  EXPECT_EQ(readAll(mnt() + "/d/new3"), "3");
  EXPECT_EQ(readAll(mnt() + "/b/base"), "base");

  absl::StatusOr<OverlaySnapshotter::Usage> before = snap_->usage("ctr1");
  ASSERT_TRUE(before.ok());
  std::ofstream(mnt() + "/written") << std::string(256 * 1024, 'w');
  ASSERT_EQ(::unlink((mnt() + "/b/base").c_str()), 0);
  ASSERT_TRUE(mounted->unmount().ok());
  EXPECT_EQ(readAll(ctr + "/fs/written").size(), 256u * 1024);
  struct stat wh {};
  ASSERT_EQ(::lstat((ctr + "/fs/b/base").c_str(), &wh), 0);
  EXPECT_TRUE(S_ISCHR(wh.st_mode)) << "overlay recorded the delete as a whiteout in upper";
  absl::StatusOr<OverlaySnapshotter::Usage> after = snap_->usage("ctr1");
  ASSERT_TRUE(after.ok());
  EXPECT_GE(after->bytes, before->bytes + 256 * 1024);
  EXPECT_GT(after->inodes, before->inodes);
  EXPECT_GE(snap_->totalUsage().bytes, after->bytes);

  absl::Status st = snap_->remove(kL3);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_TRUE(snap_->has(kL3));
  EXPECT_TRUE(snap_->remove("ctr1").ok());
  EXPECT_TRUE(snap_->remove("ctr1").ok()) << "remove is idempotent";
  EXPECT_EQ(snap_->remove(kL2).code(), absl::StatusCode::kFailedPrecondition);
  for (const char* key : {kL3, kL2, kL1}) EXPECT_TRUE(snap_->remove(key).ok()) << key;
  EXPECT_FALSE(snap_->has(kL1));
  EXPECT_THAT(listNames(snapRoot()), ::testing::IsEmpty());
  EXPECT_TRUE(store_->listSnapshots().empty());
}

TEST_F(SnapshotTest, ViewsAreReadOnly) {
  applyChain();
  absl::StatusOr<std::vector<Mount>> one = snap_->view(kL1);
  ASSERT_TRUE(one.ok()) << one.status();
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].type, "bind");
  EXPECT_EQ((*one)[0].source, dirOf(kL1) + "/fs");
  {
    absl::StatusOr<ScopedMount> m = ScopedMount::mount(*one, mnt());
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_EQ(readAll(mnt() + "/a/gone"), "gone");
    EXPECT_NE(::mkdir((mnt() + "/new").c_str(), 0755), 0);
    EXPECT_EQ(errno, EROFS);
  }
  absl::StatusOr<std::vector<Mount>> two = snap_->mounts(kL2);  // committed: same as view
  ASSERT_TRUE(two.ok()) << two.status();
  ASSERT_EQ(two->size(), 1u);
  EXPECT_EQ((*two)[0].type, "overlay");
  {
    absl::StatusOr<ScopedMount> m = ScopedMount::mount(*two, mnt());
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_FALSE(exists(mnt() + "/a/gone"));
    EXPECT_EQ(readAll(mnt() + "/c/new2"), "two");
    EXPECT_NE(::mkdir((mnt() + "/new").c_str(), 0755), 0);
    EXPECT_EQ(errno, EROFS);
  }
  EXPECT_THAT(mountsUnder(dir_.path()), ::testing::IsEmpty());
  ASSERT_TRUE(snap_->prepare("ctr", kL1).ok());
  EXPECT_EQ(snap_->view("ctr").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(snap_->view("nope").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(SnapshotTest, PrepareWithoutParentIsAWritableBind) {
  absl::StatusOr<std::vector<Mount>> mounts = snap_->prepare("scratch", "");
  ASSERT_TRUE(mounts.ok()) << mounts.status();
  ASSERT_EQ(mounts->size(), 1u);
  EXPECT_EQ((*mounts)[0].type, "bind");
  {
    absl::StatusOr<ScopedMount> m = ScopedMount::mount(*mounts, mnt());
    ASSERT_TRUE(m.ok()) << m.status();
    std::ofstream(mnt() + "/f") << "x";
  }
  EXPECT_EQ(readAll(dirOf("scratch") + "/fs/f"), "x");
  EXPECT_EQ(snap_->prepare("scratch", "").status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(snap_->prepare("other", "sha256:missing").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(snap_->prepare("other", "scratch").status().code(),
            absl::StatusCode::kFailedPrecondition)
      << "an active snapshot cannot be a parent";
  EXPECT_EQ(listNames(snapRoot()).size(), 1u) << "failed prepares leave no directory";
}

TEST_F(SnapshotTest, FailedApplyLeavesNothing) {
  std::string bad = dir_ / "layers/bad";
  std::ofstream(bad) << "this is not a tar";
  absl::Status st = snap_->applyLayer(kL1, "", bad, {.expected_diff_id = "sha256:1"});
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_THAT(st.message(), HasSubstr(kL1));
  std::string escape =
      writeLayer("escape", TarBuilder().file("ok", "ok").file("../../../escape", "x"));
  st = snap_->applyLayer(kL1, "", escape, checked(escape));
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_THAT(st.message(), HasSubstr("../../../escape"));
  std::string l = writeLayer("l", TarBuilder().file("f", ""));
  st = snap_->applyLayer(kL2, "sha256:no-parent", l, checked(l));
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound) << st;
  EXPECT_FALSE(snap_->has(kL1));
  EXPECT_FALSE(snap_->has(kL2));
  EXPECT_THAT(listNames(snapRoot()), ::testing::IsEmpty());
  EXPECT_TRUE(store_->listSnapshots().empty());
}

TEST_F(SnapshotTest, ApplyingTwiceIsANoOp) {
  std::string l1 = writeLayer("l1", TarBuilder().file("f", "one"));
  const UnpackOptions check = checked(l1);
  ASSERT_TRUE(snap_->applyLayer(kL1, "", l1, check).ok());
  std::string dir = dirOf(kL1);
  ASSERT_EQ(::unlink(l1.c_str()), 0);  // the second call must not even read the layer
  absl::Status st = snap_->applyLayer(kL1, "", l1, check);
  EXPECT_TRUE(st.ok()) << st;
  EXPECT_EQ(dirOf(kL1), dir);
  EXPECT_EQ(listNames(snapRoot()).size(), 1u);
  ASSERT_TRUE(snap_->prepare("ctr", kL1).ok());
  EXPECT_EQ(snap_->applyLayer("ctr", "", l1, check).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(snap_->applyLayer(kL1, "", l1, {.expected_diff_id = "sha256:other"}).code(),
            absl::StatusCode::kFailedPrecondition)
      << "a layer is only reused for the diff id it was checked against";
}

TEST_F(SnapshotTest, ConcurrentApplyOfOneKeyUnpacksOnce) {
  TarBuilder tar;
  for (int i = 0; i < 300; ++i)
    tar.file(absl::StrCat("dir", i % 10, "/file", i), std::string(4096, 'x'));
  std::string layer = writeLayer("big", tar);
  const UnpackOptions check = checked(layer);
  constexpr int kThreads = 8;
  std::vector<absl::Status> results(kThreads);
  {
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] { results[i] = snap_->applyLayer(kL1, "", layer, check); });
    }
    for (std::thread& t : threads) t.join();
  }
  for (const absl::Status& st : results) EXPECT_TRUE(st.ok()) << st;
  EXPECT_EQ(listNames(snapRoot()), std::set<std::string>{"1"});
  // Directory ids are handed out once per unpack: the next one shows how many there were.
  ASSERT_TRUE(snap_->prepare("ctr", kL1).ok());
  EXPECT_EQ(dirOf("ctr"), snapRoot() + "/2");

  // Failures are shared too, and leave nothing.
  std::string bad = dir_ / "layers/bad";
  std::ofstream(bad) << "garbage";
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      results[i] = snap_->applyLayer(kL2, kL1, bad, {.expected_diff_id = "sha256:2"});
    });
  }
  for (std::thread& t : threads) t.join();
  for (const absl::Status& st : results)
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_FALSE(snap_->has(kL2));
  EXPECT_EQ(listNames(snapRoot()).size(), 2u);
}

// A source that must not be read: the layer is made already, or another call is making it.
class UnreadSource : public LayerSource {
 public:
  absl::StatusOr<absl::string_view> read() override {
    ++reads;
    return absl::InternalError("read");
  }
  void unused() override { ++told_unused; }
  int reads = 0;
  int told_unused = 0;
};

// A layer can be unpacked before its parent exists: it waits for it only to commit, and the
// directories it needed but did not list then take the parent's owner and mode.
TEST_F(SnapshotTest, LayerUnpacksBeforeItsParentAndAdoptsItsDirectories) {
  std::string l1 = writeLayer("l1", TarBuilder().dir("tmp/", 01777).dir("home/", 0700));
  std::string l2 = writeLayer("l2", TarBuilder().file("tmp/x", "x").file("home/y", "y"));
  FileLayerSource source(l2);
  bool parent_was_missing = false;
  absl::Status st = snap_->applyLayer(kL2, kL1, source, "l2", checked(l2), {}, [&] {
    // Called once l2 is unpacked: its parent is made only now.
    parent_was_missing = !snap_->has(kL1);
    return snap_->applyLayer(kL1, "", l1, checked(l1));
  });
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_TRUE(parent_was_missing);
  std::string fs = dirOf(kL2) + "/fs";
  struct stat tmp {};
  ASSERT_EQ(::lstat((fs + "/tmp").c_str(), &tmp), 0);
  EXPECT_EQ(tmp.st_mode & 07777, 01777u);
  struct stat home {};
  ASSERT_EQ(::lstat((fs + "/home").c_str(), &home), 0);
  EXPECT_EQ(home.st_mode & 07777, 0700u);
  EXPECT_EQ(readAll(fs + "/home/y"), "y");

  // Made already: the source is not read, the wait not called.
  UnreadSource unread;
  bool waited = false;
  st = snap_->applyLayer(kL2, kL1, unread, "again", checked(l2), {}, [&] {
    waited = true;
    return absl::OkStatus();
  });
  EXPECT_TRUE(st.ok()) << st;
  EXPECT_EQ(unread.reads, 0);
  EXPECT_EQ(unread.told_unused, 1) << "whoever feeds the source must not wait for it";
  EXPECT_FALSE(waited);
}

// A call that waits for another call making the same layer tells its source it will not read
// it before it waits: the leader may need what that source's feeder is storing.
TEST_F(SnapshotTest, WaiterTellsItsSourceBeforeItWaits) {
  std::string l1 = writeLayer("l1", TarBuilder().file("f", "f"));
  FileLayerSource source(l1);
  UnreadSource waiter_source;
  std::thread waiter;
  absl::Status waited;
  absl::Status st = snap_->applyLayer(kL1, "", source, "l1", checked(l1), {}, [&] {
    // The leader has unpacked and holds the flight; a second call now joins it.
    waiter = std::thread(
        [&] { waited = snap_->applyLayer(kL1, "", waiter_source, "again", checked(l1)); });
    for (int i = 0; i < 1000 && waiter_source.told_unused == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return absl::OkStatus();
  });
  waiter.join();
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_TRUE(waited.ok()) << waited;
  EXPECT_EQ(waiter_source.told_unused, 1);
  EXPECT_EQ(waiter_source.reads, 0);
}

TEST_F(SnapshotTest, ParentThatFailsFailsTheLayerAndLeavesNothing) {
  std::string l2 = writeLayer("l2", TarBuilder().file("f", "f"));
  FileLayerSource source(l2);
  absl::Status st = snap_->applyLayer(kL2, kL1, source, "l2", checked(l2), {},
                                      [] { return absl::AbortedError("layer below it failed"); });
  EXPECT_EQ(st.code(), absl::StatusCode::kAborted) << st;
  EXPECT_THAT(st.message(), HasSubstr(kL2));
  EXPECT_FALSE(snap_->has(kL2));
  EXPECT_THAT(listNames(snapRoot()), ::testing::IsEmpty());
  // Ready, but no parent after all.
  FileLayerSource again(l2);
  st = snap_->applyLayer(kL2, kL1, again, "l2", checked(l2), {}, [] { return absl::OkStatus(); });
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound) << st;
  EXPECT_THAT(listNames(snapRoot()), ::testing::IsEmpty());
}

TEST_F(SnapshotTest, CleanupRemovesWhatACrashLeft) {
  applyChain();
  ASSERT_TRUE(snap_->prepare("ctr", kL3).ok());
  // A crash mid-unpack, a crash between rename and record, and something that is not ours.
  ASSERT_EQ(::mkdir((snapRoot() + "/90.tmp").c_str(), 0700), 0);
  ASSERT_EQ(::mkdir((snapRoot() + "/90.tmp/fs").c_str(), 0700), 0);
  ASSERT_EQ(::mkdir((snapRoot() + "/91").c_str(), 0700), 0);
  std::ofstream(snapRoot() + "/91/junk") << "junk";
  std::ofstream(snapRoot() + "/README") << "not a snapshot";
  reopen();
  EXPECT_TRUE(snap_->has(kL1) && snap_->has(kL2) && snap_->has(kL3) && snap_->has("ctr"))
      << "records survive a restart";
  ASSERT_TRUE(snap_->cleanup().ok());
  EXPECT_FALSE(exists(snapRoot() + "/90.tmp"));
  EXPECT_FALSE(exists(snapRoot() + "/91"));
  EXPECT_TRUE(exists(snapRoot() + "/README"));
  EXPECT_EQ(listNames(snapRoot()).size(), 5u);  // 4 snapshots + README
  // New ids never collide with what was on disk.
  ASSERT_TRUE(snap_->prepare("ctr2", kL1).ok());
  EXPECT_EQ(dirOf("ctr2"), snapRoot() + "/92");

  // A record whose directory vanished goes, with everything built on it.
  ASSERT_TRUE(std::filesystem::remove_all(dirOf(kL2)) > 0);
  ASSERT_TRUE(snap_->cleanup().ok());
  EXPECT_TRUE(snap_->has(kL1));
  EXPECT_TRUE(snap_->has("ctr2"));
  EXPECT_FALSE(snap_->has(kL2));
  EXPECT_FALSE(snap_->has(kL3));
  EXPECT_FALSE(snap_->has("ctr"));
  EXPECT_EQ(listNames(snapRoot()).size(), 3u);  // kL1, ctr2, README
}

TEST_F(SnapshotTest, ReopenedSnapshotterServesTheSameMounts) {
  applyChain();
  absl::StatusOr<std::vector<Mount>> before = snap_->prepare("ctr", kL3);
  ASSERT_TRUE(before.ok());
  reopen();
  absl::StatusOr<std::vector<Mount>> after = snap_->mounts("ctr");
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(*after, *before);
  absl::StatusOr<ScopedMount> m = ScopedMount::mount(*after, mnt());
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(readAll(mnt() + "/o/upper3"), "three");
}

TEST_F(SnapshotTest, MountFailureNamesTheTarget) {
  std::vector<Mount> bad = {{"overlay", "overlay", {"lowerdir=" + dir_ / "nope"}}};
  absl::StatusOr<ScopedMount> m = ScopedMount::mount(bad, mnt());
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(m.status().message(), HasSubstr(mnt()));
  std::vector<Mount> huge = {{"overlay", "overlay", {"lowerdir=" + std::string(8192, 'x')}}};
  EXPECT_EQ(ScopedMount::mount(huge, mnt()).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(SnapshotTest, LayerWhoseContentIsNotItsDiffIdIsRefusedAndLeavesNothing) {
  std::string honest = writeLayer("honest", TarBuilder().file("bin/sh", "real shell"));
  std::string trojan = writeLayer("trojan", TarBuilder().file("bin/sh", "trojan shell"));
  // The trojan claims the honest layer's diff id, as a hostile image config would.
  absl::Status st = snap_->applyLayer(kL1, "", trojan, checked(honest));
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss) << st;
  EXPECT_THAT(st.message(), HasSubstr(testing::diffIdOf(honest)));
  EXPECT_FALSE(snap_->has(kL1));
  EXPECT_THAT(listNames(snapRoot()), ::testing::IsEmpty());
  // The honest layer then unpacks under that key, and holds the honest content.
  ASSERT_TRUE(snap_->applyLayer(kL1, "", honest, checked(honest)).ok());
  EXPECT_EQ(readAll(dirOf(kL1) + "/fs/bin/sh"), "real shell");
  EXPECT_EQ((*store_->getSnapshot(kL1))->diff_id, testing::diffIdOf(honest));
}

TEST_F(SnapshotTest, ApplyWithoutADiffIdIsRefused) {
  std::string l1 = writeLayer("l1", TarBuilder().file("f", "one"));
  EXPECT_EQ(snap_->applyLayer(kL1, "", l1, {}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(snap_->has(kL1));
}

TEST_F(SnapshotTest, UncheckedParentIsNotUsed) {
  // A layer the schema migration quarantined: committed, without a diff id.
  store::SnapshotRecord old{.key = "unverified/sha256:1111",
                            .kind = store::SnapshotKind::kCommitted,
                            .labels = {{OverlaySnapshotter::kDirLabel, "77"}}};
  ASSERT_TRUE(store_->createSnapshot(old).ok());
  EXPECT_FALSE(snap_->hasVerifiedLayer(old.key));
  EXPECT_EQ(snap_->prepare("ctr", old.key).status().code(), absl::StatusCode::kFailedPrecondition);
  std::string l2 = writeLayer("l2", TarBuilder().file("f", "two"));
  EXPECT_EQ(snap_->applyLayer(kL2, old.key, l2, checked(l2)).code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace berth::image
