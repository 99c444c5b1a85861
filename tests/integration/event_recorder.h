// A GetContainerEvents subscriber for integration tests: reads the stream on a thread of its
// own and keeps every event; stop() cancels the stream and joins the thread.
#pragma once

#include <chrono>
#include <functional>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "berthd_fixture.h"

namespace berth::testing {

class EventRecorder {
 public:
  explicit EventRecorder(Berthd& d, int timeout_s = 120) {
    ctx_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(timeout_s));
    auto* stub = &d.runtime();
    reader_ = std::thread([this, stub] {
      auto stream = stub->GetContainerEvents(&ctx_, runtime::v1::GetEventsRequest());
      runtime::v1::ContainerEventResponse ev;
      while (stream->Read(&ev)) {
        absl::MutexLock lock(&mu_);
        events_.push_back(ev);
      }
      (void)stream->Finish();
    });
  }
  ~EventRecorder() { stop(); }
  EventRecorder(const EventRecorder&) = delete;
  EventRecorder& operator=(const EventRecorder&) = delete;

  void stop() {
    if (!reader_.joinable()) return;
    ctx_.TryCancel();
    reader_.join();
  }

  std::vector<runtime::v1::ContainerEventResponse> events() {
    absl::MutexLock lock(&mu_);
    return events_;
  }

  // Waits (up to `ms`) until an event satisfies `pred`.
  bool waitFor(const std::function<bool(const runtime::v1::ContainerEventResponse&)>& pred,
               int ms = 10000) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    do {
      for (const auto& ev : events()) {
        if (pred(ev)) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    } while (std::chrono::steady_clock::now() < deadline);
    return false;
  }

 private:
  grpc::ClientContext ctx_;
  std::thread reader_;
  absl::Mutex mu_;
  std::vector<runtime::v1::ContainerEventResponse> events_ ABSL_GUARDED_BY(mu_);
};

}  // namespace berth::testing
