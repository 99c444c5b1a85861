// berth_cri_requests_total, berth_cri_request_errors_total, berth_cri_request_duration_seconds.
#include "cri/rpc_metrics.h"

namespace berth::cri {

absl::string_view grpcCodeName(grpc::StatusCode code) {
  static constexpr absl::string_view kNames[] = {
      "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
      "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
      "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
      "DataLoss", "Unauthenticated"};
  auto i = static_cast<size_t>(code);
  return i < std::size(kNames) ? kNames[i] : "Unknown";
}

RpcMetrics::RpcMetrics(metrics::Registry& registry)
    : requests_(registry.counter("berth_cri_requests_total",
                                 "CRI requests received, by RPC method.", {"method"})),
      errors_(registry.counter("berth_cri_request_errors_total",
                               "CRI requests that failed, by RPC method and gRPC status code.",
                               {"method", "code"})),
      duration_(registry.histogram("berth_cri_request_duration_seconds",
                                   "Time to answer a CRI request, by RPC method.", {"method"},
                                   metrics::durationBuckets())) {}

RpcMetrics::Method& RpcMetrics::method(absl::string_view name) {
  {
    absl::ReaderMutexLock lock(&mu_);
    if (auto it = methods_.find(name); it != methods_.end()) return *it->second;
  }
  absl::MutexLock lock(&mu_);
  auto& slot = methods_.try_emplace(std::string(name)).first->second;
  if (slot == nullptr) {
    slot = std::make_unique<Method>();
    slot->name = std::string(name);
    slot->requests = &requests_.withLabels({slot->name});
    slot->duration = &duration_.withLabels({slot->name});
  }
  return *slot;
}

void RpcMetrics::record(absl::string_view name, grpc::StatusCode code, absl::Duration took) {
  Method& m = method(name);
  m.requests->inc();
  m.duration->observe(absl::ToDoubleSeconds(took));
  if (code == grpc::StatusCode::OK) return;
  auto i = static_cast<size_t>(code);
  if (i >= kCodes) i = static_cast<size_t>(grpc::StatusCode::UNKNOWN);
  metrics::Counter* c = m.errors[i].load(std::memory_order_acquire);
  if (c == nullptr) {
    // Two first failures may race here; both find the same child in the family.
    c = &errors_.withLabels({m.name, std::string(grpcCodeName(static_cast<grpc::StatusCode>(i)))});
    m.errors[i].store(c, std::memory_order_release);
  }
  c->inc();
}

}  // namespace berth::cri
