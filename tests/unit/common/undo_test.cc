// Undo steps run newest first on failure, not at all once disarmed.
#include "common/undo.h"

#include <gtest/gtest.h>

#include <string>

namespace berth {
namespace {

TEST(UndoTest, RunsArmedStepsInReverseOnDestruction) {
  std::string order;
  {
    Undo undo;
    undo.arm("a", [&] { order += "a"; return absl::OkStatus(); });
    undo.arm("b", [&] { order += "b"; return absl::OkStatus(); });
  }
  EXPECT_EQ(order, "ba");
}

TEST(UndoTest, DisarmedStepsDoNotRun) {
  std::string order;
  {
    Undo undo;
    undo.arm("a", [&] { order += "a"; return absl::OkStatus(); });
    undo.disarm();
  }
  EXPECT_EQ(order, "");
}

// A failed step stops the older ones: they would undo what it still stands on (a snapshot
// below a rootfs that did not unmount).
TEST(UndoTest, AFailedStepStopsTheOlderOnes) {
  std::string order;
  Undo undo;
  undo.arm("snapshot", [&] {
    order += "s";
    return absl::OkStatus();
  });
  undo.arm("rootfs mount", [&] {
    order += "m";
    return absl::UnavailableError("busy");
  });
  undo.arm("task", [&] {
    order += "t";
    return absl::OkStatus();
  });
  absl::Status st = undo.run();
  EXPECT_EQ(order, "tm") << "the snapshot below the still-mounted rootfs was removed";
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(st.message(), "undo rootfs mount: busy (1 older step(s) left for recovery)");
  EXPECT_TRUE(undo.run().ok()) << "steps run once";
}

}  // namespace
}  // namespace berth
