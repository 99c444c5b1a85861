// An exclusive advisory lock on a file, held for the life of the object (one berthd per root).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "common/unique_fd.h"

namespace berth {

class LockFile {
 public:
  // Takes the lock without waiting. FailedPrecondition names the holder's pid when it is held.
  [[nodiscard]] static absl::StatusOr<LockFile> acquire(const std::string& path);

  LockFile(LockFile&&) = default;
  LockFile& operator=(LockFile&&) = default;
  const std::string& path() const { return path_; }

 private:
  LockFile(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  std::string path_;
  UniqueFd fd_;
};

}  // namespace berth
