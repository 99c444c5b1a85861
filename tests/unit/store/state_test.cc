// Tests for the sandbox and container state machines and their stable names.
#include "store/state.h"

#include <array>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"

namespace berth::store {
namespace {

using SS = SandboxState;
using CS = ContainerState;

constexpr std::array<SS, 4> kSandboxStates = {SS::kCreated, SS::kReady, SS::kNotReady,
                                              SS::kUnknown};
constexpr std::array<CS, 4> kContainerStates = {CS::kCreated, CS::kRunning, CS::kExited,
                                                CS::kUnknown};

TEST(StateTest, SandboxTransitionsMatchTheDiagram) {
  // Every allowed move besides staying put; everything else is refused.
  const std::vector<std::tuple<SS, SS>> kAllowed = {
      {SS::kCreated, SS::kReady},  {SS::kCreated, SS::kNotReady}, {SS::kCreated, SS::kUnknown},
      {SS::kReady, SS::kNotReady}, {SS::kReady, SS::kUnknown},    {SS::kUnknown, SS::kNotReady},
      {SS::kUnknown, SS::kReady},
  };
  for (SS from : kSandboxStates) {
    for (SS to : kSandboxStates) {
      bool expected = from == to;
      for (auto [a, b] : kAllowed) expected |= (a == from && b == to);
      EXPECT_EQ(allowedTransition(from, to), expected) << toString(from) << " -> " << toString(to);
    }
  }
}

TEST(StateTest, ContainerTransitionsMatchTheDiagram) {
  const std::vector<std::tuple<CS, CS>> kAllowed = {
      {CS::kCreated, CS::kRunning}, {CS::kCreated, CS::kExited},  {CS::kCreated, CS::kUnknown},
      {CS::kRunning, CS::kExited},  {CS::kRunning, CS::kUnknown}, {CS::kUnknown, CS::kExited},
      {CS::kUnknown, CS::kRunning},
  };
  for (CS from : kContainerStates) {
    for (CS to : kContainerStates) {
      bool expected = from == to;
      for (auto [a, b] : kAllowed) expected |= (a == from && b == to);
      EXPECT_EQ(allowedTransition(from, to), expected) << toString(from) << " -> " << toString(to);
    }
  }
}

constexpr std::array<Pending, 6> kPendings = {Pending::kNone,     Pending::kCreating,
                                              Pending::kStarting, Pending::kUpdating,
                                              Pending::kStopping, Pending::kRemoving};

// One operation at a time: it begins from none and ends in none; only a removal takes over.
TEST(StateTest, PendingOperationsMatchTheDiagram) {
  for (Pending from : kPendings) {
    for (Pending to : kPendings) {
      bool expected = from == to || from == Pending::kNone || to == Pending::kNone ||
                      to == Pending::kRemoving ||
                      (from == Pending::kCreating && to == Pending::kStopping);
      EXPECT_EQ(allowedTransition(from, to), expected) << toString(from) << " -> " << toString(to);
    }
  }
  EXPECT_FALSE(allowedTransition(Pending::kStarting, Pending::kStopping));
  EXPECT_FALSE(allowedTransition(Pending::kStopping, Pending::kUpdating));
  EXPECT_TRUE(allowedTransition(Pending::kStopping, Pending::kRemoving));
}

TEST(StateTest, StableNamesRoundTrip) {
  for (Pending p : kPendings) EXPECT_EQ(*parsePending(toString(p)), p);
  EXPECT_EQ(toString(Pending::kNone), "");
  EXPECT_EQ(toString(Pending::kRemoving), "removing");
  for (SS s : kSandboxStates) EXPECT_EQ(*parseSandboxState(toString(s)), s);
  for (CS s : kContainerStates) EXPECT_EQ(*parseContainerState(toString(s)), s);
  for (SnapshotKind k : {SnapshotKind::kActive, SnapshotKind::kCommitted}) {
    EXPECT_EQ(*parseSnapshotKind(toString(k)), k);
  }
  // The on-disk names are a format: changing one breaks existing databases.
  EXPECT_EQ(toString(SS::kNotReady), "not_ready");
  EXPECT_EQ(toString(CS::kExited), "exited");
  EXPECT_EQ(toString(SnapshotKind::kCommitted), "committed");
}

TEST(StateTest, UnknownNamesAreRejected) {
  EXPECT_EQ(parseSandboxState("SANDBOX_READY").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(parseContainerState("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(parseSnapshotKind("view").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(parsePending("deleting").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace berth::store
