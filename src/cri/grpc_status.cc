// absl::Status → grpc::Status.
#include "cri/grpc_status.h"

#include <string>

#include "common/status.h"

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
  std::string message(m.data(), m.size());
  // An errno met on the way says nothing of the object the client named: a busy unmount is
  // no "runtime down" (UNAVAILABLE), a missing file of berth's is no missing container.
  if (int err = errnoOf(status); err != 0 && code != grpc::StatusCode::INTERNAL) {
    code = grpc::StatusCode::INTERNAL;
    message += " (errno " + std::to_string(err) + ")";
  }
  return grpc::Status(code, wireMessage(message));
}

}  // namespace berth::cri
