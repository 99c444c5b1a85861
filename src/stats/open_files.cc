// Cgroup files kept open between readings, within a descriptor budget.
#include "stats/open_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>

namespace berth::stats {
namespace {

constexpr uint64_t kMaxBudget = 8192;

// The whole file from offset 0: a cgroup file is generated afresh by each read from 0.
std::optional<std::string> preadAll(int fd) {
  std::string out;
  std::array<char, 4096> buf;
  for (;;) {
    ssize_t n = ::pread(fd, buf.data(), buf.size(), static_cast<off_t>(out.size()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::nullopt;
    if (n == 0) return out;
    out.append(buf.data(), static_cast<size_t>(n));
  }
}

}  // namespace

bool FdBudget::take() {
  int64_t left = left_.load();
  while (left > 0) {
    if (left_.compare_exchange_weak(left, left - 1)) return true;
  }
  return false;
}

void FdBudget::give() { left_.fetch_add(1); }

int64_t defaultFdBudget(uint64_t soft_limit) {
  return static_cast<int64_t>(std::min<uint64_t>(soft_limit / 4, kMaxBudget));
}

// Nobody else can hold a lease on an object being destroyed.
OpenFiles::~OpenFiles() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  for (size_t i = 0; i < fds_.size(); ++i) budget_->give();
}

void OpenFiles::closeAllLocked() {
  for (size_t i = 0; i < fds_.size(); ++i) budget_->give();
  fds_.clear();
}

OpenFiles::Lease OpenFiles::tryUse() { return Lease(mu_.TryLock() ? this : nullptr); }

size_t OpenFiles::openCount() const {
  absl::MutexLock lock(&mu_);
  return fds_.size();
}

// Called only through a Lease, which holds mu_ (the analysis cannot follow a virtual call).
std::optional<std::string> OpenFiles::read(const std::string& path) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  mu_.AssertHeld();
  if (auto it = fds_.find(path); it != fds_.end()) {
    if (std::optional<std::string> text = preadAll(it->second.get())) return text;
    // Its cgroup was removed (ENODEV), maybe made again under the same path: start over.
    fds_.erase(it);
    budget_->give();
  }
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return std::nullopt;
  std::optional<std::string> text = preadAll(fd.get());
  if (text && budget_->take()) fds_.emplace(path, std::move(fd));
  return text;
}

}  // namespace berth::stats
