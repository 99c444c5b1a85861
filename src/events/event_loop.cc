// EventLoop: epoll on the loop thread, an eventfd to wake it for new timers and stop, and a
// worker pool that is grown when queued work outnumbers idle workers.
#include "events/event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "absl/time/clock.h"
#include "common/logging.h"
#include "common/status.h"

namespace berth::events {

EventLoop::EventLoop(EventLoopOptions options) : options_(options) {
  epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  wake_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!epoll_.valid() || !wake_fd_.valid()) {
    // Without them berthd cannot hear of exits at all.
    logging::get("events")->critical("event loop: {}", lastErrnoStatus("epoll/eventfd").message());
    std::abort();
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = wake_fd_.get();
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_fd_.get(), &ev);
  loop_thread_ = std::thread([this] { run(); });
}

EventLoop::~EventLoop() { stop(); }

void EventLoop::wake() {
  uint64_t one = 1;
  ssize_t n = ::write(wake_fd_.get(), &one, sizeof one);
  (void)n;  // EAGAIN: a wake-up is pending anyway
}

void EventLoop::stop() {
  std::map<uint64_t, std::thread> workers;
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      stopping_ = true;
      timers_.clear();
      queue_.clear();
      for (const auto& [fd, w] : watches_) ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
      watches_.clear();
    }
    workers.swap(workers_);
    finished_.clear();
  }
  wake();
  if (loop_thread_.joinable() && loop_thread_.get_id() != std::this_thread::get_id()) {
    loop_thread_.join();
  }
  for (auto& [id, t] : workers) {
    if (t.get_id() == std::this_thread::get_id()) {
      t.detach();  // stop() from a worker's own work: it ends after that work
    } else if (t.joinable()) {
      t.join();
    }
  }
}

absl::Status EventLoop::watch(int fd, Fn on_ready) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return absl::CancelledError("the event loop is stopping");
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP;
  ev.data.fd = fd;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
    return lastErrnoStatus("event loop: watch a descriptor");
  }
  watches_[fd] = std::make_shared<Watch>(Watch{std::move(on_ready)});
  return absl::OkStatus();
}

void EventLoop::unwatch(int fd) {
  absl::MutexLock lock(&mu_);
  if (watches_.erase(fd) > 0) ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
  if (std::this_thread::get_id() == loop_thread_.get_id()) return;
  auto idle = [this, fd]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return dispatching_fd_ != fd; };
  mu_.Await(absl::Condition(&idle));
}

void EventLoop::post(Fn fn) {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    queue_.push_back(std::move(fn));
    growLocked();
  }
  joinFinished();
}

EventLoop::TimerId EventLoop::after(absl::Duration delay, Fn fn) {
  TimerId id = 0;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return 0;
    id = next_timer_++;
    timers_[id] = {absl::Now() + delay, std::move(fn)};
  }
  wake();
  return id;
}

void EventLoop::cancel(TimerId id) {
  absl::MutexLock lock(&mu_);
  timers_.erase(id);
}

int EventLoop::threads() const {
  absl::MutexLock lock(&mu_);
  return 1 + static_cast<int>(workers_.size() - finished_.size());
}

void EventLoop::joinFinished() {
  std::vector<std::thread> done;
  {
    absl::MutexLock lock(&mu_);
    for (uint64_t id : finished_) {
      auto it = workers_.find(id);
      if (it == workers_.end()) continue;
      done.push_back(std::move(it->second));
      workers_.erase(it);
    }
    finished_.clear();
  }
  for (auto& t : done) t.join();
}

void EventLoop::growLocked() {
  int live = static_cast<int>(workers_.size() - finished_.size());
  while (static_cast<int>(queue_.size()) > idle_workers_ && live < options_.max_workers) {
    uint64_t id = next_worker_++;
    ++idle_workers_;  // from birth, until it takes work
    ++live;
    workers_[id] = std::thread([this, id] { work(id); });
  }
}

void EventLoop::work(uint64_t worker_id) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !queue_.empty(); };
  for (;;) {
    mu_.AwaitWithTimeout(absl::Condition(&ready), options_.idle);
    if (stopping_ || queue_.empty()) {
      --idle_workers_;
      if (!stopping_) finished_.push_back(worker_id);  // stop() joins the rest
      return;
    }
    Fn fn = std::move(queue_.front());
    queue_.pop_front();
    --idle_workers_;
    mu_.Unlock();
    fn();
    fn = nullptr;  // what it holds goes before the lock is taken again
    mu_.Lock();
    ++idle_workers_;
  }
}

void EventLoop::run() {
  std::vector<epoll_event> events(64);
  for (;;) {
    int timeout_ms = -1;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      absl::Time now = absl::Now();
      std::vector<TimerId> due;
      absl::Time next = absl::InfiniteFuture();
      for (const auto& [id, t] : timers_) {
        if (t.first <= now) {
          due.push_back(id);
        } else {
          next = std::min(next, t.first);
        }
      }
      for (TimerId id : due) {
        auto node = timers_.extract(id);
        queue_.push_back(std::move(node.mapped().second));
      }
      growLocked();
      if (next != absl::InfiniteFuture()) {
        // Rounded up, so a timer is never woken for early.
        timeout_ms = static_cast<int>(absl::ToInt64Milliseconds(next - now)) + 1;
      }
    }
    int n = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), timeout_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      logging::get("events")->error("event loop: {}", lastErrnoStatus("epoll_wait").message());
      absl::SleepFor(absl::Milliseconds(10));
      continue;
    }
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == wake_fd_.get()) {
        uint64_t count = 0;
        ssize_t r = ::read(fd, &count, sizeof count);
        (void)r;
        continue;
      }
      std::shared_ptr<Watch> w;
      {
        absl::MutexLock lock(&mu_);
        if (stopping_) return;
        auto it = watches_.find(fd);
        if (it == watches_.end()) continue;
        w = it->second;
        dispatching_fd_ = fd;
      }
      w->on_ready();
      absl::MutexLock lock(&mu_);
      dispatching_fd_ = -1;
    }
  }
}

}  // namespace berth::events
