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

TEST(UndoTest, RunReportsTheFirstFailureAndStillRunsEveryStep) {
  std::string order;
  Undo undo;
  undo.arm("netns", [&] { order += "n"; return absl::InternalError("busy"); });
  undo.arm("shim", [&] { order += "s"; return absl::UnavailableError("gone"); });
  absl::Status st = undo.run();
  EXPECT_EQ(order, "sn");
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(st.message(), "undo shim: gone");
  EXPECT_TRUE(undo.run().ok()) << "steps run once";
}

}  // namespace
}  // namespace berth
