// Durable exit records of a pod's containers: DIR/exits/<container_id>.json, written (temp file,
// fsync, rename, fsync of the directory) before anyone is told about the exit, and kept until
// the daemon acknowledges them.
#pragma once

#include <map>
#include <string>

#include "common/unique_fd.h"
#include "shim/protocol.h"

namespace berth::shim {

// Called from berth-shim's single thread only.
class ExitStore {
 public:
  // Creates `dir` if needed and loads the records already in it (unreadable files are logged
  // and skipped).
  [[nodiscard]] Outcome open(const std::string& dir);

  // Persists `rec` (replacing a record of the same container) and keeps it in memory.
  [[nodiscard]] Outcome put(const ExitRecord& rec);
  // Removes a record; a missing one is not an error.
  [[nodiscard]] Outcome remove(const std::string& container_id);

  const ExitRecord* find(const std::string& container_id) const;
  const std::map<std::string, ExitRecord>& all() const { return records_; }

 private:
  std::string pathOf(const std::string& container_id) const;

  std::string dir_;
  UniqueFd dir_fd_;
  std::map<std::string, ExitRecord> records_;
};

}  // namespace berth::shim
