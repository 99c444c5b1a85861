// Stop signal names as images and CRI configs give them.
#include <gtest/gtest.h>
#include <signal.h>

#include "container/container_manager.h"

namespace berth::container {
namespace {

TEST(ParseSignalTest, NamesNumbersAndRealtime) {
  EXPECT_EQ(*parseSignal("SIGTERM"), SIGTERM);
  EXPECT_EQ(*parseSignal("TERM"), SIGTERM);
  EXPECT_EQ(*parseSignal("sigusr1"), SIGUSR1);
  EXPECT_EQ(*parseSignal("9"), SIGKILL);
  EXPECT_EQ(*parseSignal("SIGWINCH"), SIGWINCH);
  EXPECT_EQ(*parseSignal("SIGRTMIN"), SIGRTMIN);
  EXPECT_EQ(*parseSignal("SIGRTMIN+3"), SIGRTMIN + 3);
  EXPECT_EQ(*parseSignal("SIGRTMAX-2"), SIGRTMAX - 2);
}

TEST(ParseSignalTest, RejectsUnknownAndOutOfRange) {
  for (const char* bad : {"", "SIGNOPE", "0", "65", "-1", "SIGRTMIN+99", "SIGRTMIN+x"}) {
    auto s = parseSignal(bad);
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_TRUE(absl::IsInvalidArgument(s.status())) << bad;
  }
}

}  // namespace
}  // namespace berth::container
