// Object state machines of the metadata store: the states, their allowed transitions, and
// the stable names under which states are written to disk.
#pragma once

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth::store {

// Pod sandbox lifecycle.
//
//   create
//     │
//     ▼
//   Created ──pause started──► Ready ──stop / pause exited──► NotReady ──┐
//    │    │                    │   ▲                          ▲  ▲  ▲    │ stop again
//    │    └──start failed, cleaned up─────────────────────────┘  │  └────┘ (idempotent)
//    │                         │   │                             │
//    │               shim lost │   │ recovery: running           │
//    │                         ▼   │                             │
//    └──set-up failed, ──────► Unknown ──recovery: stopped───────┘
//       undo failed
//
// Any state may be "updated" to itself (changing other fields only).
enum class SandboxState { kCreated, kReady, kNotReady, kUnknown };

// Container lifecycle.
//
//   create
//     │
//     ▼
//   Created ──start──► Running ──process exited──► Exited ──┐
//    │    │             │   ▲                       ▲ ▲ ▲   │ exit recorded again
//    │    └──start failed───────────────────────────┘ │ └───┘ (idempotent)
//    │                  │   │                         │
//    │        shim lost │   │ recovery: running       │
//    │                  ▼   │                         │
//    └──shim lost─────► Unknown ──recovery: exit found┘
//
// Any state may be "updated" to itself (changing other fields only).
enum class ContainerState { kCreated, kRunning, kExited, kUnknown };

// Whether a record may move from `from` to `to`; the diagrams above, in code.
bool allowedTransition(SandboxState from, SandboxState to);
bool allowedTransition(ContainerState from, ContainerState to);

// Stable names, used both in messages and in the `state` column. Never rename one: rows
// written by older versions are parsed with parseSandboxState / parseContainerState.
absl::string_view toString(SandboxState state);
absl::string_view toString(ContainerState state);
[[nodiscard]] absl::StatusOr<SandboxState> parseSandboxState(absl::string_view name);
[[nodiscard]] absl::StatusOr<ContainerState> parseContainerState(absl::string_view name);

// What an operation is doing to a pod or container between its first write and its last. The
// operation sets it in its first update(fn), which refuses it while another is pending, and
// clears it in its last write; so a second operation sees the first, and after a crash recovery
// finds what was cut off and finishes or undoes it.
//
//   None ──(an operation's first write)──► Creating | Starting | Updating | Stopping | Removing
//   any ──(its last write, or recovery)──► None
//   any ──(remove takes over: from a stop, or at recovery)──► Removing
//   Creating ──(a pod's creation cut off by a crash is undone by a stop)──► Stopping
enum class Pending { kNone, kCreating, kStarting, kUpdating, kStopping, kRemoving };
bool allowedTransition(Pending from, Pending to);
// "" for kNone, else "creating", "starting", …; stable, as for the states.
absl::string_view toString(Pending pending);
[[nodiscard]] absl::StatusOr<Pending> parsePending(absl::string_view name);

// Snapshot kinds: an active snapshot is writable (a container's rootfs or a layer being
// unpacked); a committed one is read-only and may be a parent.
enum class SnapshotKind { kActive, kCommitted };
absl::string_view toString(SnapshotKind kind);
[[nodiscard]] absl::StatusOr<SnapshotKind> parseSnapshotKind(absl::string_view name);

}  // namespace berth::store
