// The one wrapper every RPC goes through: timing, debug logging with object ids, a single log
// line per failure, exception containment, and the absl → gRPC status mapping.
#pragma once

#include <grpcpp/server_context.h>

#include <exception>
#include <memory>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/logging.h"
#include "cri/grpc_status.h"
#include "cri/rpc_metrics.h"
#include "google/protobuf/message.h"
#include "spdlog/spdlog.h"

namespace berth::cri {

// Thread-safe: called concurrently from gRPC's server threads.
class Instrumented {
 public:
  // `metrics` (may be null: no metrics) must outlive the wrapper.
  explicit Instrumented(std::shared_ptr<spdlog::logger> log, RpcMetrics* metrics = nullptr)
      : log_(std::move(log)), metrics_(metrics) {}

  // Runs `fn` (returning absl::Status) as RPC `method` with request `req`.
  template <typename Fn>
  grpc::Status run(absl::string_view method, const google::protobuf::Message& req,
                   Fn&& fn) const {
    absl::Time start = absl::Now();
    absl::Status status;
    if (!enter()) {
      status = absl::UnavailableError("berthd is shutting down");
      return finish(method, req, status, absl::Now() - start);
    }
    try {
      status = fn();
    } catch (const std::exception& e) {
      status = absl::InternalError(absl::StrCat(method, ": unexpected exception: ", e.what()));
    } catch (...) {
      status = absl::InternalError(absl::StrCat(method, ": unexpected exception"));
    }
    leave();
    return finish(method, req, status, absl::Now() - start);
  }

  // Shutdown, step 1: from now on every new call is refused with UNAVAILABLE.
  void beginDrain();
  // Shutdown, step 2: waits until no call is in flight or `deadline` passes; true if idle.
  // (gRPC's own Shutdown also waits for idle client connections to go away, which kubelet's
  // may never do; draining here first lets berthd stop as soon as its calls are done.)
  bool waitIdle(absl::Time deadline) const;

  // The status an RPC returns until it is built.
  static absl::Status unimplemented(absl::string_view method) {
    return absl::UnimplementedError(
        absl::StrCat("runtime.v1 RPC ", method, " is not implemented by berth yet"));
  }

 private:
  // Logs and counts the call; returns the status the client gets.
  grpc::Status finish(absl::string_view method, const google::protobuf::Message& req,
                      const absl::Status& status, absl::Duration took) const;

  bool enter() const;
  void leave() const;

  std::shared_ptr<spdlog::logger> log_;
  RpcMetrics* const metrics_;
  mutable absl::Mutex mu_;
  mutable int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
};

// The ids a request names (pod_sandbox_id, container_id, image), as "key=value" pairs, for logs.
std::string requestIds(const google::protobuf::Message& req);

}  // namespace berth::cri
