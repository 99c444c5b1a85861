// Per-RPC metrics of the CRI services: requests, errors by gRPC code, and durations.
#pragma once

#include <grpcpp/support/status.h>

#include <array>
#include <atomic>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "metrics/registry.h"

namespace berth::cri {

// The gRPC name of a code as Prometheus exporters spell it ("NotFound", "Unimplemented").
absl::string_view grpcCodeName(grpc::StatusCode code);

// Thread-safe; record() is called for every RPC by the instrumented wrapper. After a method's
// first call, recording it takes a reader lock for the lookup and a few atomic adds; nothing
// is allocated.
class RpcMetrics {
 public:
  explicit RpcMetrics(metrics::Registry& registry);

  void record(absl::string_view method, grpc::StatusCode code, absl::Duration took);

 private:
  static constexpr size_t kCodes = 17;  // OK .. UNAUTHENTICATED
  // The children of one method, looked up once.
  struct Method {
    std::string name;
    metrics::Counter* requests = nullptr;
    metrics::Histogram* duration = nullptr;
    std::array<std::atomic<metrics::Counter*>, kCodes> errors{};  // filled on first use
  };

  Method& method(absl::string_view name);

  metrics::CounterFamily& requests_;
  metrics::CounterFamily& errors_;
  metrics::HistogramFamily& duration_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<Method>> methods_ ABSL_GUARDED_BY(mu_);
};

}  // namespace berth::cri
