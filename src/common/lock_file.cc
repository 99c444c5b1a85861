// flock(2)-based lock file; the holder writes its pid so a refused process can name it.
#include "common/lock_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/status.h"

namespace berth {

absl::StatusOr<LockFile> LockFile::acquire(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd.valid()) return lastErrnoStatus(absl::StrCat("open lock file ", path));
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) return lastErrnoStatus(absl::StrCat("lock ", path));
    char buf[32] = {};
    ssize_t n = ::pread(fd.get(), buf, sizeof buf - 1, 0);
    std::string holder = n > 0 ? std::string(absl::StripAsciiWhitespace(std::string(buf, n)))
                               : std::string("unknown");
    return absl::FailedPreconditionError(
        absl::StrCat(path, " is locked by another process (pid ", holder, ")"));
  }
  std::string pid = absl::StrCat(::getpid(), "\n");
  if (::ftruncate(fd.get(), 0) != 0 ||
      ::pwrite(fd.get(), pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    return lastErrnoStatus(absl::StrCat("write lock file ", path));
  }
  return LockFile(path, std::move(fd));
}

}  // namespace berth
