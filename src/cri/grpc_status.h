// The single mapping from berth's internal status to a gRPC status, used at the service edge.
#pragma once

#include <grpcpp/support/status.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace berth::cri {

// The longest status message sent. It travels as the grpc-message trailer, and a client drops a
// call whose metadata passes its limit (8 KiB by default) with RESOURCE_EXHAUSTED "received
// initial metadata size exceeds limit" instead of the real code; a message that echoes a
// megabyte of client input would do that.
inline constexpr size_t kMaxStatusMessageBytes = 4096;

// `message` as sent: longer ones are cut at a UTF-8 boundary with a note of their length.
std::string wireMessage(std::string_view message);

// Codes carry over one to one (absl and gRPC share their numbering); kUnknown becomes
// Internal so that no failure of ours reaches a client as UNKNOWN. The message is wireMessage().
grpc::Status toGrpcStatus(const absl::Status& status);

}  // namespace berth::cri
