// absl::Status → grpc::Status.
#include "cri/grpc_status.h"

#include <string>

namespace berth::cri {

std::string wireMessage(std::string_view message) {
  if (message.size() <= kMaxStatusMessageBytes) return std::string(message);
  const std::string tail =
      " ... (cut; the message had " + std::to_string(message.size()) + " bytes)";
  size_t keep = kMaxStatusMessageBytes - tail.size();
  // Never in the middle of a UTF-8 sequence: back off over continuation bytes.
  while (keep > 0 && (static_cast<unsigned char>(message[keep]) & 0xC0) == 0x80) --keep;
  return std::string(message.substr(0, keep)) + tail;
}

grpc::Status toGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  auto code = static_cast<grpc::StatusCode>(status.code());
  if (status.code() == absl::StatusCode::kUnknown) code = grpc::StatusCode::INTERNAL;
  const absl::string_view m = status.message();
  return grpc::Status(code, wireMessage(std::string_view(m.data(), m.size())));
}

}  // namespace berth::cri
