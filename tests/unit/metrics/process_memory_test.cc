// Resident memory from a fake /proc and from this process.
#include "metrics/process_memory.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace berth::metrics {
namespace {

TEST(ProcessMemoryTest, ResidentPagesTimesPageSize) {
  std::string root = ::testing::TempDir() + "/proc-" + std::to_string(::getpid());
  std::filesystem::create_directories(root + "/42");
  std::ofstream(root + "/42/statm") << "1000 25 10 1 0 50 0\n";
  std::filesystem::create_directories(root + "/43");
  std::ofstream(root + "/43/statm") << "garbage\n";
  EXPECT_EQ(residentBytes(root, 42), 25u * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)));
  EXPECT_EQ(residentBytes(root, 43), std::nullopt);
  EXPECT_EQ(residentBytes(root, 44), std::nullopt);  // gone
  EXPECT_EQ(residentBytes(root, 0), std::nullopt);
  std::filesystem::remove_all(root);
  auto self = residentBytes("/proc", ::getpid());
  ASSERT_TRUE(self.has_value());
  EXPECT_GT(*self, 0u);
}

}  // namespace
}  // namespace berth::metrics
