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

  // Gives `rec` the next sequence number, persists it (replacing a record of the same
  // container) and keeps it in memory. The number is given also when the disk refuses.
  [[nodiscard]] Outcome put(ExitRecord& rec);
  // Removes a record; a missing one is not an error. With `seq` > 0, only the record of that
  // number (a newer record of the container stays).
  [[nodiscard]] Outcome remove(const std::string& container_id, uint64_t seq = 0);

  const ExitRecord* find(const std::string& container_id) const;
  const std::map<std::string, ExitRecord>& all() const { return records_; }

 private:
  std::string pathOf(const std::string& container_id) const;

  std::string dir_;
  UniqueFd dir_fd_;
  std::map<std::string, ExitRecord> records_;
  uint64_t last_seq_ = 0;
};

}  // namespace berth::shim
