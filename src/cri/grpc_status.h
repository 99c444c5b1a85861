// The single mapping from berth's internal status to a gRPC status, used at the service edge.
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace berth::cri {

// Codes carry over one to one (absl and gRPC share their numbering); kUnknown becomes
// Internal so that no failure of ours reaches a client as UNKNOWN.
grpc::Status toGrpcStatus(const absl::Status& status);

}  // namespace berth::cri
