// Filesystem helpers; every failure carries the path and errno.
#include "common/fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/unique_fd.h"

namespace berth {

absl::Status makeDirs(const std::string& path, mode_t mode) {
  if (path.empty()) return absl::InvalidArgumentError("empty directory path");
  std::string cur;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    cur = path.substr(0, pos);
    if (cur.empty() || cur == "/") continue;
    if (::mkdir(cur.c_str(), mode) != 0 && errno != EEXIST) {
      return lastErrnoStatus(absl::StrCat("create directory ", cur));
    }
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return lastErrnoStatus(absl::StrCat("stat ", path));
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(path, " exists and is not a directory"));
  }
  return absl::OkStatus();
}

absl::Status makeDirWithMode(const std::string& path, mode_t mode) {
  BERTH_RETURN_IF_ERROR(makeDirs(path, mode));
  if (::chmod(path.c_str(), mode) != 0) return lastErrnoStatus(absl::StrCat("chmod ", path));
  return absl::OkStatus();
}

absl::StatusOr<std::string> readFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return lastErrnoStatus(absl::StrCat("open ", path));
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return lastErrnoStatus(absl::StrCat("read ", path));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

absl::Status writeFileAtomic(const std::string& path, std::string_view data, mode_t mode,
                             Sync sync) {
  std::string tmp = absl::StrCat(path, ".tmp.", ::getpid());
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (!fd.valid()) return lastErrnoStatus(absl::StrCat("create ", tmp));
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd.get(), data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      absl::Status st = lastErrnoStatus(absl::StrCat("write ", tmp));
      ::unlink(tmp.c_str());
      return st;
    }
    off += static_cast<size_t>(n);
  }
  if ((sync == Sync::kYes && ::fsync(fd.get()) != 0) || ::fchmod(fd.get(), mode) != 0) {
    absl::Status st = lastErrnoStatus(absl::StrCat("sync ", tmp));
    ::unlink(tmp.c_str());
    return st;
  }
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    absl::Status st = lastErrnoStatus(absl::StrCat("rename ", tmp, " to ", path));
    ::unlink(tmp.c_str());
    return st;
  }
  return absl::OkStatus();
}

namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescapeMountField(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    bool octal = s[i] == '\\' && i + 3 < s.size();
    for (size_t k = 1; octal && k <= 3; ++k) octal = s[i + k] >= '0' && s[i + k] <= '7';
    if (octal) {
      out.push_back(static_cast<char>(std::stoi(s.substr(i + 1, 3), nullptr, 8)));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

}  // namespace

std::vector<std::string> mountsUnder(const std::string& path, const std::string& mountinfo) {
  std::vector<std::string> found;
  auto text = readFile(mountinfo);
  if (!text.ok()) return found;
  std::string prefix = path;
  while (prefix.size() > 1 && prefix.back() == '/') prefix.pop_back();
  size_t start = 0;
  while (start < text->size()) {
    size_t end = text->find('\n', start);
    if (end == std::string::npos) end = text->size();
    // id parent major:minor root mount-point ...
    size_t field = start;
    std::string target;
    for (int i = 0; i < 5 && field < end; ++i) {
      size_t sp = text->find(' ', field);
      if (sp == std::string::npos || sp > end) sp = end;
      if (i == 4) target = unescapeMountField(text->substr(field, sp - field));
      field = sp + 1;
    }
    start = end + 1;
    if (target == prefix || prefix == "/" ||
        (target.size() > prefix.size() && target.compare(0, prefix.size(), prefix) == 0 &&
         target[prefix.size()] == '/')) {
      found.push_back(target);
    }
  }
  std::stable_sort(found.begin(), found.end(),
                   [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  return found;
}

void startWriteback(int fd, off_t offset, off_t len) {
  (void)::sync_file_range(fd, offset, len, SYNC_FILE_RANGE_WRITE);
}

void WritebackPacer::wrote(int fd, size_t len) {
  written_ += static_cast<off_t>(len);
  if (written_ - started_ < step_) return;
  startWriteback(fd, started_, written_ - started_);
  started_ = written_;
}

absl::Status removeAll(const std::string& path) {
  if (std::vector<std::string> mounts = mountsUnder(path); !mounts.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("remove ", path, ": ", mounts.front(), " is still mounted; nothing removed"));
  }
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) return errnoStatus(ec.value(), absl::StrCat("remove ", path));
  return absl::OkStatus();
}

}  // namespace berth

namespace berth {

bool isExecutableFile(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

bool isDirectory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

absl::StatusOr<std::string> findExecutable(const std::string& name) {
  if (name.empty()) return absl::InvalidArgumentError("empty program name");
  if (name.find('/') != std::string::npos) {
    if (::access(name.c_str(), X_OK) == 0) return name;
    return lastErrnoStatus(absl::StrCat("program ", name));
  }
  const char* env = ::getenv("PATH");
  std::string path = absl::StrCat(env != nullptr ? env : "", ":/usr/sbin:/usr/bin:/sbin:/bin");
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(start, end - start);
    start = end + 1;
    if (dir.empty()) continue;
    std::string candidate = absl::StrCat(dir, "/", name);
    if (isExecutableFile(candidate)) return candidate;
  }
  return absl::NotFoundError(absl::StrCat("program \"", name, "\" not found in PATH"));
}

}  // namespace berth
