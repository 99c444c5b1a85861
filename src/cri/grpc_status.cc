// absl::Status → grpc::Status.
#include "cri/grpc_status.h"

#include <string>

namespace berth::cri {

grpc::Status toGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  auto code = static_cast<grpc::StatusCode>(status.code());
  if (status.code() == absl::StatusCode::kUnknown) code = grpc::StatusCode::INTERNAL;
  return grpc::Status(code, std::string(status.message()));
}

}  // namespace berth::cri
