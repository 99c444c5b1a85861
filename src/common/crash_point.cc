// BERTH_CRASH_AT: read once; a hit kills the process with SIGKILL.
#include "common/crash_point.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>

namespace berth {
namespace {

const std::string& crashAt() {
  static const std::string at = [] {
    const char* v = std::getenv("BERTH_CRASH_AT");
    return std::string(v != nullptr ? v : "");
  }();
  return at;
}

}  // namespace

bool isCrashPoint(std::string_view name) {
  return std::find(kCrashPoints.begin(), kCrashPoints.end(), name) != kCrashPoints.end();
}

void crashPoint(std::string_view name) {
  const std::string& at = crashAt();
  if (at.empty()) return;
  // A point missing from the list would never be tested: caught by any run that sets the
  // variable.
  if (!isCrashPoint(name)) std::abort();
  if (at != name) return;
  std::string line = "crash point " + std::string(name) + "\n";
  (void)!::write(STDERR_FILENO, line.data(), line.size());
  ::kill(::getpid(), SIGKILL);
  std::abort();  // not reached
}

}  // namespace berth
