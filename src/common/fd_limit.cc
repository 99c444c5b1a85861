// Raising berthd's RLIMIT_NOFILE and putting it back in children.
#include "common/fd_limit.h"

#include <atomic>

#include "common/status.h"

namespace berth {
namespace {

// Written once by raiseFdLimit() before threads exist; read by forked children. Atomics keep
// the read async-signal-safe and race-free all the same.
std::atomic<bool> g_raised{false};
std::atomic<rlim_t> g_original_soft{0};

}  // namespace

absl::StatusOr<FdLimit> raiseFdLimit() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) != 0) return lastErrnoStatus("read RLIMIT_NOFILE");
  FdLimit limit{.original_soft = r.rlim_cur, .soft = r.rlim_cur, .hard = r.rlim_max};
  if (r.rlim_cur < r.rlim_max) {
    rlimit raised{.rlim_cur = r.rlim_max, .rlim_max = r.rlim_max};
    if (::setrlimit(RLIMIT_NOFILE, &raised) != 0) {
      return lastErrnoStatus("raise RLIMIT_NOFILE to the hard limit");
    }
    limit.soft = r.rlim_max;
  }
  g_original_soft.store(limit.original_soft);
  g_raised.store(true);
  return limit;
}

void restoreFdLimitForChild() noexcept {
  if (!g_raised.load()) return;
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) != 0) return;
  rlim_t original = g_original_soft.load();
  if (r.rlim_cur <= original) return;  // lowered meanwhile (e.g. by prlimit): keep the lower
  r.rlim_cur = original;
  ::setrlimit(RLIMIT_NOFILE, &r);
}

}  // namespace berth
