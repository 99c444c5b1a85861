// User resolution against the image's passwd and group files (see user.h). The rootfs is
// untrusted: its /etc/passwd may be a symlink to the host's /etc/shadow, a FIFO, or huge.
#include "oci/user.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status.h"
#include "common/unique_fd.h"

namespace berth::oci {
namespace {

constexpr int64_t kMaxId = 4294967294;  // (uid_t)-1 means "unset" to the kernel

// Kernels before 5.6 lack openat2: walk the path one component at a time and refuse every
// symlink (O_NOFOLLOW), which is safe if less forgiving.
int openNoSymlinks(int root_fd, const std::string& path) {
  UniqueFd dir(::fcntl(root_fd, F_DUPFD_CLOEXEC, 0));
  std::vector<std::string> parts = absl::StrSplit(path, '/', absl::SkipEmpty());
  for (size_t i = 0; i < parts.size(); ++i) {
    if (parts[i] == "..") {
      errno = EXDEV;
      return -1;
    }
    bool last = i + 1 == parts.size();
    int flags = O_NOFOLLOW | O_CLOEXEC | (last ? O_RDONLY | O_NONBLOCK | O_NOCTTY : O_PATH);
    int fd = ::openat(dir.get(), parts[i].c_str(), flags);
    if (fd < 0) return -1;
    if (last) return fd;
    dir.reset(fd);
  }
  errno = EISDIR;
  return -1;
}

absl::StatusOr<int64_t> parseId(absl::string_view text, absl::string_view what) {
  int64_t v = -1;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < 0 || v > kMaxId) {
    return absl::InvalidArgumentError(absl::StrCat(what, " \"", text, "\" is out of range"));
  }
  return v;
}

bool isNumeric(absl::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The rootfs's file, or "" when it has none (an image without /etc/passwd is fine).
absl::StatusOr<std::string> optionalFile(const std::string& rootfs, const std::string& path) {
  if (rootfs.empty()) return std::string();
  auto text = readFileInRoot(rootfs, path);
  if (absl::IsNotFound(text.status())) return std::string();
  return text;
}

absl::Status checkId(int64_t v, absl::string_view what) {
  if (v < 0 || v > kMaxId) {
    return absl::InvalidArgumentError(absl::StrCat(what, " ", v, " is out of range"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> readFileInRoot(const std::string& rootfs, const std::string& path,
                                           size_t max_size) {
  const std::string where = absl::StrCat(path, " in rootfs ", rootfs);
  UniqueFd root(::open(rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return lastErrnoStatus(absl::StrCat("open rootfs ", rootfs));

  // O_NONBLOCK: a FIFO planted at /etc/passwd must not hang the daemon.
  open_how how{};
  how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  int raw = static_cast<int>(::syscall(SYS_openat2, root.get(), path.c_str(), &how, sizeof how));
  if (raw < 0 && errno == ENOSYS) raw = openNoSymlinks(root.get(), path);
  UniqueFd fd(raw);
  if (!fd.valid()) return lastErrnoStatus(absl::StrCat("open ", where));

  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return lastErrnoStatus(absl::StrCat("stat ", where));
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(where, " is not a regular file"));
  }
  std::string out;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return lastErrnoStatus(absl::StrCat("read ", where));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > max_size) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, " is larger than ", max_size, " bytes"));
    }
  }
  return out;
}

std::vector<PasswdEntry> parsePasswd(const std::string& text) {
  std::vector<PasswdEntry> out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<absl::string_view> f = absl::StrSplit(line, ':');
    if (f.size() < 4 || f[0].empty()) continue;
    auto uid = parseId(f[2], "uid");
    auto gid = parseId(f[3], "gid");
    if (!uid.ok() || !gid.ok()) continue;
    out.push_back({std::string(f[0]), *uid, *gid});
  }
  return out;
}

std::vector<GroupEntry> parseGroup(const std::string& text) {
  std::vector<GroupEntry> out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<absl::string_view> f = absl::StrSplit(line, ':');
    if (f.size() < 3 || f[0].empty()) continue;
    auto gid = parseId(f[2], "gid");
    if (!gid.ok()) continue;
    GroupEntry g{std::string(f[0]), *gid, {}};
    if (f.size() > 3) {
      for (absl::string_view m : absl::StrSplit(f[3], ',', absl::SkipWhitespace())) {
        g.members.emplace_back(m);
      }
    }
    out.push_back(std::move(g));
  }
  return out;
}

absl::StatusOr<ResolvedUser> resolveUser(const std::string& rootfs, const UserRequest& req) {
  // containerd's generateUserString: the username wins over the uid; a group needs a user.
  std::string user;
  std::string group;
  if (req.run_as_user) {
    BERTH_RETURN_IF_ERROR(checkId(*req.run_as_user, "run_as_user"));
    user = absl::StrCat(*req.run_as_user);
  }
  if (!req.run_as_username.empty()) user = req.run_as_username;
  if (req.run_as_group) {
    BERTH_RETURN_IF_ERROR(checkId(*req.run_as_group, "run_as_group"));
    group = absl::StrCat(*req.run_as_group);
  }
  if (user.empty() && !group.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("run_as_group ", group, " is a group without a user"));
  }
  if (user.empty() && !req.image_user.empty()) {
    std::vector<std::string> parts = absl::StrSplit(req.image_user, absl::MaxSplits(':', 1));
    user = parts[0];
    if (parts.size() > 1) group = parts[1];
    if (user.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("image user \"", req.image_user, "\" has a group without a user"));
    }
  }
  if (user.empty()) user = "0";

  BERTH_ASSIGN_OR_RETURN(std::string passwd_text, optionalFile(rootfs, "/etc/passwd"));
  const std::vector<PasswdEntry> passwd = parsePasswd(passwd_text);

  ResolvedUser out;
  std::string name;  // the user's name, for group membership
  if (isNumeric(user)) {
    BERTH_ASSIGN_OR_RETURN(out.uid, parseId(user, "uid"));
    auto it = std::find_if(passwd.begin(), passwd.end(),
                           [&](const PasswdEntry& e) { return e.uid == out.uid; });
    if (it != passwd.end()) {
      name = it->name;
      out.gid = it->gid;
    }
  } else {
    auto it = std::find_if(passwd.begin(), passwd.end(),
                           [&](const PasswdEntry& e) { return e.name == user; });
    if (it == passwd.end()) {
      return absl::NotFoundError(
          absl::StrCat("user \"", user, "\" not found in the image's /etc/passwd"));
    }
    name = it->name;
    out.uid = it->uid;
    out.gid = it->gid;
  }

  std::vector<GroupEntry> groups;
  if ((!group.empty() && !isNumeric(group)) || (!name.empty() && !req.strict_groups)) {
    BERTH_ASSIGN_OR_RETURN(std::string group_text, optionalFile(rootfs, "/etc/group"));
    groups = parseGroup(group_text);
  }
  if (isNumeric(group)) {
    BERTH_ASSIGN_OR_RETURN(out.gid, parseId(group, "gid"));
  } else if (!group.empty()) {
    auto it = std::find_if(groups.begin(), groups.end(),
                           [&](const GroupEntry& g) { return g.name == group; });
    if (it == groups.end()) {
      return absl::NotFoundError(
          absl::StrCat("group \"", group, "\" not found in the image's /etc/group"));
    }
    out.gid = it->gid;
  }

  std::set<int64_t> gids = {out.gid};
  if (!name.empty() && !req.strict_groups) {
    for (const GroupEntry& g : groups) {
      // containerd skips the group named after the user: it is the primary group.
      if (g.name == name) continue;
      if (std::find(g.members.begin(), g.members.end(), name) != g.members.end()) {
        gids.insert(g.gid);
      }
    }
  }
  for (int64_t g : req.supplemental_groups) {
    BERTH_RETURN_IF_ERROR(checkId(g, "supplemental group"));
    gids.insert(g);
  }
  out.additional_gids.assign(gids.begin(), gids.end());
  return out;
}

}  // namespace berth::oci
