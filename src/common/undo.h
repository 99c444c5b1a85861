// Undo steps for multi-step operations (architecture rule 5): each acquired resource arms a
// step; on failure the armed steps run in reverse order; on success they are disarmed.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace berth {

// Not thread-safe; one per operation.
class Undo {
 public:
  using Step = std::function<absl::Status()>;

  Undo() = default;
  ~Undo() { (void)run(); }
  Undo(const Undo&) = delete;
  Undo& operator=(const Undo&) = delete;

  void arm(std::string what, Step step) { steps_.emplace_back(std::move(what), std::move(step)); }
  void disarm() { steps_.clear(); }

  // Runs the armed steps, newest first; returns the first failure (all steps still run),
  // with what failed to undo named.
  absl::Status run() {
    absl::Status first;
    for (auto it = steps_.rbegin(); it != steps_.rend(); ++it) {
      absl::Status st = it->second();
      if (!st.ok() && first.ok()) {
        first = absl::Status(st.code(), "undo " + it->first + ": " + std::string(st.message()));
      }
    }
    steps_.clear();
    return first;
  }

 private:
  std::vector<std::pair<std::string, Step>> steps_;
};

}  // namespace berth
