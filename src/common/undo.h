// Undo steps for multi-step operations (architecture rule 5): each acquired resource arms a
// step; on failure the armed steps run in reverse order; on success they are disarmed.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/cord.h"

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

  // Runs the armed steps, newest first, and stops at the first that fails: an older step
  // undoes what the failed one still stands on (a snapshot below a rootfs that did not
  // unmount, a directory with a mount in it), so running it would destroy data in use. What is
  // left stays reachable from the store (intent is recorded before acquiring) for recovery or
  // the object's removal to finish. The failure names what failed and how many steps are left.
  absl::Status run() {
    absl::Status failed;
    size_t done = 0;
    for (auto it = steps_.rbegin(); it != steps_.rend(); ++it, ++done) {
      absl::Status st = it->second();
      if (st.ok()) continue;
      size_t left = steps_.size() - done - 1;
      std::string msg = "undo " + it->first + ": " + std::string(st.message());
      if (left > 0) msg += " (" + std::to_string(left) + " older step(s) left for recovery)";
      failed = absl::Status(st.code(), msg);
      st.ForEachPayload(
          [&failed](absl::string_view url, const absl::Cord& p) { failed.SetPayload(url, p); });
      break;
    }
    steps_.clear();
    return failed;
  }

 private:
  std::vector<std::pair<std::string, Step>> steps_;
};

}  // namespace berth
