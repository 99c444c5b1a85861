// Network namespaces pinned by a bind mount on a file (as `ip netns add` does), so that a pod's
// namespace exists before its pause container and outlives any process in it.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "common/idmap.h"

namespace berth::network {

// Makes `dir` (created if missing) a private bind mount of itself, unless it already is a
// mount point, so that pins made below it do not propagate into other mount namespaces (as
// iproute2 makes /run/netns a mount of its own). Copies of a pin that other mount namespaces
// took while it existed are still dropped by removeNetns: unlinking a mount point detaches its
// mounts in every namespace (Linux >= 3.18). createNetns calls it. Thread-safe.
[[nodiscard]] absl::Status prepareNetnsDir(const std::string& dir);

// Detaches the mount prepareNetnsDir made on `dir` (and anything still pinned below it).
// Idempotent: a `dir` that is missing or not a mount point is fine. For tests and teardown.
[[nodiscard]] absl::Status releaseNetnsDir(const std::string& dir);

// A pod's own user namespace: where to pin it and its mappings.
struct UsernsPin {
  std::string path;  // absolute, e.g. <state>/userns/<id>; its folder is prepared as the netns one
  IdMappings uids, gids;
};

// Creates a new network namespace with loopback up and pins it at `path` (absolute, e.g.
// <state>/netns/<id>). A thread unshares the namespace and brings up "lo"; it is pinned by a
// bind mount of the thread's ns/net onto the file. With `user`, the network namespace is owned
// by a new user namespace with its mappings, pinned at user->path (a pod's sysfs and its
// runtime need the pod's user namespace to own its network namespace). AlreadyExists when
// a path already pins a namespace (a leftover file that pins nothing is replaced). On failure
// nothing is left behind: files removed, helpers reaped. Thread-safe.
[[nodiscard]] absl::Status createNetns(const std::string& path, const UsernsPin* user = nullptr);

// Unpins and removes `path` (umount2 MNT_DETACH, then unlink): a network or user namespace.
// Idempotent: a missing or unmounted path is fine. The namespace itself goes away when nothing
// else holds it.
[[nodiscard]] absl::Status removeNetns(const std::string& path);

// True when `path` does not pin a network namespace (missing, or not an nsfs mount).
bool netnsClosed(const std::string& path);

}  // namespace berth::network
