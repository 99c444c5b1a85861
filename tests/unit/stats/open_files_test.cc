// Tests for OpenFiles on plain files in a temp dir: kept descriptors, the budget, the lease.
#include "stats/open_files.h"

#include <filesystem>
#include <thread>

#include "common/test_dir.h"
#include "gtest/gtest.h"
#include "stats/fake_tree.h"

namespace berth::stats {
namespace {

using berth::testing::TestDir;
using testing::put;

TEST(OpenFilesTest, KeepsFilesOpenAndRereadsThemFromTheStart) {
  TestDir dir;
  put(dir / "a", "1\n");
  auto budget = std::make_shared<FdBudget>(5);
  {
    OpenFiles files(budget);
    OpenFiles::Lease lease = files.tryUse();
    EXPECT_EQ(lease.source().readUint(dir / "a"), 1u);
    EXPECT_EQ(budget->left(), 4);
    put(dir / "a", "22\n");  // rewritten in place, as the kernel regenerates a cgroup file
    EXPECT_EQ(lease.source().readUint(dir / "a"), 22u);
    EXPECT_EQ(budget->left(), 4) << "the same descriptor";
    EXPECT_FALSE(lease.source().read(dir / "missing"));
    EXPECT_EQ(budget->left(), 4);
  }
  EXPECT_EQ(budget->left(), 5) << "given back when the files go";
}

TEST(OpenFilesTest, LongFilesAreReadWhole) {
  TestDir dir;
  std::string text;
  for (int i = 0; i < 2000; ++i) text += "key" + std::to_string(i) + " " + std::to_string(i) + "\n";
  put(dir / "stat", text);
  OpenFiles files(std::make_shared<FdBudget>(1));
  OpenFiles::Lease lease = files.tryUse();
  EXPECT_EQ(lease.source().read(dir / "stat"), text);
  EXPECT_EQ(lease.source().read(dir / "stat"), text);
}

TEST(OpenFilesTest, BeyondTheBudgetFilesAreReadButNotKept) {
  TestDir dir;
  put(dir / "a", "1\n");
  put(dir / "b", "2\n");
  auto budget = std::make_shared<FdBudget>(1);
  OpenFiles files(budget);
  {
    OpenFiles::Lease lease = files.tryUse();
    EXPECT_EQ(lease.source().readUint(dir / "a"), 1u);
    EXPECT_EQ(lease.source().readUint(dir / "b"), 2u);
  }
  EXPECT_EQ(budget->left(), 0);
  EXPECT_EQ(files.openCount(), 1u);
  OpenFiles none(std::make_shared<FdBudget>(0));
  {
    OpenFiles::Lease lease = none.tryUse();
    EXPECT_EQ(lease.source().readUint(dir / "b"), 2u);
  }
  EXPECT_EQ(none.openCount(), 0u);
}

TEST(OpenFilesTest, ABusySourceLendsPlainReadsInstead) {
  TestDir dir;
  put(dir / "a", "7\n");
  auto budget = std::make_shared<FdBudget>(4);
  OpenFiles files(budget);
  OpenFiles::Lease held = files.tryUse();
  std::thread other([&] {
    OpenFiles::Lease lease = files.tryUse();  // busy: no waiting
    EXPECT_EQ(&lease.source(), &plainFiles());
    EXPECT_EQ(lease.source().readUint(dir / "a"), 7u);
  });
  other.join();
  EXPECT_EQ(budget->left(), 4) << "plain reads keep nothing";
  EXPECT_EQ(&held.source(), static_cast<FileSource*>(&files));
}

TEST(OpenFilesTest, DefaultBudgetIsAQuarterOfTheLimitUpTo8192) {
  EXPECT_EQ(defaultFdBudget(1024), 256);
  EXPECT_EQ(defaultFdBudget(20000), 5000);
  EXPECT_EQ(defaultFdBudget(1u << 20), 8192);
  EXPECT_EQ(defaultFdBudget(0), 0);
}

}  // namespace
}  // namespace berth::stats
