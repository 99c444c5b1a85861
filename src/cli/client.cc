// CRI client plumbing for berthctl.
#include "cli/client.h"

#include <iostream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace berth::cli {

std::string grpcTarget(const std::string& endpoint) {
  if (absl::StartsWith(endpoint, "unix://")) return "unix:" + endpoint.substr(7);
  if (absl::StartsWith(endpoint, "/")) return "unix:" + endpoint;
  return endpoint;
}

namespace {

// ExecSync may return up to 16 MiB of stdout and as much stderr; gRPC's default cap is 4 MiB.
grpc::ChannelArguments channelArguments() {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  return args;
}

}  // namespace

Client::Client(const GlobalOptions& options)
    : timeout_(options.timeout_seconds),
      channel_(grpc::CreateCustomChannel(grpcTarget(options.endpoint),
                                         grpc::InsecureChannelCredentials(),
                                         channelArguments())),
      runtime_(runtime::v1::RuntimeService::NewStub(channel_)),
      image_(runtime::v1::ImageService::NewStub(channel_)) {}

std::unique_ptr<grpc::ClientContext> Client::context() const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + timeout_);
  return ctx;
}

std::string describeFailure(const std::string& rpc, const grpc::Status& status) {
  static constexpr const char* kNames[] = {
      "OK",           "Canceled",         "Unknown",       "InvalidArgument", "DeadlineExceeded",
      "NotFound",     "AlreadyExists",    "PermissionDenied", "ResourceExhausted",
      "FailedPrecondition", "Aborted",    "OutOfRange",    "Unimplemented",   "Internal",
      "Unavailable",  "DataLoss",         "Unauthenticated"};
  int code = static_cast<int>(status.error_code());
  const char* name = code >= 0 && code < 17 ? kNames[code] : "Unknown";
  return absl::StrCat(rpc, " failed: ", name, ": ", status.error_message());
}

int reportFailure(const std::string& rpc, const grpc::Status& status) {
  std::cerr << describeFailure(rpc, status) << "\n";
  return 1;
}

}  // namespace berth::cli
