// TaskEvents: frames read on the loop thread, handlers and shim checks on its workers.
#include "sandbox/task_events.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "common/status.h"

namespace berth::sandbox {
namespace {

std::shared_ptr<spdlog::logger> log() { return logging::get("exit"); }

}  // namespace

shim::ExitInfo unknownExit(const std::string& task) {
  return {.container_id = task,
          .exit_code = kUnknownExitCode,
          .exited_at_ns = absl::ToUnixNanos(absl::Now())};
}

TaskEvents::TaskEvents(events::EventLoop& loop, events::BackoffMonitor& monitor)
    : loop_(loop), monitor_(monitor) {}

TaskEvents::~TaskEvents() {
  std::map<std::string, std::shared_ptr<Pod>> all;
  {
    absl::MutexLock lock(&mu_);
    all.swap(pods_);
  }
  for (auto& [id, p] : all) {
    int fd = -1;
    {
      absl::MutexLock lock(&mu_);
      p->closed = true;
      fd = p->fd.get();
    }
    if (fd >= 0) loop_.unwatch(fd);
  }
}

absl::Status TaskEvents::subscribe(const std::shared_ptr<Pod>& p) {
  BERTH_ASSIGN_OR_RETURN(UniqueFd fd, p->link.subscribe());
  int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) != 0) {
    return lastErrnoStatus(absl::StrCat("pod sandbox ", p->id, ": subscribe to its shim"));
  }
  // Under the lock, so that close() sees either no descriptor or one that is watched.
  absl::MutexLock lock(&mu_);
  if (p->closed) return absl::OkStatus();
  BERTH_RETURN_IF_ERROR(loop_.watch(fd.get(), [this, p] { onReadable(p); }));
  p->fd = std::move(fd);
  p->reader = shim::FrameReader();
  return absl::OkStatus();
}

absl::Status TaskEvents::open(const std::string& pod, ShimLink link) {
  auto p = std::make_shared<Pod>();
  p->id = pod;
  p->link = std::move(link);
  close(pod);
  {
    absl::MutexLock lock(&mu_);
    pods_[pod] = p;
  }
  absl::Status st = subscribe(p);
  if (!st.ok()) {
    absl::MutexLock lock(&mu_);
    if (pods_[pod] == p) pods_.erase(pod);
  }
  return st;
}

void TaskEvents::ending(const std::string& pod) {
  absl::MutexLock lock(&mu_);
  if (auto it = pods_.find(pod); it != pods_.end()) it->second->ending = true;
}

void TaskEvents::close(const std::string& pod) {
  std::shared_ptr<Pod> p;
  int fd = -1;
  {
    absl::MutexLock lock(&mu_);
    auto it = pods_.find(pod);
    if (it == pods_.end()) return;
    p = it->second;
    if (p->ending) {
      // A shim shutting down reports the exits of what it killed, then closes: those exits
      // are read first (bounded: a shim that hangs does not hold the pod's removal).
      auto drained = [&p]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !p->fd.valid(); };
      mu_.AwaitWithTimeout(absl::Condition(&drained), absl::Seconds(1));
    }
    pods_.erase(pod);
    p->closed = true;
    fd = p->fd.get();
  }
  if (fd >= 0) loop_.unwatch(fd);
  monitor_.cancel("shim/" + pod);
  absl::MutexLock lock(&mu_);
  p->fd.reset();
}

absl::Status TaskEvents::watch(const std::string& pod, const std::string& task, ExitHandler exited,
                               OomHandler oom) {
  absl::MutexLock lock(&mu_);
  auto it = pods_.find(pod);
  if (it == pods_.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat("pod sandbox ", pod, ": not subscribed to its shim"));
  }
  const std::shared_ptr<Pod>& p = it->second;
  Task& t = p->tasks[task];
  if (t.handler) return absl::OkStatus();
  t.handler = std::move(exited);
  t.oom = std::move(oom);
  if (auto u = p->unclaimed_oom.find(task); u != p->unclaimed_oom.end()) {
    shim::ExitInfo e = u->second;
    p->unclaimed_oom.erase(u);
    dispatchOom(p, e);
  }
  if (auto u = p->unclaimed.find(task); u != p->unclaimed.end()) {
    shim::ExitInfo e = u->second;
    p->unclaimed.erase(u);
    deliver(p, task, e);
  } else if (p->gone) {
    deliver(p, task, unknownExit(task));
  }
  return absl::OkStatus();
}

bool TaskEvents::watching(const std::string& pod, const std::string& task) const {
  absl::MutexLock lock(&mu_);
  auto it = pods_.find(pod);
  if (it == pods_.end()) return false;
  auto t = it->second->tasks.find(task);
  return t != it->second->tasks.end() && t->second.handler;
}

void TaskEvents::unwatch(const std::string& pod, const std::string& task) {
  {
    absl::MutexLock lock(&mu_);
    auto it = pods_.find(pod);
    if (it != pods_.end()) {
      it->second->tasks.erase(task);
      it->second->unclaimed.erase(task);
      it->second->unclaimed_oom.erase(task);
    }
  }
  monitor_.cancel(absl::StrCat("exit/", pod, "/", task));
  monitor_.cancel(absl::StrCat("oom/", pod, "/", task));
}

void TaskEvents::onReadable(const std::shared_ptr<Pod>& p) {
  char buf[16384];
  bool ended = false;
  int fd = -1;
  {
    absl::MutexLock lock(&mu_);
    if (p->closed || !p->fd.valid()) return;
    fd = p->fd.get();
  }
  // Read what is there; the descriptor is the loop's to watch, only this thread reads it.
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      absl::MutexLock lock(&mu_);
      p->reader.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    ended = true;  // EOF, or the connection failed
    break;
  }
  absl::MutexLock lock(&mu_);
  if (p->closed) return;
  for (;;) {
    std::string body;
    shim::Outcome r = p->reader.next(&body);
    if (r.code == shim::Code::kUnavailable && r.message.empty()) break;  // more bytes needed
    shim::Json frame;
    if (r.ok()) r = shim::parseObject(body, &frame);
    if (!r.ok()) {
      // The stream cannot be trusted any more: subscribe again (the shim replays).
      log()->error("pod sandbox {}: bad event from its shim: {}", p->id, r.message);
      ended = true;
      break;
    }
    std::string kind;
    if (!shim::getString(frame, "event", &kind) || (kind != "exit" && kind != "oom")) continue;
    shim::ExitInfo e;
    if (shim::Outcome parsed = shim::exitFromJson(frame, &e); !parsed.ok()) {
      log()->error("pod sandbox {}: bad {} event from its shim: {}", p->id, kind, parsed.message);
      continue;
    }
    if (kind == "oom") {
      dispatchOom(p, e);
    } else {
      dispatch(p, e);
    }
  }
  if (!ended) return;
  loop_.unwatch(fd);  // from its own callback: no wait
  p->fd.reset();
  if (p->ending) return;  // shut down on purpose
  log()->warn("pod sandbox {}: the connection to its shim ended; checking the shim", p->id);
  loop_.post([this, p] {
    if (absl::Status st = checkShim(p); !st.ok()) {
      log()->error("pod sandbox {}: {}; retrying with back-off", p->id, st.message());
      monitor_.backoff("shim/" + p->id, [this, p] { return checkShim(p); });
    }
  });
}

void TaskEvents::dispatch(const std::shared_ptr<Pod>& p, const shim::ExitInfo& e) {
  auto it = p->tasks.find(e.container_id);
  if (it == p->tasks.end() || !it->second.handler) {
    shim::ExitInfo& kept = p->unclaimed[e.container_id];
    if (e.seq >= kept.seq) kept = e;
    return;
  }
  Task& t = it->second;
  if (t.delivered) {
    // A replay of an exit handled before its acknowledgement reached the shim.
    loop_.post([p, e] { (void)p->link.ack(e.container_id, e.seq); });
    return;
  }
  if (t.delivering) return;  // its acknowledgement follows the handler
  deliver(p, e.container_id, e);
}

void TaskEvents::deliver(const std::shared_ptr<Pod>& p, const std::string& task,
                         const shim::ExitInfo& e) {
  p->tasks[task].delivering = true;
  loop_.post([this, p, task, e] {
    if (absl::Status st = runHandler(p, task, e); !st.ok()) {
      log()->error("{}: recording its exit failed, retrying with back-off: {}", task, st.message());
      monitor_.backoff(absl::StrCat("exit/", p->id, "/", task),
                       [this, p, task, e] { return runHandler(p, task, e); });
    }
  });
}

absl::Status TaskEvents::runHandler(const std::shared_ptr<Pod>& p, const std::string& task,
                                    const shim::ExitInfo& e) {
  ExitHandler handler;
  {
    absl::MutexLock lock(&mu_);
    auto it = p->tasks.find(task);
    if (it == p->tasks.end() || it->second.delivered) return absl::OkStatus();  // unwatched
    handler = it->second.handler;
  }
  BERTH_RETURN_IF_ERROR(handler(e));
  {
    absl::MutexLock lock(&mu_);
    if (auto it = p->tasks.find(task); it != p->tasks.end()) {
      it->second.delivered = true;
      it->second.delivering = false;
    }
  }
  // Persisted: the shim may forget it. A lost acknowledgement only means a replay later.
  if (e.seq > 0) {
    if (absl::Status st = p->link.ack(task, e.seq); !st.ok()) {
      log()->warn("{}: acknowledging its exit to the shim: {}", task, st.message());
    }
  }
  return absl::OkStatus();
}

void TaskEvents::ackOomLater(const std::shared_ptr<Pod>& p, const std::string& task, uint64_t seq) {
  if (seq == 0 || !p->link.ack_oom) return;
  loop_.post([p, task, seq] {
    if (absl::Status st = p->link.ack_oom(task, seq); !st.ok()) {
      log()->warn("{}: acknowledging its OOM kill to the shim: {}", task, st.message());
    }
  });
}

void TaskEvents::dispatchOom(const std::shared_ptr<Pod>& p, const shim::ExitInfo& e) {
  auto it = p->tasks.find(e.container_id);
  if (it == p->tasks.end() || !it->second.handler) {
    shim::ExitInfo& kept = p->unclaimed_oom[e.container_id];
    if (e.seq >= kept.seq) kept = e;
    return;
  }
  Task& t = it->second;
  if (!t.oom || t.oom_recorded) {
    // Nobody records OOM kills of this task, or one is recorded already (what a handler
    // records is that the task was OOM-killed: a later kill adds nothing).
    ackOomLater(p, e.container_id, e.seq);
    return;
  }
  if (t.oom_delivering) {
    t.oom_ack_after = std::max(t.oom_ack_after, e.seq);
    return;
  }
  deliverOom(p, e.container_id, e);
}

void TaskEvents::deliverOom(const std::shared_ptr<Pod>& p, const std::string& task,
                            const shim::ExitInfo& e) {
  p->tasks[task].oom_delivering = true;
  loop_.post([this, p, task, e] {
    if (absl::Status st = runOomHandler(p, task, e); !st.ok()) {
      log()->error("{}: recording its OOM kill failed, retrying with back-off: {}", task,
                   st.message());
      monitor_.backoff(absl::StrCat("oom/", p->id, "/", task),
                       [this, p, task, e] { return runOomHandler(p, task, e); });
    }
  });
}

absl::Status TaskEvents::runOomHandler(const std::shared_ptr<Pod>& p, const std::string& task,
                                       const shim::ExitInfo& e) {
  OomHandler handler;
  {
    absl::MutexLock lock(&mu_);
    auto it = p->tasks.find(task);
    if (it == p->tasks.end() || it->second.oom_recorded) return absl::OkStatus();  // unwatched
    handler = it->second.oom;
  }
  if (handler) BERTH_RETURN_IF_ERROR(handler(e));
  uint64_t later = 0;
  {
    absl::MutexLock lock(&mu_);
    if (auto it = p->tasks.find(task); it != p->tasks.end()) {
      it->second.oom_recorded = true;
      it->second.oom_delivering = false;
      later = it->second.oom_ack_after;
    }
  }
  // Persisted: the shim may forget it (and a later one that came in meanwhile).
  ackOomLater(p, task, e.seq);
  if (later > e.seq) ackOomLater(p, task, later);
  return absl::OkStatus();
}

absl::Status TaskEvents::checkShim(const std::shared_ptr<Pod>& p) {
  {
    absl::MutexLock lock(&mu_);
    if (p->closed) return absl::OkStatus();
  }
  BERTH_ASSIGN_OR_RETURN(bool gone, p->link.gone());
  if (!gone) return subscribe(p);  // the shim replays what was not acknowledged
  absl::MutexLock lock(&mu_);
  if (p->closed) return absl::OkStatus();
  p->gone = true;
  for (auto& [task, t] : p->tasks) {
    if (!t.handler || t.delivered || t.delivering) continue;
    deliver(p, task, unknownExit(task));
  }
  return absl::OkStatus();
}

}  // namespace berth::sandbox
