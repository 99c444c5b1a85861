// Resolving a container's user (uid, gid, additional gids) against the image's /etc/passwd and
// /etc/group, read from the untrusted rootfs without following links out of it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace berth::oci {

// Largest /etc/passwd or /etc/group berth reads from an image.
inline constexpr size_t kMaxUserFileSize = 4 << 20;

// Reads `path` (absolute, inside the rootfs) from the rootfs at `rootfs` as if `rootfs` were
// "/": symlinks and ".." resolve inside it (openat2 RESOLVE_IN_ROOT, no magic links). Only a
// regular file of at most `max_size` bytes is read. NotFound when it does not exist.
[[nodiscard]] absl::StatusOr<std::string> readFileInRoot(const std::string& rootfs,
                                                         const std::string& path,
                                                         size_t max_size = kMaxUserFileSize);

struct PasswdEntry {
  std::string name;
  int64_t uid = 0;
  int64_t gid = 0;
};
struct GroupEntry {
  std::string name;
  int64_t gid = 0;
  std::vector<std::string> members;
};

// Parsers for passwd(5) and group(5); malformed lines are skipped.
std::vector<PasswdEntry> parsePasswd(const std::string& text);
std::vector<GroupEntry> parseGroup(const std::string& text);

// What the container config and image ask for.
struct UserRequest {
  std::optional<int64_t> run_as_user;
  std::string run_as_username;  // wins over run_as_user, as in containerd
  std::optional<int64_t> run_as_group;
  std::vector<int64_t> supplemental_groups;
  std::string image_user;  // the image's User: uid, uid:gid, name, name:group, uid:group
  // supplemental_groups_policy Strict: no groups from the image's /etc/group, only the
  // primary group and supplemental_groups.
  bool strict_groups = false;
};

struct ResolvedUser {
  int64_t uid = 0;
  int64_t gid = 0;
  // The primary gid, groups of /etc/group that list the user (not with strict_groups), and
  // the supplemental groups; sorted, without duplicates (containerd's order).
  std::vector<int64_t> additional_gids;
};

// Resolves `req` against `rootfs` (empty = no files: names fail, uids get gid 0).
// InvalidArgument: a group without a user, ids out of range; NotFound: a user or group name the
// image does not know. Messages name the user or group.
[[nodiscard]] absl::StatusOr<ResolvedUser> resolveUser(const std::string& rootfs,
                                                       const UserRequest& req);

}  // namespace berth::oci
