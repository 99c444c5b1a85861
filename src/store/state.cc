// Transition tables for the store's state machines, and the states' stable on-disk names.
#include "store/state.h"

#include <initializer_list>

#include "absl/strings/str_cat.h"

namespace berth::store {

bool allowedTransition(SandboxState from, SandboxState to) {
  using S = SandboxState;
  if (from == to) return true;
  switch (from) {
    case S::kCreated:
      return to == S::kReady || to == S::kNotReady || to == S::kUnknown;
    case S::kReady:
      return to == S::kNotReady || to == S::kUnknown;
    case S::kUnknown:
      return to == S::kNotReady || to == S::kReady;
    case S::kNotReady:
      return false;  // a stopped sandbox is never restarted; a new attempt is a new sandbox
  }
  return false;
}

bool allowedTransition(ContainerState from, ContainerState to) {
  using S = ContainerState;
  if (from == to) return true;
  switch (from) {
    case S::kCreated:
      return to == S::kRunning || to == S::kExited || to == S::kUnknown;
    case S::kRunning:
      return to == S::kExited || to == S::kUnknown;
    case S::kUnknown:
      return to == S::kExited || to == S::kRunning;
    case S::kExited:
      return false;  // CRI containers are never restarted in place
  }
  return false;
}

bool allowedTransition(Pending from, Pending to) {
  return from == to || from == Pending::kNone || to == Pending::kNone || to == Pending::kRemoving ||
         (from == Pending::kCreating && to == Pending::kStopping);
}

absl::string_view toString(Pending pending) {
  switch (pending) {
    case Pending::kNone:
      return "";
    case Pending::kCreating:
      return "creating";
    case Pending::kStarting:
      return "starting";
    case Pending::kUpdating:
      return "updating";
    case Pending::kStopping:
      return "stopping";
    case Pending::kRemoving:
      return "removing";
  }
  return "invalid";
}

absl::string_view toString(SandboxState state) {
  switch (state) {
    case SandboxState::kCreated:
      return "created";
    case SandboxState::kReady:
      return "ready";
    case SandboxState::kNotReady:
      return "not_ready";
    case SandboxState::kUnknown:
      return "unknown";
  }
  return "invalid";
}

absl::string_view toString(ContainerState state) {
  switch (state) {
    case ContainerState::kCreated:
      return "created";
    case ContainerState::kRunning:
      return "running";
    case ContainerState::kExited:
      return "exited";
    case ContainerState::kUnknown:
      return "unknown";
  }
  return "invalid";
}

absl::string_view toString(SnapshotKind kind) {
  switch (kind) {
    case SnapshotKind::kActive:
      return "active";
    case SnapshotKind::kCommitted:
      return "committed";
  }
  return "invalid";
}

namespace {

// Finds the enumerator whose stable name is `name` among `all`.
template <typename E>
absl::StatusOr<E> parseEnum(absl::string_view name, std::initializer_list<E> all,
                            absl::string_view what) {
  for (E e : all) {
    if (toString(e) == name) return e;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown ", what, " \"", name, "\""));
}

}  // namespace

absl::StatusOr<SandboxState> parseSandboxState(absl::string_view name) {
  return parseEnum(name,
                   {SandboxState::kCreated, SandboxState::kReady, SandboxState::kNotReady,
                    SandboxState::kUnknown},
                   "pod sandbox state");
}

absl::StatusOr<ContainerState> parseContainerState(absl::string_view name) {
  return parseEnum(name,
                   {ContainerState::kCreated, ContainerState::kRunning, ContainerState::kExited,
                    ContainerState::kUnknown},
                   "container state");
}

absl::StatusOr<Pending> parsePending(absl::string_view name) {
  return parseEnum(name,
                   {Pending::kNone, Pending::kCreating, Pending::kStarting, Pending::kUpdating,
                    Pending::kStopping, Pending::kRemoving},
                   "pending operation");
}

absl::StatusOr<SnapshotKind> parseSnapshotKind(absl::string_view name) {
  return parseEnum(name, {SnapshotKind::kActive, SnapshotKind::kCommitted}, "snapshot kind");
}

}  // namespace berth::store
